"""Postfix as the lab's SMTP server: STARTTLS on 25, implicit TLS on 465.

The instance has its own configuration directory and queue under its work directory, runs
without chroot, and hands every message to the `error` transport, so nothing is ever
delivered. Postfix logs only to syslog unless `maillog_file` is set, which also needs
`maillog_file_prefixes` and the `postlog` service.

`postfix start` forks the master, which outlives the command that started it; the master's
PID (from its pid file) is how the instance is stopped. On SIGTERM, which is what
`postfix abort` sends, the master stops its children, then exits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.interop.lab.base import Daemon, LabContext
from tests.interop.lab.pki import CertChoice, cert_pair

POSTFIX = "/usr/sbin/postfix"

#: Every transport: smtpd rejects each recipient with this text, so no message is queued.
NEVER_DELIVERED = "error:the portcall lab never delivers mail"

# master.cf services besides smtpd. Columns: service type private unpriv chroot wakeup maxproc
# command. Only what smtpd and the queue manager call on; no pickup, no local delivery.
_SERVICES = """\
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
proxymap  unix  - - n - - proxymap
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


class Postfix(Daemon):
    def __init__(
        self,
        starttls_ports: tuple[int, ...] = (25,),
        implicit_ports: tuple[int, ...] = (465,),
        cert: CertChoice = "good",
        starttls: bool = True,
        name: str = "postfix",
        dovecot_sasl: Path | None = None,
    ) -> None:
        """`starttls=False`: the `starttls_ports` do not offer STARTTLS (security level
        none); the `implicit_ports` still speak TLS from the first byte. `dovecot_sasl`,
        the socket of a Dovecot auth service, turns SMTP AUTH on with Dovecot's mechanisms."""
        self.name = name
        self.dovecot_sasl = dovecot_sasl
        self.starttls_ports = starttls_ports
        self.implicit_ports = implicit_ports
        self.ports = starttls_ports + implicit_ports
        self.cert = cert
        self.starttls = starttls
        self._directory: Path | None = None
        self._master_pid: int | None = None

    def start(self, lab: LabContext) -> None:
        directory = lab.workdir / self.name
        self._directory = directory
        config = directory / "config"
        config.mkdir(parents=True)
        (directory / "queue").mkdir()
        _write_settled(config / "main.cf", self._main_cf(lab, directory))
        _write_settled(config / "master.cf", self._master_cf(lab))
        self._run_postfix(lab, config, directory / "postfix.log")
        self._master_pid = _read_pid(directory / "queue" / "pid" / "master.pid")
        try:
            lab.wait_ports(self.ports, timeout=10.0)
        except RuntimeError as error:
            message = f"postfix ({self.name}) did not start: {error}\n{self.tail()}"
            raise RuntimeError(message) from None

    def stop(self) -> None:
        pid, self._master_pid = self._master_pid, None
        if pid is not None:
            _stop_master(pid)

    def tail(self, lines: int = 25) -> str:
        """The end of the mail log and of the start command's output."""
        if self._directory is None:
            return ""
        parts = []
        for log in ("maillog", "postfix.log"):
            with contextlib.suppress(OSError):
                text = (self._directory / log).read_text(errors="replace")
                parts.extend(text.splitlines()[-lines:])
        return "\n".join(parts)

    def _run_postfix(self, lab: LabContext, config: Path, log: Path) -> None:
        # The master forks and keeps the command's stdout: a file, never the runner's pipe.
        with log.open("ab") as out:
            result = subprocess.run(
                lab.ns_cmd([POSTFIX, "-c", str(config), "start"]),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=30,
                check=False,
            )
        if result.returncode != 0:
            raise RuntimeError(f"postfix ({self.name}) did not start:\n{self.tail()}")

    def _main_cf(self, lab: LabContext, directory: Path) -> str:
        cert, key = cert_pair(lab.pki, self.cert)
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": directory / "queue",
            # postfix start creates it owned by the mail owner, as the master needs.
            "data_directory": directory / "data",
            "maillog_file": directory / "maillog",
            "maillog_file_prefixes": directory,
            "myhostname": lab.hostname,
            "mydestination": "",
            "inet_interfaces": "all" if lab.listen_address == "0.0.0.0" else lab.listen_address,
            "inet_protocols": "ipv4",
            "alias_maps": "",
            "alias_database": "",
            "biff": "no",
            "default_transport": NEVER_DELIVERED,
            "local_transport": NEVER_DELIVERED,
            "relay_transport": NEVER_DELIVERED,
            "virtual_transport": NEVER_DELIVERED,
            "smtpd_tls_cert_file": cert,
            "smtpd_tls_key_file": key,
            # RFC 3207: "may" offers STARTTLS without requiring it.
            "smtpd_tls_security_level": "may" if self.starttls else "none",
        }
        if self.dovecot_sasl is not None:
            settings["smtpd_sasl_auth_enable"] = "yes"
            settings["smtpd_sasl_type"] = "dovecot"
            settings["smtpd_sasl_path"] = self.dovecot_sasl
        return "".join(f"{key} = {value}\n" for key, value in settings.items())

    def _master_cf(self, lab: LabContext) -> str:
        smtpd = "inet n - n - - smtpd"
        # A service named by its port alone listens on every inet_interfaces address.
        host = "" if lab.listen_address == "0.0.0.0" else f"{lab.listen_address}:"
        lines = [f"{host}{port} {smtpd}" for port in self.starttls_ports]
        # RFC 8314 section 3: on the submissions port TLS starts before the greeting.
        implicit = "-o smtpd_tls_wrappermode=yes -o smtpd_tls_security_level=encrypt"
        lines += [f"{host}{port} {smtpd} {implicit}" for port in self.implicit_ports]
        return "\n".join(lines) + "\n" + _SERVICES


def _write_settled(path: Path, text: str) -> None:
    """Write a configuration file dated a minute ago. Postfix (util/load_file.c) reads a
    main.cf again, every 300 ms, for as long as its time stamp is recent, in case an editor
    is still saving it: a file written just now costs each start two seconds."""
    path.write_text(text)
    settled = time.time() - 60
    os.utime(path, (settled, settled))


def _read_pid(path: Path) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, IndexError, ValueError) as error:
        raise RuntimeError(f"no master PID in {path}: {error}") from None


def _stop_master(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM the master, then wait until nothing of its process group runs; SIGKILL the
    group if it is still there at `timeout`. The master leads the group (it calls setsid),
    and its children stay in it."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if _wait_group_gone(pid, timeout):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    _wait_group_gone(pid, timeout)


def _wait_group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _group_members(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _group_members(pgid: int) -> list[int]:
    """PIDs in process group `pgid`, zombies left out: the forked master's parent is init,
    which may reap it long after it exited."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # After the command name (in parentheses, may hold spaces): state, ppid, pgrp.
        state, _ppid, group = text.rpartition(")")[2].split()[:3]
        if state != "Z" and int(group) == pgid:
            members.append(int(stat.parent.name))
    return members
