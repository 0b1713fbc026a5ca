"""`listen --workers N`: N processes serve the same ports and share the connections; they end
with the process that started them, however it ends."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.responders.test_listen_cli import free_ports

#: POP3's catalog port, moved by `--port-offset` to a port free when the test starts: a fixed
#: one in the ephemeral range may be some client connection's local port at that moment.
POP3_CATALOG = 110


def children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(line) for line in found.stdout.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child that has exited but not been reaped yet is a zombie: gone for our purpose.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


def gone_within(pids: list[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(alive(pid) for pid in pids):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def pop3_port() -> int:
    return free_ports(1)[0]


@pytest.fixture
def listening(tmp_path: Path, pop3_port: int) -> Iterator[subprocess.Popen[str]]:
    offset = pop3_port - POP3_CATALOG
    argv = [sys.executable, "-m", "portcall", "listen", "--workers", "3", "--ports", "pop3"]
    argv += ["--port-offset", str(offset), "--cert-dir", str(tmp_path / "certs")]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("Ready:"):
            break
    time.sleep(0.3)  # the workers bind as the first process does
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def greeting(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        return sock.recv(100)


def test_three_processes_share_the_port(listening: subprocess.Popen[str], pop3_port: int) -> None:
    workers = children(listening.pid)
    assert len(workers) == 2
    listeners = subprocess.run(
        ["ss", "-Hltnp", f"sport = :{pop3_port}"], capture_output=True, text=True
    )
    serving = {
        int(part.split("pid=")[1].split(",")[0])
        for part in listeners.stdout.split()
        if "pid=" in part
    }
    assert serving == {listening.pid, *workers}
    assert all(greeting(pop3_port).startswith(b"+OK") for _ in range(30))


def test_the_workers_end_with_a_sigterm(listening: subprocess.Popen[str]) -> None:
    workers = children(listening.pid)
    listening.send_signal(signal.SIGTERM)
    assert listening.wait(10) == 0
    assert gone_within(workers, 5)


def test_the_workers_end_when_their_parent_is_killed(listening: subprocess.Popen[str]) -> None:
    workers = children(listening.pid)
    listening.kill()
    listening.wait(10)
    assert gone_within(workers, 5)
