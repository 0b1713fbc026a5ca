"""portcall: knows, opens and proves the ports Exchange 2000/2003 and other mail and
directory servers need."""

from __future__ import annotations

__version__ = "0.1.0"

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
