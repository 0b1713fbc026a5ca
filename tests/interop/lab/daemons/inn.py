"""INN's nnrpd as the lab's NNTP server: STARTTLS on 119, implicit TLS on 563.

No innd: nnrpd serves readers by itself as a standalone daemon (`-D`, kept in the
foreground with `-f`), one process per port. INNCONF points it at a private inn.conf whose
database, overview, spool and run directories are all under the work directory.

Traps:
* innd normally creates the overview's group.index; without one nnrpd greets every client
  with `400 NNTP server unavailable`. `makehistory -O -x` builds it from the active file.
* nnrpd drops to user news before it reads its TLS key: the key is copied into the work
  directory with group news and mode 0640.
* nnrpd built with SASL (Debian's is) lists STARTTLS in CAPABILITIES whatever its
  configuration (nnrpd/commands.c). With `starttls=False` there is no TLS configuration:
  STARTTLS is still listed, but refused with 580, and there is no NNTPS port.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.interop.lab.base import Daemon, LabContext
from tests.interop.lab.lab import LoggedProcess
from tests.interop.lab.pki import CertChoice, cert_pair

NEWS_BIN = Path("/usr/lib/news/bin")
NNRPD = NEWS_BIN / "nnrpd"
MAKEHISTORY = NEWS_BIN / "makehistory"
NEWS_USER = "news"
SUPERSERVER = Path(__file__).with_name("superserver.py")

#: The newsgroups the server carries (empty ones), with their descriptions.
GROUPS = {
    "lab.test": "Tests of the portcall lab.",
    "lab.announce": "Announcements of the portcall lab.",
}

# Directories nnrpd and makehistory write to, as user news.
_NEWS_DIRS = ("db", "overview", "spool", "run", "log", "tmp")

# Every host may read, nobody may post: nnrpd greets with 201 (RFC 3977 section 5.1.1).
_READERS_CONF = """\
auth "lab" {
    hosts: "*"
    default: "<lab>"
}
access "lab" {
    users: "<lab>"
    newsgroups: "*"
    access: R
}
"""

# Articles, if there ever were any, by time of arrival; needs no map file, unlike tradspool.
_STORAGE_CONF = """\
method timehash {
    newsgroups: *
    class: 1
}
"""


class Inn(Daemon):
    def __init__(
        self,
        nntp_ports: tuple[int, ...] = (119,),
        nntps_ports: tuple[int, ...] = (563,),
        cert: CertChoice = "good",
        starttls: bool = True,
        name: str = "inn",
        *,
        deep_backlog: bool = False,
    ) -> None:
        """`starttls=False`: no TLS at all; STARTTLS is refused (580), no NNTPS ports.
        `deep_backlog`: nnrpd is started per connection by a super-server (as from inetd)
        whose backlog takes bursts of hundreds of connections."""
        self.name = name
        self.deep_backlog = deep_backlog
        self.nntp_ports = nntp_ports
        self.nntps_ports = nntps_ports if starttls else ()
        self.ports = self.nntp_ports + self.nntps_ports
        self.cert = cert
        self.starttls = starttls
        self._processes: list[LoggedProcess] = []

    def start(self, lab: LabContext) -> None:
        directory = lab.workdir / self.name
        inn_conf = self._prepare(lab, directory)
        listeners = [(port, False) for port in self.nntp_ports]
        listeners += [(port, True) for port in self.nntps_ports]
        for port, implicit_tls in listeners:
            nnrpd = _nnrpd_argv(lab, port, implicit_tls)
            if self.deep_backlog:
                # nnrpd with no -D serves the connection on its standard input and output.
                nnrpd = [sys.executable, str(SUPERSERVER), lab.listen_address, str(port)]
                nnrpd += [str(NNRPD), "-n", *(["-S"] if implicit_tls else [])]
            argv = ["env", f"INNCONF={inn_conf}", *nnrpd]
            process = LoggedProcess(lab, argv, directory / f"nnrpd-{port}.log")
            self._processes.append(process)
            try:
                process.wait_ready(lab, (port,), timeout=10.0)
            except RuntimeError as error:
                raise RuntimeError(f"nnrpd ({self.name}) did not start: {error}") from None

    def stop(self) -> None:
        while self._processes:
            process = self._processes.pop()
            # Each client has its own nnrpd, forked into the daemon's process group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.process.pid, signal.SIGTERM)
            process.stop()

    def _prepare(self, lab: LabContext, directory: Path) -> Path:
        """Write every file nnrpd reads, build the overview; returns the inn.conf path."""
        for sub in ("etc", "tls", *_NEWS_DIRS):
            (directory / sub).mkdir(parents=True)
        (directory / "etc" / "readers.conf").write_text(_READERS_CONF)
        (directory / "etc" / "storage.conf").write_text(_STORAGE_CONF)
        _write_groups(directory / "db")
        inn_conf = directory / "inn.conf"
        inn_conf.write_text(self._inn_conf(lab, directory))
        for sub in _NEWS_DIRS:
            shutil.chown(directory / sub, NEWS_USER, NEWS_USER)
        _build_overview(inn_conf, directory / "overview")
        return inn_conf

    def _inn_conf(self, lab: LabContext, directory: Path) -> str:
        settings = {
            "domain": lab.hostname.partition(".")[2] or lab.hostname,
            # The name in the greeting and in Path headers.
            "pathhost": lab.hostname,
            "mta": "/bin/false",
            "ovmethod": "tradindexed",
            "hismethod": "hisv6",
            # A busy test machine must not be answered "load too high".
            "nnrpdloadlimit": "0",
            "pathnews": str(NEWS_BIN.parent),
            "pathetc": str(directory / "etc"),
            **{f"path{sub}": str(directory / sub) for sub in _NEWS_DIRS},
            **self._tls_settings(lab, directory / "tls"),
        }
        return "".join(f"{key}: {value}\n" for key, value in settings.items())

    def _tls_settings(self, lab: LabContext, tls_dir: Path) -> dict[str, str]:
        if not self.starttls:
            return {}
        cert, key = cert_pair(lab.pki, self.cert)
        own_cert, own_key = tls_dir / "cert.pem", tls_dir / "key.pem"
        shutil.copyfile(cert, own_cert)
        shutil.copyfile(key, own_key)
        shutil.chown(own_key, "root", NEWS_USER)
        own_key.chmod(0o640)
        return {
            "tlscafile": str(lab.pki.ca_cert),
            "tlscertfile": str(own_cert),
            "tlskeyfile": str(own_key),
        }


def _nnrpd_argv(lab: LabContext, port: int, implicit_tls: bool) -> list[str]:
    # -4: this IPv4 address only; -n: no reverse DNS lookup of clients.
    argv = [str(NNRPD), "-D", "-f", "-n", "-4", lab.listen_address, "-p", str(port)]
    return [*argv, "-S"] if implicit_tls else argv


def _write_groups(db: Path) -> None:
    # active: name, highest and lowest article number, status ("y": posting allowed there).
    (db / "active").write_text("".join(f"{name} 0000000000 0000000001 y\n" for name in GROUPS))
    (db / "newsgroups").write_text("".join(f"{n}\t{text}\n" for n, text in GROUPS.items()))
    (db / "active.times").write_text("")


def _build_overview(inn_conf: Path, overview: Path) -> None:
    # makehistory only writes files, so it runs outside the namespace; -x: no history file.
    result = subprocess.run(
        [str(MAKEHISTORY), "-O", "-x"],
        env={**os.environ, "INNCONF": str(inn_conf)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0 or not (overview / "group.index").exists():
        raise RuntimeError(f"makehistory did not build the overview: {result.stderr.strip()}")
