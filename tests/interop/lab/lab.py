"""The lab: a private network namespace, a work directory, a PKI, and the daemons in it.

Everything the lab starts listens on the namespace's own loopback, so nothing touches the
machine's ports. `ip netns exec` bind-mounts ``/etc/netns/NAME/hosts`` over ``/etc/hosts``
for the commands it runs, which is how the lab host name resolves inside the namespace only.

`LoggedProcess` is the small process wrapper the daemon modules share: start in the
namespace with stdio in a log file, wait for the ports, stop by PID.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from tests.interop.lab.base import Daemon, LabContext, Pki
from tests.interop.lab.pki import make_pki

DEFAULT_HOSTNAME = "mail.lab.test"
NETNS_PREFIX = "pcl-"
NETNS_ETC = Path("/etc/netns")

_counter = itertools.count()
_TCP_LISTEN = "0A"  # the LISTEN state in /proc/net/tcp (include/net/tcp_states.h)

# Runs inside the namespace: connects to each port until it accepts, or gives up.
_WAIT_SCRIPT = """
import socket, sys, time
deadline = time.monotonic() + float(sys.argv[1])
for port in map(int, sys.argv[2:]):
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError as error:
            if time.monotonic() > deadline:
                sys.exit(f"port {port}: {error}")
            time.sleep(0.05)
"""


class Lab(LabContext):
    """Use as a context manager; leaving it stops the daemons and removes every trace."""

    def __init__(self, hostname: str = DEFAULT_HOSTNAME, *, every_address: bool = False) -> None:
        self.hostname = hostname
        self.listen_address = "0.0.0.0" if every_address else "127.0.0.1"
        self.netns = f"{NETNS_PREFIX}{os.getpid()}-{next(_counter)}"
        self.daemons: list[Daemon] = []
        self._workdir: Path | None = None
        self._pki: Pki | None = None
        self._netns_made = False

    @property
    def workdir(self) -> Path:  # type: ignore[override]
        if self._workdir is None:
            raise RuntimeError("the lab is not open: use it in a with statement")
        return self._workdir

    @property
    def pki(self) -> Pki:  # type: ignore[override]
        if self._pki is None:
            raise RuntimeError("the lab is not open: use it in a with statement")
        return self._pki

    def __enter__(self) -> Lab:
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _open(self) -> None:
        workdir = Path(tempfile.mkdtemp(prefix=f"{self.netns}-"))
        self._workdir = workdir
        # Daemons that drop privileges (nnrpd as news) must still reach their files.
        workdir.chmod(0o755)
        self._pki = make_pki(workdir / "pki", self.hostname)
        (workdir / "pki").chmod(0o755)
        _check(["ip", "netns", "add", self.netns])
        self._netns_made = True
        etc = NETNS_ETC / self.netns
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text(f"127.0.0.1 {self.hostname} localhost\n::1 localhost\n")
        _check(["ip", "-n", self.netns, "link", "set", "lo", "up"])

    def close(self) -> None:
        """Stop the daemons (last started first), then remove the namespace and the files."""
        while self.daemons:
            _quietly_stop(self.daemons.pop())
        if self._netns_made:
            remove_netns(self.netns)
            self._netns_made = False
        shutil.rmtree(NETNS_ETC / self.netns, ignore_errors=True)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def ns_cmd(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv]

    def wait_ports(self, ports: tuple[int, ...], timeout: float = 20.0) -> None:
        if not ports:
            return
        argv = [sys.executable, "-c", _WAIT_SCRIPT, str(timeout), *map(str, ports)]
        result = self.run(argv, timeout=timeout + 10)
        if result.returncode != 0:
            raise RuntimeError(f"ports {ports} not ready in {self.netns}: {result.stderr.strip()}")

    def start(self, *daemons: Daemon) -> None:
        """Start each daemon in order; if one fails, the ones started so far are stopped."""
        try:
            for daemon in daemons:
                # Listed before starting, so a half-started daemon is stopped as well.
                self.daemons.append(daemon)
                daemon.start(self)
        except BaseException:
            while self.daemons:
                _quietly_stop(self.daemons.pop())
            raise

    def nft(self, ruleset: str) -> None:
        """Load nftables rules into the namespace (they vanish with it)."""
        result = self.run(["nft", "-f", "-"], input=ruleset)
        if result.returncode != 0:
            raise RuntimeError(f"nft refused the ruleset: {result.stderr.strip()}")

    def run(
        self,
        argv: list[str],
        *,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        check: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the namespace; `env` is added to the current environment."""
        return subprocess.run(
            self.ns_cmd(argv),
            input=input,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )


