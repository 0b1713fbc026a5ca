"""`portcall serve`: a Prometheus exporter that runs checks on request.

`/probe?target=HOST&ports=…&protocol=…` checks one host and answers in the Prometheus text
format (metrics.py says what each series means), `/metrics` gives the exporter's own series
and `/` a dashboard of the latest result of every target. guard.py keeps it safe to expose,
config.py reads its settings, server.py speaks HTTP/1.1 (with h11).
"""

from __future__ import annotations

from portcall.serve.app import Exporter, serve_until_stopped
from portcall.serve.config import ConfigError, ServeConfig, combine, read_file

__all__ = ["ConfigError", "Exporter", "ServeConfig", "combine", "read_file", "serve_until_stopped"]
