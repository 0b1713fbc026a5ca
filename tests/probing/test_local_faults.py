"""Faults of this machine are local errors with their own exit code, never verdicts about a
target; and a run whose targets cannot be found or do not answer cannot pass as healthy."""

from __future__ import annotations

import asyncio
import errno
import json
import resource
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from portcall import LocalFault, Settings, check_async, cli
from portcall.catalog import load_catalog
from portcall.cli.group import EXIT_LOCAL
from portcall.probing.errors import Phase, classify, has_route, local_fault
from portcall.tls.context import TrustStoreError
from portcall.verdicts import Health, Result, Verdict, overall_health

CATALOG = load_catalog()


def moved_catalog(path: Path, ports: dict[str, int]) -> Path:
    """A user catalog of built-in rows, each moved to the port given for its key."""
    rows = []
    for key, port in ports.items():
        entry = CATALOG.by_key(key)
        assert entry is not None
        fields = {**entry.to_dict(), "port": port}
        rows.append("[[port]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items()))
    path.write_text('[catalog]\nname = "lab"\ntitle = "t"\n\n' + "\n".join(rows), "utf-8")
    return path


def unused_ports(count: int) -> list[int]:
    held = [socket.socket() for _ in range(count)]
    try:
        for sock in held:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in held]
    finally:
        for sock in held:
            sock.close()


def run_portcall(*args: str, limit_files: int | None = None, netns: str | None = None) -> Any:
    def limit() -> None:
        if limit_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit_files, limit_files))

    prefix = ["ip", "netns", "exec", netns] if netns else []
    return subprocess.run(
        [*prefix, sys.executable, "-m", "portcall", *args],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit,
        check=False,
    )


def test_a_low_open_file_limit_slows_the_run_and_says_so(tmp_path: Path) -> None:
    """The connections open at once shrink to what the limit allows: every verdict still
    comes, with a warning that filtered ports will take longer."""
    keys = ["pop3", "imap", "smtp", "nntp", "http", "ldap"]
    catalog = moved_catalog(tmp_path / "c.toml", dict(zip(keys, unused_ports(6), strict=True)))
    done = run_portcall("check", "127.0.0.0/28", "--catalog", str(catalog), limit_files=40)
    assert done.returncode == 1, done.stderr  # nothing answers on any host: warnings
    assert done.stderr.startswith("warning: the open-file limit (40) allows ")
    assert "raise it with ulimit -n" in done.stderr
    assert done.stdout.count("refused") >= 16 * 6
    assert "Traceback" not in done.stderr


def test_too_few_file_descriptors_is_a_local_error(tmp_path: Path) -> None:
    keys = ["pop3", "imap", "smtp", "nntp", "http", "ldap"]
    catalog = moved_catalog(tmp_path / "c.toml", dict(zip(keys, unused_ports(6), strict=True)))
    done = run_portcall("check", "127.0.0.0/28", "--catalog", str(catalog), limit_files=20)
    assert done.returncode == EXIT_LOCAL, done.stderr
    assert done.stderr.startswith("Error: this machine cannot open the connection")
    assert "open-file limit is 20" in done.stderr and "ulimit -n" in done.stderr
    assert "Traceback" not in done.stderr
    assert "unreachable" not in done.stdout  # no verdict about any target


@pytest.fixture(scope="module")
def routeless_namespace() -> Iterator[str]:
    """A network namespace with only its loopback up: no route leads anywhere else."""
    assert shutil.which("ip"), "iproute2's ip is needed"
    name = f"pc-noroute-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_no_route_from_this_machine_is_a_local_error(routeless_namespace: str) -> None:
    # 192.0.2.1 (TEST-NET-1): inside the namespace the kernel has no route, so nothing is sent.
    done = run_portcall("check", "192.0.2.1", "--ports", "25", netns=routeless_namespace)
    assert done.returncode == EXIT_LOCAL, (done.stdout, done.stderr)
    assert "this machine has no route to 192.0.2.1" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_no_route_is_the_targets_business_when_a_route_exists() -> None:
    # A router's "host unreachable" for an address this machine can route to stays a verdict.
    assert has_route("127.0.0.1")
    unreachable = OSError(errno.EHOSTUNREACH, "No route to host")
    assert local_fault(unreachable, "127.0.0.1") is None
    failure = classify(unreachable, Phase.CONNECT, b"", 1.0, "127.0.0.1")
    assert failure.verdict is Verdict.UNREACHABLE


