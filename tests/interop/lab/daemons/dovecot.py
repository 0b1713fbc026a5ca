"""Dovecot as the lab's IMAP and POP3 server: STARTTLS on 143 and 110, implicit TLS on 993
and 995.

Each instance has its own configuration file, `base_dir`, `state_dir` and `instance_name`
under its work directory, so several can run side by side. It runs in the foreground
(`dovecot -F`); SIGTERM to the master stops its children, then the master.

The auth process idles out after a while, and the first client after that is greeted with
"Waiting for authentication process to respond.." instead of the normal greeting:
`process_min_avail = 1` keeps auth and the login processes warm.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.interop.lab.base import Daemon, LabContext
from tests.interop.lab.lab import LoggedProcess
from tests.interop.lab.pki import CertChoice, cert_pair

DOVECOT = "/usr/sbin/dovecot"
NTLM_AUTH = "/usr/bin/ntlm_auth"
#: What Samba's NTLM server, behind Dovecot, calls itself: a standalone server names its
#: NetBIOS name as the target and the domain (`workgroup` is not told).
NTLM_NAMES = {"netbios name": "LABMAIL", "workgroup": "LABDOM"}

#: The one mailbox user, from a passwd-file: no system account, no PAM.
USER = "lab"
PASSWORD = "lab-secret"
#: The mail processes of a logged-in user run as this unprivileged system account.
MAIL_USER = "nobody"
MAIL_GROUP = "nogroup"


class Dovecot(Daemon):
    def __init__(
        self,
        imap_ports: tuple[int, ...] = (143,),
        imaps_ports: tuple[int, ...] = (993,),
        pop3_ports: tuple[int, ...] = (110,),
        pop3s_ports: tuple[int, ...] = (995,),
        cert: CertChoice = "good",
        starttls: bool = True,
        name: str = "dovecot",
        ntlm: bool = False,
        auth_socket: Path | None = None,
        *,
        shared_login: bool = False,
    ) -> None:
        """`starttls=False` turns TLS off altogether (`ssl = no`): no STARTTLS on the plain
        ports, and no implicit-TLS ports at all. `ntlm=True` offers NTLM beside PLAIN: this
        Dovecot build has no NTLM of its own, only the one that hands each message to Samba's
        `ntlm_auth` (`auth_use_winbind`), which answers from an smb.conf of the instance's own
        naming it (see `NTLM_NAMES`). `auth_socket` is where the auth service listens for an
        SMTP server's SASL requests (Postfix's `smtpd_sasl_type = dovecot`).
        `shared_login=True` runs the login services in Dovecot's high-performance mode: a
        login process per core serves many connections (`service_count = 0`), instead of a
        new process for each connection (the default, `service_count = 1`)."""
        self.name = name
        self.shared_login = shared_login
        self.ntlm = ntlm
        self.auth_socket = auth_socket
        self.imap_ports = imap_ports
        self.pop3_ports = pop3_ports
        self.imaps_ports = imaps_ports if starttls else ()
        self.pop3s_ports = pop3s_ports if starttls else ()
        self.ports = self.imap_ports + self.imaps_ports + self.pop3_ports + self.pop3s_ports
        self.cert = cert
        self.starttls = starttls
        self._process: LoggedProcess | None = None

    def start(self, lab: LabContext) -> None:
        directory = lab.workdir / self.name
        home = directory / "home"
        home.mkdir(parents=True)
        shutil.chown(home, MAIL_USER, MAIL_GROUP)
        passwd = directory / "passwd"
        # user:password:uid:gid:gecos:home:shell; the userdb's default_fields give uid and gid.
        # In the clear: Dovecot derives from it whatever a mechanism checks against (the NT
        # hash for NTLM), and this build's doveadm knows no NTLM scheme to store one.
        passwd.write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::{home}::\n")
        config = directory / "dovecot.conf"
        config.write_text(self._config(lab, directory, passwd))
        argv = [DOVECOT, "-F", "-c", str(config)]
        self._process = LoggedProcess(lab, argv, directory / "dovecot.log")
        try:
            self._process.wait_ready(lab, self.ports, timeout=10.0)
        except RuntimeError as error:
            raise RuntimeError(f"dovecot ({self.name}) did not start: {error}") from None

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()

    def _config(self, lab: LabContext, directory: Path, passwd: Path) -> str:
        settings = [
            f"base_dir = {directory / 'run'}",
            f"state_dir = {directory / 'state'}",
            f"instance_name = lab-{self.name}",
            f"log_path = {directory / 'dovecot.log'}",
            "protocols = imap pop3",
            # Room for a login process per connection (Dovecot's default), for a lab that
            # may stand in for hundreds of servers at once (tests/interop/test_scale_lab.py).
            "default_process_limit = 2048",
            "default_client_limit = 8192",
            f"listen = {lab.listen_address}",
            "mail_location = maildir:~/Maildir",
            *self._tls_settings(lab),
            *(self._ntlm_settings(directory) if self.ntlm else []),
            "passdb {",
            "  driver = passwd-file",
            f"  args = scheme=PLAIN {passwd}",
            "}",
            "userdb {",
            "  driver = passwd-file",
            f"  args = {passwd}",
            f"  default_fields = uid={MAIL_USER} gid={MAIL_GROUP}",
            "}",
            "service auth {",
            "  process_min_avail = 1",
            *self._auth_listener(),
            "}",
            *_login_service("imap", self.imap_ports, self.imaps_ports, self.shared_login),
            *_login_service("pop3", self.pop3_ports, self.pop3s_ports, self.shared_login),
        ]
        return "\n".join(settings) + "\n"

    def _ntlm_settings(self, directory: Path) -> list[str]:
        """NTLM through `ntlm_auth`, which reads the smb.conf written here: Dovecot runs the
        helper path it is given with the helper protocol as the only argument, so a small
        script adds the configuration file."""
        samba = directory / "samba"
        state = {name: samba / name for name in ("private", "lock", "state", "cache", "run")}
        for path in state.values():
            path.mkdir(parents=True, mode=0o777)
            path.chmod(0o777)  # the auth process runs as Dovecot's unprivileged user
        conf = samba / "smb.conf"
        conf.write_text(
            "[global]\n"
            + "".join(f"{key} = {value}\n" for key, value in NTLM_NAMES.items())
            + "server role = standalone server\n"
            + f"private dir = {state['private']}\nlock directory = {state['lock']}\n"
            + f"state directory = {state['state']}\ncache directory = {state['cache']}\n"
            + f"pid directory = {state['run']}\nlog file = {samba / 'log'}\n"
        )
        helper = samba / "ntlm_auth"
        helper.write_text(f'#!/bin/sh\nexec {NTLM_AUTH} --configfile={conf} "$@"\n')
        helper.chmod(0o755)
        return [
            "auth_mechanisms = plain ntlm",
            "auth_use_winbind = yes",
            f"auth_winbind_helper_path = {helper}",
        ]

    def _auth_listener(self) -> list[str]:
        if self.auth_socket is None:
            return []
        # The SMTP server runs as its own unprivileged user: the socket is open to all.
        return [f"  unix_listener {self.auth_socket} {{", "    mode = 0666", "  }"]

    def _tls_settings(self, lab: LabContext) -> list[str]:
        if not self.starttls:
            return ["ssl = no"]
        cert, key = cert_pair(lab.pki, self.cert)
        # "<" makes Dovecot read the file's content; the key is read as root.
        return ["ssl = yes", f"ssl_cert = <{cert}", f"ssl_key = <{key}"]


#: Login processes kept running when they are shared: one per core of this machine.
SHARED_LOGIN_PROCESSES = os.cpu_count() or 2


def _login_service(
    protocol: str, plain_ports: tuple[int, ...], tls_ports: tuple[int, ...], shared: bool
) -> list[str]:
    """A `service imap-login` / `service pop3-login` block with one listener per port.
    Dovecot's built-in listeners (`imap` on 143, `imaps` on 993, and so on) are always
    there: port 0 switches them off, so only the ports asked for are served."""
    lines = [f"service {protocol}-login {{"]
    if shared:
        lines += ["  service_count = 0", f"  process_min_avail = {SHARED_LOGIN_PROCESSES}"]
    else:
        lines += ["  process_min_avail = 1"]
    for default in (protocol, f"{protocol}s"):
        lines += [f"  inet_listener {default} {{", "    port = 0", "  }"]
    listeners = [(port, "no") for port in plain_ports] + [(port, "yes") for port in tls_ports]
    for port, ssl in listeners:
        lines += [f"  inet_listener lab-{port} {{", f"    port = {port}", f"    ssl = {ssl}", "  }"]
    return [*lines, "}"]
