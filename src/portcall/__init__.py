"""portcall: knows, opens and proves the ports Exchange 2000/2003 and other mail and
directory servers need."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Where each public name lives: imported on first use (PEP 562), so that `import portcall`
#: and the command line's start-up do not load what the command at hand never uses.
_HOMES = {
    "check": "portcall.api",
    "check_async": "portcall.api",
    "Catalog": "portcall.catalog",
    "CatalogError": "portcall.catalog",
    "PortEntry": "portcall.catalog",
    "TlsMode": "portcall.catalog",
    "load_catalog": "portcall.catalog",
    "Settings": "portcall.probing.probe",
    "Limits": "portcall.probing.scheduler",
    "Finding": "portcall.verdicts",
    "FindingCode": "portcall.verdicts",
    "Health": "portcall.verdicts",
    "LocalFault": "portcall.verdicts",
    "Result": "portcall.verdicts",
    "Severity": "portcall.verdicts",
    "Verdict": "portcall.verdicts",
}

if TYPE_CHECKING:
    from portcall.api import check, check_async
    from portcall.catalog import Catalog, CatalogError, PortEntry, TlsMode, load_catalog
    from portcall.probing.probe import Settings
    from portcall.probing.scheduler import Limits
    from portcall.verdicts import (
        Finding,
        FindingCode,
        Health,
        LocalFault,
        Result,
        Severity,
        Verdict,
    )


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'portcall' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


__all__ = [
    "Catalog",
    "CatalogError",
    "Finding",
    "FindingCode",
    "Health",
    "Limits",
    "LocalFault",
    "PortEntry",
    "Result",
    "Settings",
    "Severity",
    "TlsMode",
    "Verdict",
    "__version__",
    "check",
    "check_async",
    "load_catalog",
]
