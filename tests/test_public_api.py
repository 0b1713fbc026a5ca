"""The names `import portcall` promises; a change here is a change of the public API."""

from __future__ import annotations

import importlib
from dataclasses import replace

import pytest

import portcall

PUBLIC = [
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


def test_all_is_exactly_the_public_api() -> None:
    assert portcall.__all__ == PUBLIC


@pytest.mark.parametrize("name", PUBLIC)
def test_each_public_name_is_importable(name: str) -> None:
    module = importlib.import_module("portcall")
    assert getattr(module, name) is not None
    namespace: dict[str, object] = {}
    exec(f"from portcall import {name}", namespace)
    assert namespace[name] is getattr(portcall, name)


def test_star_import_gives_the_public_names_and_nothing_else() -> None:
    namespace: dict[str, object] = {}
    exec("from portcall import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(PUBLIC)


def test_version_matches_the_installed_distribution() -> None:
    from importlib.metadata import version

    assert portcall.__version__ == version("portcall")


def test_check_is_a_library_call_with_the_cli_s_verdicts() -> None:
    from tests.probing.servers import unused_port

    catalog = portcall.load_catalog()
    entry = catalog.by_key("smtp")
    assert entry is not None
    closed = replace(entry, port=unused_port())
    results = portcall.check(
        ["127.0.0.1"], entries=[closed], settings=portcall.Settings(timeout=1.0)
    )
    assert [(r.port, r.verdict) for r in results] == [(closed.port, portcall.Verdict.REFUSED)]
    assert results[0].reason.startswith(f"{closed.port} refused")