class LoggedProcess:
    """A daemon that stays in the foreground in the namespace (its PID is the daemon's,
    since `ip netns exec` execs it), with stdout and stderr appended to `log`."""

    def __init__(self, lab: LabContext, argv: list[str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            # Its own session: a Ctrl-C meant for the test runner does not reach it directly.
            self.process = subprocess.Popen(
                lab.ns_cmd(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, lab: LabContext, ports: tuple[int, ...], timeout: float = 10.0) -> None:
        """Return once every port accepts; RuntimeError with the log's tail if the process
        exits or the time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"exited with {self.process.returncode}:\n{self.tail()}")
            try:
                lab.wait_ports(ports, timeout=0.5)
                # An answer alone may come from another process holding the port (nginx
                # retries a busy port for seconds before it gives up).
                foreign = set(ports) - listening_ports(self.process.pid)
                if not foreign:
                    return
                error = RuntimeError(f"ports {sorted(foreign)} are held by another process")
            except RuntimeError as not_ready:
                error = not_ready
            if time.monotonic() > deadline:
                raise RuntimeError(f"{error}\n{self.tail()}") from None
            time.sleep(0.1)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 5.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError as error:
            return f"(no log: {error})"
        return "\n".join(text.splitlines()[-lines:])


def listening_ports(pid: int) -> set[int]:
    """TCP ports on which `pid` or one of its descendants holds a listening socket."""
    inodes = set()
    for member in [pid, *_descendants(pid)]:
        inodes |= _socket_inodes(member)
    ports = set()
    for table in ("tcp", "tcp6"):
        # /proc/PID/net shows the network namespace that PID lives in.
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == _TCP_LISTEN and fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
    return inodes


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # The command name may hold spaces and parentheses; the fields after it do not.
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(stat.parent.name))
    found, queue = [], [pid]
    while queue:
        kids = children.get(queue.pop(), [])
        found += kids
        queue += kids
    return found


def remove_netns(name: str) -> None:
    """Kill what still runs in the namespace (by PID), then delete it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = _netns_pids(name)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if pids:
            _wait_gone(pids, 3.0)
    subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)
    shutil.rmtree(NETNS_ETC / name, ignore_errors=True)


def sweep_stale_namespaces() -> list[str]:
    """Remove lab namespaces left behind by test runs that died (their PID is gone)."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    removed = []
    for line in listing.stdout.splitlines():
        match = re.match(rf"({NETNS_PREFIX}(\d+)-\d+)\b", line)
        if match and not _alive(int(match.group(2))):
            remove_netns(match.group(1))
            removed.append(match.group(1))
    return removed


def _netns_pids(name: str) -> list[int]:
    result = subprocess.run(
        ["ip", "netns", "pids", name], capture_output=True, text=True, check=False
    )
    return [int(word) for word in result.stdout.split() if word.isdigit()]


def _wait_gone(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    """Whether `pid` still runs: a zombie (exited, not yet reaped by PID 1) does not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _quietly_stop(daemon: Daemon) -> None:
    # Cleanup goes on past a daemon that fails to stop; the namespace removal kills it anyway.
    with contextlib.suppress(Exception):
        daemon.stop()


def _check(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
