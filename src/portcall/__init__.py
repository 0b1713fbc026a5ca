"""portcall: knows, opens and proves the ports Exchange 2000/2003 and other mail and
directory servers need."""

from __future__ import annotations

__version__ = "0.1.0"

from portcall.catalog import Catalog, CatalogError, PortEntry, TlsMode, load_catalog
from portcall.verdicts import Finding, FindingCode, Health, Result, Severity, Verdict

__all__ = [
    "Catalog",
    "CatalogError",
    "Finding",
    "FindingCode",
    "Health",
    "PortEntry",
    "Result",
    "Severity",
    "TlsMode",
    "Verdict",
    "__version__",
    "load_catalog",
]
