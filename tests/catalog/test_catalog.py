from __future__ import annotations

from pathlib import Path

import pytest

from portcall.catalog import CatalogError, TlsMode, load_catalog, parse_catalog

SEED_PORTS = {389, 636, 379, 390, 3268, 3269, 143, 993, 110, 995, 119, 563, 80, 443, 25, 465, 691}


def test_builtin_catalog_holds_the_seventeen_ports_of_the_seed() -> None:
    catalog = load_catalog()
    assert catalog.name == "exchange-2000"
    assert {e.port for e in catalog.entries} == SEED_PORTS
    assert len(catalog.entries) == 17
    assert all(e.transport == "tcp" for e in catalog.entries)


@pytest.mark.parametrize(
    ("port", "protocol", "tls"),
    [
        (25, "smtp", TlsMode.STARTTLS),
        (465, "smtp", TlsMode.IMPLICIT),
        (636, "ldap", TlsMode.IMPLICIT),
        (3269, "ldap", TlsMode.IMPLICIT),
        (993, "imap", TlsMode.IMPLICIT),
        (995, "pop3", TlsMode.IMPLICIT),
        (563, "nntp", TlsMode.IMPLICIT),
        (443, "http", TlsMode.IMPLICIT),
        (80, "http", TlsMode.NONE),
        (691, "routing", TlsMode.NONE),
    ],
)
def test_rows_know_their_protocol_and_tls_mode(port: int, protocol: str, tls: TlsMode) -> None:
    entry = load_catalog().by_port(port)
    assert entry is not None
    assert (entry.protocol, entry.tls) == (protocol, tls)


def test_the_seed_nuances_are_kept() -> None:
    catalog = load_catalog()
    smtps = catalog.by_port(465)
    assert smtps is not None and smtps.optional
    assert "No Exchange version serves it" in smtps.description
    routing = catalog.by_port(691)
    assert routing is not None and "speaks first" in routing.description
    for port in (3268, 3269):
        entry = catalog.by_port(port)
        assert entry is not None and "Global Catalog" in entry.component
    for entry in catalog.entries:
        if entry.tls is TlsMode.IMPLICIT and entry.port != 465:
            assert "certificate" in entry.needs.lower(), entry.key


def test_a_users_catalog_replaces_the_builtin_one(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(_row("submission", 587, "smtp", "starttls"))
    catalog = load_catalog(path)
    assert [e.port for e in catalog.entries] == [587]
    assert catalog.name == "mine"


def _row(key: str, port: object, protocol: str, tls: str, extra: str = "") -> str:
    return (
        "[[port]]\n"
        f'key = "{key}"\nport = {port}\nprotocol = "{protocol}"\ntls = "{tls}"\n'
        'component = "c"\ndescription = "d"\nneeds = "n"\nhint = "h"\n' + extra
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_row("a", 0, "smtp", "none"), "row 1 (a), field 'port': must be a whole number"),
        (_row("a", 25, "gopher", "none"), "row 1 (a), field 'protocol': 'gopher' is not one of"),
        (_row("a", 25, "smtp", "ssl"), "row 1 (a), field 'tls': 'ssl' is not one of"),
        (_row("a", 80, "http", "starttls"), "field 'tls': http has no STARTTLS"),
        (_row("A b", 25, "smtp", "none"), "row 1 (A b), field 'key': must be 1-32"),
        (_row("a", 25, "smtp", "none", "colour = 1\n"), "field 'colour': unknown field"),
        (_row("a", 25, "smtp", "none", "optional = 2\n"), "'optional': must be true or false"),
        (_row("a", 25, "smtp", "none") + _row("b", 25, "smtp", "none"), "row 2 (b), field 'port'"),
        ("[[port]\n", "not valid TOML"),
        ("[catalog]\nname = 'x'\n", "no [[port]] rows"),
    ],
)
def test_bad_rows_are_named_with_field_and_reason(text: str, message: str) -> None:
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text, "mine.toml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("mine.toml")


def test_a_missing_file_is_a_catalog_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read catalog"):
        load_catalog(tmp_path / "absent.toml")


def test_labels_read_as_people_say_them() -> None:
    catalog = load_catalog()
    assert [catalog.by_port(p).label for p in (993, 25, 691)] == [  # type: ignore[union-attr]
        "IMAP4 over TLS (993)",
        "SMTP (25)",
        "Exchange routing (691)",
    ]
