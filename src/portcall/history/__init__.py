"""The record of past runs: an SQLite store with versioned migrations, and the diff of two
runs. `portcall check --save` and `portcall serve` write it; `portcall history` and
`portcall diff` read it."""

from portcall.history.diff import Change, diff_documents
from portcall.history.store import HistoryError, RunInfo, Store, default_db_path

__all__ = ["Change", "HistoryError", "RunInfo", "Store", "default_db_path", "diff_documents"]
