"""`portcall listen` as a user runs it: a subprocess, checked by `portcall check`, stopped by a
signal. Both sides read the same user catalog, whose ports are free high ports on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from portcall.catalog import load_catalog
from portcall.cli import EXIT_USAGE, main
from portcall.responders.certs import LabCertificates

HOST = "mail.example.test"


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on right now (all held at once, so they are distinct)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def toml_row(fields: dict[str, object]) -> str:
    # JSON strings, numbers and booleans are valid TOML values.
    return "[[port]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items())


def write_catalog(path: Path, ports: dict[str, int]) -> Path:
    """The built-in catalog with each row moved to `ports[key]`."""
    rows = []
    for entry in load_catalog().entries:
        fields = entry.to_dict()
        fields["port"] = ports[entry.key]
        rows.append(toml_row(fields))
    head = '[catalog]\nname = "lab"\ntitle = "Exchange ports moved for a test"\n\n'
    path.write_text(head + "\n".join(rows), encoding="utf-8")
    return path


def portcall(*args: str) -> list[str]:
    return [sys.executable, "-m", "portcall", *args]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment of every subprocess: the default lab directory lives in tmp_path."""
    return {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")}


class Listener:
    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []

    def wait_ready(self, deadline: float = 15.0) -> None:
        assert self.process.stdout is not None
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError(f"listen exited early: {self.lines} {self.stderr()}")
            self.lines.append(line.rstrip("\n"))
            if line.startswith("Ready:"):
                return
        raise AssertionError(f"listen never became ready: {self.lines}")

    def stop(self, number: int = signal.SIGINT) -> tuple[int, list[str]]:
        self.process.send_signal(number)
        out, _ = self.process.communicate(timeout=10)
        return self.process.returncode, self.lines + out.splitlines()

    def stderr(self) -> str:
        return self.process.stderr.read() if self.process.stderr else ""


@contextlib.contextmanager
def listening(args: list[str], env: dict[str, str]) -> Iterator[Listener]:
    process = subprocess.Popen(
        portcall("listen", *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    listener = Listener(process)
    try:
        listener.wait_ready()
        yield listener
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


def test_check_against_listen_is_ok_on_every_port_with_the_product_named(
    tmp_path: Path, env: dict[str, str]
) -> None:
    keys = [entry.key for entry in load_catalog().entries]
    catalog = write_catalog(
        tmp_path / "lab.toml", dict(zip(keys, free_ports(len(keys)), strict=True))
    )
    cert_dir = tmp_path / "certs"
    args = ["--catalog", str(catalog), "--cert-dir", str(cert_dir), "--hostname", HOST]
    with listening(args, env) as listener:
        trust = ["--ca", str(cert_dir / "ca.crt"), "--servername", HOST]
        checked = subprocess.run(
            portcall("check", "127.0.0.1", "--catalog", str(catalog), "--json", *trust),
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        code, lines = listener.stop()
    document = json.loads(checked.stdout)
    results = {r["key"]: r for r in document["results"]}
    assert set(results) == set(keys)
    for key, result in results.items():
        assert result["verdict"] == "ok", (key, result["reason"])
        assert result["findings"] == [], (key, result["findings"])
        assert result["product"], (key, result["banner"])
    assert checked.returncode == 0, checked.stderr
    assert code == 0
    served = [line for line in lines if " -> " in line]
    assert {line.split(" -> ")[1].split()[0] for line in served} == set(keys)
    assert lines[-1].startswith("Stopped:")


def test_listen_prints_where_the_lab_ca_is(tmp_path: Path, env: dict[str, str]) -> None:
    (port,) = free_ports(1)
    offset = port - 25
    with listening(["--ports", "smtp", "--port-offset", str(offset)], env) as listener:
        code, lines = listener.stop(signal.SIGTERM)
    ca = tmp_path / "xdg" / "portcall" / "lab" / "ca.crt"
    assert ca.is_file()
    assert any(f"--ca {ca}" in line for line in lines)
    assert code == 0


def test_max_per_client_turns_one_address_away_but_not_the_others(
    env: dict[str, str],
) -> None:
    (port,) = free_ports(1)
    args = ["--ports", "smtp", "--port-offset", str(port - 25), "--max-per-client", "2"]
    with listening(args, env) as listener, contextlib.ExitStack() as held:
        greedy = [
            held.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5))
            for _ in range(3)
        ]
        banners = [client.recv(512) for client in greedy]
        other = held.enter_context(
            socket.create_connection(
                ("127.0.0.1", port), timeout=5, source_address=("127.0.0.2", 0)
            )
        )
        other_banner = other.recv(512)
        code, lines = listener.stop()
    assert [b.startswith(b"220 ") for b in banners] == [True, True, False]
    assert other_banner.startswith(b"220 ")
    assert code == 0
    assert any("turned away" in line for line in lines), lines


@pytest.mark.parametrize(
    ("profile", "expected"),
    [("exchange2003", b"6.0.3790"), ("exchange2000", b"5.0.2195"), ("neutral", b"")],
)
def test_port_offset_and_profile(
    tmp_path: Path, env: dict[str, str], profile: str, expected: bytes
) -> None:
    (port,) = free_ports(1)
    args = ["--ports", "smtp", "--port-offset", str(port - 25), "--profile", profile]
    with listening([*args, "--hostname", HOST], env) as listener:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            banner = client.recv(512)
        code, lines = listener.stop()
    assert banner.startswith(b"220 ") and HOST.encode() in banner
    if expected:
        assert expected in banner and b"Microsoft" in banner
    else:
        assert b"Microsoft" not in banner
    assert code == 0
    assert any(f"-> smtp 25 (on {port})" in line for line in lines), lines


def test_user_certificate_is_presented(
    lab: LabCertificates, env: dict[str, str], client_tls: ssl.SSLContext
) -> None:
    (port,) = free_ports(1)
    files = ["--cert", str(lab.host_cert), "--key", str(lab.host_key)]
    args = ["--ports", "smtps", "--port-offset", str(port - 465), *files]
    with listening([*args, "--hostname", HOST], env) as listener:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            client_tls.wrap_socket(raw, server_hostname=HOST) as client,
        ):
            presented = client.getpeercert(binary_form=True)
            banner = client.recv(512)
        _, lines = listener.stop()
    assert presented == ssl.PEM_cert_to_DER_cert(lab.host_cert.read_text())
    assert banner.startswith(b"220 ")
    assert f"TLS: certificate {lab.host_cert} (key {lab.host_key})" in lines


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as stopped:
        main(args)
    code = stopped.value.code
    return int(code) if isinstance(code, int) else 1, capsys.readouterr().err


def test_a_taken_port_is_a_usage_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        args = ["listen", "--ports", "smtp", "--port-offset", str(port - 25)]
        code, err = run_cli([*args, "--cert-dir", str(tmp_path)], capsys)
    assert code == EXIT_USAGE
    assert f"Error: port {port} (SMTP (25)) is already taken" in err
    assert "Hint:" in err


def test_permission_denied_suggests_port_offset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def denied(self: Any, *args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EACCES, "permission denied")

    # The test may run as root, where binding port 25 succeeds: fake the kernel's refusal.
    monkeypatch.setattr(asyncio.BaseEventLoop, "create_server", denied)
    code, err = run_cli(["listen", "--ports", "smtp", "--cert-dir", str(tmp_path)], capsys)
    assert code == EXIT_USAGE
    assert "Error: no permission to listen on 127.0.0.1 port 25" in err
    assert "--port-offset 10000" in err and "CAP_NET_BIND_SERVICE" in err


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--cert", "x.pem"], "--cert and --key go together"),
        (["--cert", "x.pem", "--key", "k.pem", "--cert-dir", "d"], "exclude --cert-dir"),
        (["--hostname", "not a name!"], "--hostname: 'not a name!' is not a host name"),
        (["--hostname", "192.0.2.0/30"], "is a range"),
        (["--cert", "missing.pem", "--key", "missing.key"], "cannot read missing.pem"),
    ],
)
def test_bad_certificate_options_are_usage_errors(
    args: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_cli(["listen", "--ports", "smtp", *args], capsys)
    assert code == EXIT_USAGE
    assert err.startswith("Error: ") and said in err and "\nHint: " in err
