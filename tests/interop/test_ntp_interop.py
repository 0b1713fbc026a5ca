"""NTP against chrony (Debian's `chrony`), both ways round, on loopback.

portcall's client asks a chronyd of the test's own (its own configuration in a temporary
directory, a free port, `local stratum 8`, the machine's clock left alone with -x) for the time.
What chrony 4.3 answers, as read here: version 4, mode 4, leap 0, stratum 8, reference ID
127.127.1.1 (its local reference), a precision near 2^-26 s, the client's poll echoed, no root
delay or dispersion.

portcall's server role is checked by chronyd itself as a client (`chronyd -Q`, which measures a
server's offset and exits without touching the clock): a server whose clock runs an hour ahead
must be measured an hour ahead.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from portcall.protocols.base import RemoteProtocolError, ServiceInfo
from portcall.protocols.ntp import NtpClient, NtpServer
from tests.interop.dc_drive import drive
from tests.protocols.dc_serving import run_tool, serving

pytestmark = pytest.mark.interop

CHRONYD = "chronyd"
INSTALL_HINT = "install it with: apt-get install -y --no-install-recommends chrony"
#: Seconds chronyd may take to answer its first request.
START_TIMEOUT = 10.0
LOCAL_STRATUM = 8


@dataclass(frozen=True)
class Chrony:
    port: int
    log: Path


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _chronyd() -> str:
    path = shutil.which(CHRONYD)
    if path is None:
        pytest.fail(f"{CHRONYD} not found; {INSTALL_HINT}", pytrace=False)
    return path


def ask(port: int, client: NtpClient | None = None, timeout: float = 2.0) -> ServiceInfo:
    """portcall's NTP client run once against 127.0.0.1:`port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", port))
        return drive(client or NtpClient(), sock)


@pytest.fixture(scope="module")
def chrony(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chrony]:
    """A chronyd of the module's own on a free loopback port, stopped by its PID at the end."""
    executable = _chronyd()
    workdir = tmp_path_factory.mktemp("chrony")
    port = _free_udp_port()
    conf = workdir / "chrony.conf"
    conf.write_text(
        f"port {port}\nbindaddress 127.0.0.1\nallow 127.0.0.1\n"
        f"local stratum {LOCAL_STRATUM}\ncmdport 0\npidfile {workdir / 'chronyd.pid'}\n"
    )
    log = workdir / "chronyd.log"
    with log.open("wb") as out:
        # -x: never touch the machine's clock; -d: stay in the foreground; -u root: no switch
        # to the _chrony user, who could not write the temporary directory.
        process = subprocess.Popen(
            [executable, "-f", str(conf), "-x", "-d", "-u", "root"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for(port, process, log)
        yield Chrony(port, log)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_for(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until chronyd answers as the stratum it was given (before that it may not answer)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"chronyd exited: {log.read_text()[-2000:]}", pytrace=False)
        try:
            if ask(port, timeout=0.3).details["stratum"] == LOCAL_STRATUM:
                return
        except (OSError, RemoteProtocolError):
            pass
        time.sleep(0.1)
    pytest.fail(f"chronyd did not answer in {START_TIMEOUT} s: {log.read_text()[-2000:]}")


def test_client_reads_chrony_s_local_reference(chrony: Chrony) -> None:
    before = datetime.now(UTC)
    info = ask(chrony.port, NtpClient(transmit=0x0123456789ABCDEF))
    after = datetime.now(UTC)
    details = info.details
    assert info.banner == f"NTP v4 stratum {LOCAL_STRATUM} ref 127.127.1.1"
    assert (details["version"], details["mode"], details["leap"]) == (4, 4, 0)
    assert details["stratum"] == LOCAL_STRATUM
    assert details["reference_id"] == "127.127.1.1"
    # The client's poll (0) comes back; a local reference has no root delay or dispersion.
    assert details["poll"] == 0
    assert (details["root_delay"], details["root_dispersion"]) == (0.0, 0.0)
    assert isinstance(details["precision"], int) and -32 < details["precision"] < -10
    # Chrony's receive and transmit times are this machine's clock, between our two readings.
    received = datetime.fromisoformat(str(details["receive_time"]))
    sent = datetime.fromisoformat(str(details["transmit_time"]))
    slack = timedelta(milliseconds=50)
    assert before - slack <= received <= sent <= after + slack
    assert datetime.fromisoformat(str(details["reference_time"])) <= sent
    assert info.notes == []


def test_client_random_transmit_pairs_every_reply(chrony: Chrony) -> None:
    """Each request's random transmit timestamp comes back as the origin of its reply."""
    for _ in range(3):
        assert ask(chrony.port).details["stratum"] == LOCAL_STRATUM


@pytest.mark.parametrize("shift", [3600, -86400])
def test_chronyd_measures_portcall_s_server(shift: int, tmp_path: Path) -> None:
    executable = _chronyd()
    clock = lambda: datetime.now(UTC) + timedelta(seconds=shift)  # noqa: E731

    async def main() -> tuple[int, str, list[list[str]]]:
        async with serving(lambda t: NtpServer(transport=t, stratum=4, clock=clock)) as ports:
            conf = tmp_path / "chrony-q.conf"
            conf.write_text(
                f"server 127.0.0.1 port {ports.udp} iburst maxsamples 4\ncmdport 0\n"
                f"pidfile {tmp_path / 'chronyd-q.pid'}\n"
            )
            status, output = await run_tool(executable, "-Q", "-f", str(conf), "-u", "root")
            return status, output, [s.heard for s in ports.served]

    status, output, heard = asyncio.run(main())
    assert status == 0, output
    found = re.search(r"System clock wrong by (-?[\d.]+) seconds \(ignored\)", output)
    assert found, output
    assert abs(float(found.group(1)) - shift) < 1.0, output
    assert heard and all(entry == ["NTP v4 client request"] for entry in heard), heard
