"""The names `import portcall` promises; a change here is a change of the public API."""

from __future__ import annotations

import importlib

import pytest

import portcall

PUBLIC = [
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