@pytest.mark.parametrize(
    ("code", "advice"),
    [
        (errno.EMFILE, "ulimit -n"),
        (errno.ENFILE, "lower --concurrency"),
        (errno.ENOBUFS, "socket buffers"),
        (errno.EADDRNOTAVAIL, "no local address or port is free"),
    ],
)
def test_each_local_errno_raises_instead_of_judging_the_target(code: int, advice: str) -> None:
    with pytest.raises(LocalFault, match=advice):
        classify(OSError(code, "local trouble"), Phase.CONNECT, b"", 1.0, "127.0.0.1")


def test_library_with_an_unusable_trust_store_raises_a_local_fault(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n", encoding="utf-8")
    (port,) = unused_ports(1)
    entry = CATALOG.by_key("imaps")
    assert entry is not None
    moved = type(entry)(**{**entry.__dict__, "port": port})
    with pytest.raises(TrustStoreError, match="holds no PEM or DER certificate") as raised:
        asyncio.run(check_async(["127.0.0.1"], entries=[moved], settings=Settings(cafile=str(bad))))
    assert isinstance(raised.value, LocalFault)


@pytest.fixture
def no_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every name fails to resolve, without asking a DNS server (which may sit elsewhere)."""

    async def fail(self: asyncio.AbstractEventLoop, host: Any, port: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "getaddrinfo", fail)


def test_an_unresolved_target_fails_the_run(
    no_dns: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as ended:
        cli.main(["check", "mial.example.invalid", "--ports", "25"])
    assert ended.value.code == 2
    out = capsys.readouterr().out
    assert "unresolved" in out and "health: failures" in out


def test_a_host_where_nothing_answers_is_a_warning(tmp_path: Path) -> None:
    keys = ["pop3", "smtp"]
    catalog = moved_catalog(tmp_path / "c.toml", dict(zip(keys, unused_ports(2), strict=True)))
    done = run_portcall("check", "127.0.0.1", "--catalog", str(catalog), "--json")
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    assert document["health"] == "warnings"
    assert {r["verdict"] for r in document["results"]} == {"refused"}
    (host,) = document["hosts"]
    assert host["health"] == "warnings" and host["answered"] == 0
    assert "no checked port answers" in host["notes"][0]


def test_one_answering_port_keeps_the_host_healthy() -> None:
    # The host-level warning is only for hosts where nothing at all answered.
    results = [
        Result("h", 1, "a", Verdict.REFUSED, ""),
        Result("h", 2, "b", Verdict.OK, ""),
        Result("g", 1, "a", Verdict.FILTERED, ""),
    ]
    assert overall_health(results[:2]) is Health.HEALTHY
    assert overall_health(results) is Health.WARNINGS


def test_a_low_open_file_limit_against_answering_ports_ends_with_every_verdict(
    tmp_path: Path,
) -> None:
    """With two connections at most, probes waiting with a connection open for a slot and
    probes holding a slot while waiting for a connection must not lock each other out."""
    offset = 31000
    keys = ["pop3", "imap", "smtp", "nntp", "http", "routing"]
    listener = subprocess.Popen(
        [sys.executable, "-m", "portcall", "listen", "--port-offset", str(offset),
         "--ports", ",".join(keys), "--cert-dir", str(tmp_path / "certs"),
         "--bind", "127.0.0.1", "--bind", "127.0.0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        assert listener.stdout is not None
        for line in listener.stdout:
            if line.startswith("Ready:"):
                break
        ports = {key: CATALOG.by_key(key).port + offset for key in keys}  # type: ignore[union-attr]
        catalog = moved_catalog(tmp_path / "c.toml", ports)
        done = run_portcall(
            "check", "127.0.0.1", "127.0.0.2", "--catalog", str(catalog), "--timeout", "5",
            "--json", limit_files=40,
        )  # fmt: skip
        verdicts = [r["verdict"] for r in json.loads(done.stdout)["results"]]
        assert verdicts == ["ok"] * 12, done.stderr
    finally:
        listener.terminate()
        listener.wait(10)
