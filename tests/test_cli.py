"""The command line as a user meets it: `portcall ports` and `portcall check`, their output,
their documented exit codes (0, 1, 2, 64, 130) and their usage errors.

Peers are responders and scripted servers on 127.0.0.1, run on a thread of their own because
the command line runs its own event loop; a user catalog moves each row to their port.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from portcall.api import check_async
from portcall.catalog import load_catalog
from portcall.cli import check_cmd
from portcall.probing.probe import Settings
from portcall.report.terminal import render
from portcall.responders.certs import LabCertificates, ensure_lab
from portcall.responders.certs import server_context as lab_context
from portcall.responders.server import HOST_CERTIFICATE, Responder, ResponderConfig
from tests.conftest import Cli
from tests.probing.servers import ServerThread, pop3, server_context, unused_port
from tests.tls.conftest import issue

CATALOG = load_catalog()
KEYS = [entry.key for entry in CATALOG.entries]
LAB_HOST = "mail.example.test"
HOST = "mail.example.com"


def write_catalog(path: Path, ports: dict[str, int], title: str = "Moved for a test") -> Path:
    """A user catalog of the built-in rows named in `ports`, each moved to its port there."""
    rows = []
    for key, port in ports.items():
        entry = CATALOG.by_key(key)
        assert entry is not None, key
        fields = {**entry.to_dict(), "port": port}
        # JSON strings, numbers and booleans are valid TOML values.
        rows.append("[[port]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items()))
    head = f'[catalog]\nname = "lab"\ntitle = {json.dumps(title)}\n\n'
    path.write_text(head + "\n".join(rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def servers() -> Iterator[ServerThread]:
    with ServerThread() as thread:
        yield thread


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> LabCertificates:
    return ensure_lab(tmp_path_factory.mktemp("lab"), LAB_HOST)


@pytest.fixture(scope="module")
def healthy(
    servers: ServerThread, lab: LabCertificates, tmp_path_factory: pytest.TempPathFactory
) -> list[str]:
    """Responders on every catalog row; the `check` arguments that prove them healthy."""
    tls = {HOST_CERTIFICATE: lab_context(lab.host_cert, lab.host_key)}
    config = ResponderConfig(ephemeral=True, hostname=LAB_HOST, idle_timeout=5.0)
    responder = servers.enter(Responder(CATALOG.entries, config, tls=tls))
    catalog = write_catalog(tmp_path_factory.mktemp("healthy") / "lab.toml", responder.ports)
    trust = ["--ca", str(lab.ca_cert), "--servername", LAB_HOST]
    return ["127.0.0.1", "--catalog", str(catalog), *trust, "--timeout", "5"]


def refused_catalog(tmp_path: Path) -> Path:
    return write_catalog(tmp_path / "closed.toml", {"pop3": unused_port()})


# -- portcall ports ------------------------------------------------------------------------

ROW = re.compile(r"^(\d+)/tcp  (\S+)  ", re.MULTILINE)


def test_ports_lists_all_17_rows(portcall: Cli) -> None:
    shown = portcall("ports")
    assert shown.code == 0
    assert "Exchange 2000 / 2003 ports — 17 of 17 ports" in shown.out
    assert [key for _, key in ROW.findall(shown.out)] == KEYS
    assert len(KEYS) == 17


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--protocol", "pop3"], [("110", "pop3"), ("995", "pop3s")]),
        (["--port", "25"], [("25", "smtp")]),
        (["--protocol", "smtp", "--port", "465"], [("465", "smtps")]),
    ],
)
def test_ports_filters(portcall: Cli, args: list[str], expected: list[tuple[str, str]]) -> None:
    shown = portcall("ports", *args)
    assert shown.code == 0
    assert ROW.findall(shown.out) == expected


def test_ports_json_has_every_field_of_every_row(portcall: Cli) -> None:
    shown = portcall("ports", "--json")
    document = json.loads(shown.out)
    assert document["catalog"] == "exchange-2000"
    assert document["title"] and document["source"]
    assert document["ports"] == [entry.to_dict() for entry in CATALOG.entries]
    fields = {"key", "port", "transport", "protocol", "tls", "tls_required", "optional"}
    fields |= {"component", "description", "needs", "hint"}
    assert all(set(row) == fields for row in document["ports"])


def test_ports_json_is_filtered_too(portcall: Cli) -> None:
    document = json.loads(portcall("ports", "--json", "--protocol", "ldap").out)
    assert [row["port"] for row in document["ports"]] == [389, 636, 379, 390, 3268, 3269]


def test_a_user_catalog_replaces_the_built_in_one(portcall: Cli, tmp_path: Path) -> None:
    catalog = write_catalog(tmp_path / "mine.toml", {"smtp": 2525, "imaps": 9993}, "Our relay")
    shown = portcall("ports", "--catalog", catalog)
    assert shown.code == 0
    assert "Our relay — 2 of 2 ports" in shown.out
    assert ROW.findall(shown.out) == [("2525", "smtp"), ("9993", "imaps")]


@pytest.mark.parametrize(
    ("head", "component", "words"),
    [
        ('title = "T\\u0007"', "c", "[catalog], field 'title'"),
        ('title = "T"', "c\\u001b[31m\\u202e", "row 1 (smtp), field 'component'"),
        ('title = "T"\nname = 5', "c", "[catalog], field 'name': must be a non-empty text"),
        ('title = "T"\nowner = "x"', "c", "[catalog], field 'owner': unknown field"),
    ],
)
def test_a_user_catalog_with_control_characters_or_bad_heads_is_refused(
    portcall: Cli, tmp_path: Path, head: str, component: str, words: str
) -> None:
    # A catalog's words are printed in every report: escapes, bidi and zero-width characters
    # (pasted by accident, or planted) are refused where they are written, with the field.
    row = SMTP_ROW.replace('component = "c"', f'component = "{component}"')
    path = tmp_path / "c.toml"
    path.write_text(f"[catalog]\n{head}\n[[port]]\n{row}", encoding="utf-8")
    shown = portcall("ports", "--catalog", path)
    assert shown.code == 64, shown.out
    assert words in shown.err
    assert "control or invisible" in shown.err or "field" in shown.err
    assert not set("\x1b\x07\u202e") & set(shown.err + shown.out)


def test_ports_without_a_match_is_a_usage_error(portcall: Cli) -> None:
    shown = portcall("ports", "--port", "7")
    assert shown.code == 64
    assert "Error: no catalog row matches" in shown.err


SMTP_ROW = (
    'key = "smtp"\nport = 25\nprotocol = "smtp"\ntls = "starttls"\ncomponent = "c"\n'
    'description = "d"\nneeds = "n"\nhint = "h"\n'
)
POP3_ROW = (
    'key = "pop3"\nport = 110\nprotocol = "pop3"\ntls = "starttls"\ncomponent = "c"\n'
    'description = "d"\nneeds = "n"\nhint = "h"\n'
)
BROKEN = {
    "bad-toml": ("[[port]\nkey = 1\n", ["not valid TOML", "line 1"]),
    "unknown-field": (
        f"[[port]]\n{POP3_ROW}\n[[port]]\n{SMTP_ROW}colour = 'red'\n",
        ["row 2 (smtp)", "field 'colour'", "unknown field"],
    ),
    "bad-tls": (
        f"[[port]]\n{POP3_ROW.replace('starttls', 'sometimes')}",
        ["row 1 (pop3)", "field 'tls'", "'sometimes' is not one of"],
    ),
    "duplicate-port": (
        f"[[port]]\n{POP3_ROW}\n[[port]]\n{SMTP_ROW.replace('25', '110')}",
        ["row 2 (smtp)", "field 'port'", "110 is already used by row 1"],
    ),
}


@pytest.mark.parametrize("command", [["ports"], ["check", "127.0.0.1"]])
@pytest.mark.parametrize("case", BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_catalog_is_a_usage_error_naming_row_and_field(
    portcall: Cli, tmp_path: Path, command: list[str], case: tuple[str, list[str]]
) -> None:
    text, words = case
    path = tmp_path / "broken.toml"
    path.write_text(text, encoding="utf-8")
    shown = portcall(*command, "--catalog", path)
    assert shown.code == 64
    error = next(line for line in shown.err.splitlines() if line.startswith("Error: "))
    assert str(path) in error
    for word in words:
        assert word in error
    assert "Hint: fix the catalog where the error says" in shown.err
    assert "Traceback" not in shown.err
    assert shown.out == ""


# -- portcall check: usage errors ----------------------------------------------------------


def _closed(tmp_path: Path) -> list[object]:
    return ["127.0.0.1", "--catalog", refused_catalog(tmp_path), "--timeout", "1"]


#: Each case: the arguments after `check` (given a scratch directory), what the error says,
#: and what the hint says.
USAGE: dict[str, tuple[Callable[[Path], list[object]], str, str]] = {
    "unknown-option": (lambda _: ["127.0.0.1", "--bogus"], "No such option '--bogus'", "--help"),
    "cidr-33": (lambda _: ["10.0.0.0/33"], "'10.0.0.0/33' is not a valid CIDR range", "--help"),
    "cidr-too-big": (lambda _: ["10.0.0.0/8"], "holds 16777216 addresses", "--help"),
    "bad-address": (lambda _: ["192.0.2.300"], "is not a host name, an IP address", "--help"),
    "no-target": (lambda _: [], "Missing argument 'TARGET...'", "--help"),
    "target-and-locate": (
        lambda _: ["127.0.0.1", "--locate", "example.test"],
        "give either TARGET... or --locate DOMAIN, not both",
        "--locate example.com",
    ),
    "bad-domain": (
        lambda _: ["127.0.0.1", "--domain", "exa mple.com"],
        "--domain: 'exa mple.com' is not a DNS domain name",
        "such as example.com",
    ),
    "bad-locate-domain": (
        lambda _: ["--locate", "-bad-.com"],
        "--locate: '-bad-.com' is not a DNS domain name",
        "such as example.com",
    ),
    "dns-server-not-an-address": (
        lambda _: ["--locate", "example.test", "--dns-server", "dns.example"],
        "--dns-server: 'dns.example' is not an IP address",
        "--dns-server 192.0.2.53",
    ),
    "dns-server-without-locate": (
        lambda _: ["127.0.0.1", "--dns-server", "127.0.0.1"],
        "--dns-server is for --locate",
        "add --locate DOMAIN",
    ),
    "unknown-builtin-catalog": (
        lambda _: ["127.0.0.1", "--catalog", "windows-dc", "--catalog", "windows-xp"],
        "cannot read catalog windows-xp: No such file or directory (built-in catalogs: "
        "exchange-2000, windows-dc)",
        "built-in rows",
    ),
    "unknown-key": (
        lambda _: ["127.0.0.1", "--ports", "nosuch"],
        "--ports: 'nosuch' is neither a port, a range nor a catalog key",
        "catalog keys: ldap, ldaps",
    ),
    "port-off-catalog": (
        lambda _: ["127.0.0.1", "--ports", "7"],
        "no port of catalog 'exchange-2000' in 7",
        "--catalog FILE",
    ),
    "require-unknown": (
        lambda _: ["127.0.0.1", "--require", "nosuch"],
        "--require: 'nosuch' is neither",
        "catalog keys",
    ),
    "ca-missing": (
        lambda tmp: ["127.0.0.1", "--ca", tmp / "missing.pem"],
        "--ca: cannot read",
        "PEM file",
    ),
    "output-dir-missing": (
        lambda tmp: [*_closed(tmp), "-o", tmp / "nowhere" / "report.txt"],
        "-o: the directory",
        "create it",
    ),
    "json-output-dir-missing": (
        lambda tmp: [*_closed(tmp), "--json", "-o", tmp / "nowhere" / "report.json"],
        "does not exist",
        "create it",
    ),
    "output-is-a-directory": (
        lambda tmp: [*_closed(tmp), "-o", tmp],
        "is a directory",
        "name a file",
    ),
    "json-output-is-a-directory": (
        lambda tmp: [*_closed(tmp), "--json", "-o", tmp],
        "is a directory",
        "name a file",
    ),
    "ca-is-a-directory": (
        lambda tmp: ["127.0.0.1", "--ca", tmp],
        "--ca: cannot read",
        "PEM file",
    ),
    "empty-target": (lambda _: [""], "an empty target", "--help"),
    "name-with-spaces": (lambda _: ["mail server"], "is not a host name", "--help"),
    "reversed-range": (
        lambda _: ["127.0.0.1", "--ports", "995-990"],
        "the range 995-990 runs backwards",
        "990-995",
    ),
    "port-zero": (lambda _: ["127.0.0.1", "--ports", "0"], "'0' is not a port", "example"),
    "timeout-nan": (
        lambda _: ["127.0.0.1", "--timeout", "nan"],
        "'nan' is not a number of seconds",
        "--help",
    ),
    "half-a-range": (lambda _: ["127.0.0.1", "--ports", "25-"], "'25-' is neither", "smtp"),
    "servername-with-space": (
        lambda _: ["127.0.0.1", "--servername", "mail server"],
        "--servername: 'mail server' is not a host name",
        "one host name",
    ),
    "servername-empty": (
        lambda _: ["127.0.0.1", "--servername", ""],
        "--servername: an empty target",
        "one host name",
    ),
    "servername-range": (
        lambda _: ["127.0.0.1", "--servername", "192.0.2.0/30"],
        "--servername: '192.0.2.0/30' is a range",
        "one host name",
    ),
    "port-too-big": (
        lambda _: ["127.0.0.1", "--require", "70000"],
        "--require: '70000' is not a port",
        "example",
    ),
}


@pytest.mark.parametrize("case", USAGE.values(), ids=USAGE.keys())
def test_check_usage_errors_exit_64_with_error_and_hint(
    portcall: Cli, tmp_path: Path, case: tuple[Callable[[Path], list[object]], str, str]
) -> None:
    args, error, hint = case
    shown = portcall("check", *args(tmp_path))
    assert shown.code == 64
    lines = shown.err.splitlines()
    assert lines[0].startswith("Error: ") and error in lines[0], shown.err
    assert lines[1].startswith("Hint: ") and hint in lines[1], shown.err
    assert "Traceback" not in shown.err
    assert shown.out == ""
    assert not (tmp_path / "nowhere").exists()


def test_ca_file_without_a_certificate_is_a_usage_error(portcall: Cli, tmp_path: Path) -> None:
    not_a_cert = tmp_path / "notes.pem"
    not_a_cert.write_text("not a certificate\n", encoding="utf-8")
    catalog = write_catalog(tmp_path / "c.toml", {"pop3s": unused_port()})
    shown = portcall("check", "127.0.0.1", "--catalog", catalog, "--ca", not_a_cert)
    assert shown.code == 64
    assert shown.err.startswith(f"Error: --ca: CA file {not_a_cert}: holds no PEM or DER")
    assert "Hint: give a PEM file with one or more CA certificates" in shown.err
    assert "Traceback" not in shown.err


# -- portcall check: exit codes and reports ------------------------------------------------


def test_healthy_responders_exit_0(portcall: Cli, healthy: list[str]) -> None:
    shown = portcall("check", *healthy)
    assert shown.code == 0, shown.out
    assert shown.out.startswith("127.0.0.1 (127.0.0.1)\n")
    assert "17 port checks on 1 host: 17 ok; 0 findings; health: healthy" in shown.out


def test_warnings_only_exit_1(portcall: Cli, servers: ServerThread, tmp_path: Path) -> None:
    # A self-signed certificate the user trusts with --ca: trusted, named right, but every
    # client must be told to trust it, which is a warning (verdicts.FINDING_SEVERITY).
    cert, key = issue(None, dns=(HOST,)).write(tmp_path, "self-signed")
    port = servers.serve(pop3(), server_context(str(cert), str(key)))
    catalog = write_catalog(tmp_path / "c.toml", {"pop3s": port})
    shown = portcall("check", "127.0.0.1", "--catalog", catalog, "--ca", cert, "--servername", HOST)
    assert shown.code == 1, shown.out
    assert "warning cert-self-signed" in shown.out
    assert "health: warnings" in shown.out


def test_failures_exit_2(portcall: Cli, servers: ServerThread, tmp_path: Path) -> None:
    catalog = write_catalog(tmp_path / "c.toml", {"pop3": servers.serve(pop3())})
    shown = portcall("check", "127.0.0.1", "--catalog", catalog)
    assert shown.code == 2
    assert "no-starttls" in shown.out
    assert "health: failures" in shown.out


@pytest.mark.parametrize(
    # Without --require the refused port is information, but a host where nothing answers at
    # all is a warning of its own (a wrong address must not pass).
    ("require", "code"),
    [([], 1), (["--require", "pop3"], 2), (["--require", "all"], 2)],
)
def test_require_makes_a_refused_port_a_failure(
    portcall: Cli, tmp_path: Path, require: list[str], code: int
) -> None:
    shown = portcall("check", "127.0.0.1", "--catalog", refused_catalog(tmp_path), *require)
    assert shown.code == code
    assert " refused " in shown.out


def test_require_by_port_number(portcall: Cli, tmp_path: Path) -> None:
    port = unused_port()
    catalog = write_catalog(tmp_path / "c.toml", {"pop3": port})
    assert portcall("check", "127.0.0.1", "--catalog", catalog, "--require", port).code == 2


RESULT_FIELDS = {
    "host",
    "address",
    "port",
    "transport",
    "key",
    "verdict",
    "health",
    "required",
    "reason",
    "protocol",
    "product",
    "banner",
    "capabilities",
    "findings",
    "tls",
    "details",
    "timings_ms",
}


def test_json_document(portcall: Cli, healthy: list[str]) -> None:
    shown = portcall("check", *healthy, "--json")
    assert shown.code == 0
    document = json.loads(shown.out)
    assert document["schema"] == "portcall.check/1"
    assert (document["catalog"], document["health"]) == ("lab", "healthy")
    assert document["started"] <= document["finished"]
    results = document["results"]
    assert [r["key"] for r in results] == KEYS
    for result in results:
        assert set(result) == RESULT_FIELDS
        assert (result["host"], result["address"]) == ("127.0.0.1", "127.0.0.1")
        assert (result["verdict"], result["findings"]) == ("ok", []), result["reason"]
        assert result["product"], result["key"]
        assert result["timings_ms"]["total"] > 0
    tls = {r["key"]: r["tls"] for r in results}
    assert tls["http"] is None
    assert tls["imaps"]["certificate"]["common_name"] == LAB_HOST
    assert tls["imap"]["trusted"] is True
    # Read again inside TLS, where STARTTLS is no longer offered (RFC 3501 section 6.2.1).
    assert "IMAP4rev1" in next(r for r in results if r["key"] == "imap")["capabilities"]


def test_json_is_written_atomically_to_a_file(
    portcall: Cli, healthy: list[str], tmp_path: Path
) -> None:
    target = tmp_path / "out" / "report.json"
    target.parent.mkdir()
    target.write_text("an older report\n", encoding="utf-8")
    shown = portcall("check", *healthy, "--json", "-o", target)
    assert (shown.code, shown.out) == (0, "")
    assert json.loads(target.read_text(encoding="utf-8"))["schema"] == "portcall.check/1"
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]


def test_text_report_to_a_file(portcall: Cli, tmp_path: Path) -> None:
    target = tmp_path / "report.txt"
    shown = portcall("check", "127.0.0.1", "--catalog", refused_catalog(tmp_path), "-o", target)
    assert (shown.code, shown.out) == (1, "")
    text = target.read_text(encoding="utf-8")
    assert text.startswith("127.0.0.1 (127.0.0.1)\n")
    assert "  warning: no checked port answers on this host" in text
    summary = (
        "1 port checks on 1 host: 1 refused; 0 findings; nothing answers on 1 host; "
        "health: warnings"
    )
    assert text.endswith(summary + "\n")
    assert summary in shown.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["closed.toml", "report.txt"]


def test_interrupted_report_leaves_the_old_file_and_exits_130(
    portcall: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.txt"
    target.write_text("the last good report\n", encoding="utf-8")

    def interrupted(*args: Any, **kwargs: Any) -> None:
        stream = args[2]
        stream.write("half a rep")
        raise KeyboardInterrupt

    monkeypatch.setattr(check_cmd, "render", interrupted)
    shown = portcall("check", "127.0.0.1", "--catalog", refused_catalog(tmp_path), "-o", target)
    assert shown.code == 130
    assert "Interrupted." in shown.err
    assert target.read_text(encoding="utf-8") == "the last good report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["closed.toml", "report.txt"]


def test_plain_text_when_piped(healthy: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "portcall", "check", *healthy, "--ports", "pop3,imaps"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "127.0.0.1 (127.0.0.1)"
    assert [line.split()[1] for line in lines[1:3]] == ["ok", "ok"]
    assert "STARTTLS works" in done.stdout
    assert not set("\x1b│┃━─") & set(done.stdout)


# -- peer text is shown, never obeyed ------------------------------------------------------

ESCAPES = "\x1b[2J\x1b]0;owned\x07"
#: Right-to-left override, left-to-right isolate, zero-width space and joiner, Arabic letter
#: mark, byte order mark: each can reorder or hide what the reader sees.
INVISIBLE = "\u202e\u2066\u200b\u200d\u061c\ufeff"
SHOWN_INVISIBLE = "\\u202e\\u2066\\u200b\\u200d\\u061c\\ufeff"
#: A greeting that would clear the screen, retitle the window, restyle the table and, after a
#: carriage return, print over the start of its own line.
EVIL_GREETING = f"-ERR {ESCAPES}[red]FAKE[/red]{INVISIBLE}\rnothing wrong here\r\n".encode()
#: A certificate name with a newline: printed raw, it would add a row of its own.
EVIL_NAME = f"{ESCAPES}x\n   25  ok  [green]ok[/green]{INVISIBLE}"


@pytest.fixture
def evil(servers: ServerThread, tmp_path: Path) -> Path:
    """A user catalog of two hostile rows: POP3 refusing with escapes in its greeting, POP3S
    presenting a self-signed certificate whose name holds escapes and a newline."""
    cert, key = issue(None, cn=EVIL_NAME, dns=()).write(tmp_path, "evil")
    ports = {
        "pop3": servers.serve(pop3(EVIL_GREETING)),
        "pop3s": servers.serve(pop3(), server_context(str(cert), str(key))),
    }
    return write_catalog(tmp_path / "evil.toml", ports)


FORGED_ROW = re.compile(r"^[\W_]*25\W+ok\b", re.MULTILINE)


def assert_inert(report: str) -> None:
    for char in ("\x1b", "\x07", "\r", *INVISIBLE):
        assert char not in report
    assert not FORGED_ROW.search(report)
    for visible in ("\\x1b[2J", "\\x1b]0;owned\\x07", "[red]FAKE[/red]", "\\x0d", SHOWN_INVISIBLE):
        assert visible in report


def test_text_report_is_inert(portcall: Cli, evil: Path) -> None:
    shown = portcall("check", "127.0.0.1", "--catalog", evil, "--servername", HOST)
    assert shown.code == 2
    assert_inert(shown.out)
    assert "\\x0a   25  ok" in shown.out


def test_rich_table_is_inert(evil: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Wide enough that no escaped sequence is folded across two lines of a cell.
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    catalog = load_catalog(evil)
    settings = Settings(timeout=2.0, servername=HOST)
    results = asyncio.run(check_async(["127.0.0.1"], catalog=catalog, settings=settings))
    table = io.StringIO()
    render(results, catalog, table, rich_output=True)
    report = table.getvalue()
    assert "┃ port" in report
    assert_inert(report)


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def test_json_document_is_inert(portcall: Cli, evil: Path) -> None:
    shown = portcall("check", "127.0.0.1", "--catalog", evil, "--servername", HOST, "--json")
    assert shown.code == 2
    for char in INVISIBLE:  # JSON itself would escape controls, but not these
        assert char not in shown.out
    document = json.loads(shown.out)
    # What `jq -r` prints of every field: the strings, their JSON escapes undone.
    printed = "\n".join(_strings(document))
    assert_inert(printed)
    results = {r["key"]: r for r in document["results"]}
    assert SHOWN_INVISIBLE in results["pop3"]["reason"]
    subject = results["pop3s"]["tls"]["certificate"]["subject"]
    assert "\\x1b[2J" in subject and "\\x0a   25  ok" in subject
