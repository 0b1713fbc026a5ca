"""nginx as the lab's web server (Outlook Web Access lives on 80/443 under /exchange/).

Every path nginx writes (pid, logs, temp directories) is under its own work directory, and
the pages are `return` directives, so its unprivileged workers read no files at all.
"""

from __future__ import annotations

from pathlib import Path

from tests.interop.lab.base import Daemon, LabContext
from tests.interop.lab.lab import LoggedProcess
from tests.interop.lab.pki import CertChoice, cert_pair

NGINX = "/usr/sbin/nginx"

#: nginx 1.22 only offers TLS 1.3 when `ssl_protocols` names it.
MODERN_PROTOCOLS = "TLSv1.2 TLSv1.3"
#: OpenSSL 3 refuses TLS 1.0's SHA-1 handshake signatures above security level 0.
LEGACY_CIPHERS = "DEFAULT:@SECLEVEL=0"

ROOT_PAGE = "portcall lab web server"
EXCHANGE_PAGE = "portcall lab Outlook Web Access"

_TEMP_KINDS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


class Nginx(Daemon):
    def __init__(
        self,
        http_ports: tuple[int, ...] = (80,),
        tls_ports: tuple[int, ...] = (443,),
        plain_http_ports: tuple[int, ...] = (),
        cert: CertChoice = "good",
        tls_protocols: str = MODERN_PROTOCOLS,
        ciphers: str | None = None,
        name: str = "nginx",
    ) -> None:
        """`plain_http_ports` are extra plain-HTTP listeners, e.g. HTTP where NNTPS belongs.
        `ciphers` defaults to the legacy list when `tls_protocols` is TLS 1.0 or 1.1 only."""
        self.name = name
        self.http_ports = http_ports + plain_http_ports
        self.tls_ports = tls_ports
        self.ports = self.http_ports + tls_ports
        self.cert = cert
        self.tls_protocols = tls_protocols
        self.ciphers = ciphers if ciphers is not None else _default_ciphers(tls_protocols)
        self._process: LoggedProcess | None = None

    def start(self, lab: LabContext) -> None:
        directory = lab.workdir / self.name
        directory.mkdir(parents=True)
        config = directory / "nginx.conf"
        config.write_text(self._config(lab, directory))
        argv = [NGINX, "-p", str(directory), "-c", str(config), "-g", "daemon off;"]
        self._process = LoggedProcess(lab, argv, directory / "nginx.log")
        try:
            self._process.wait_ready(lab, self.ports, timeout=10.0)
        except RuntimeError as error:
            raise RuntimeError(f"nginx ({self.name}) did not start: {error}") from None

    def stop(self) -> None:
        # SIGTERM is nginx's fast shutdown: the master stops its workers, then exits.
        if self._process is not None:
            self._process.stop()

    def _config(self, lab: LabContext, directory: Path) -> str:
        temps = "\n".join(
            f"    {kind}_temp_path {directory / ('tmp-' + kind)};" for kind in _TEMP_KINDS
        )
        return f"""\
worker_processes 1;
pid {directory / "nginx.pid"};
error_log {directory / "error.log"} info;
events {{ worker_connections 4096; }}
http {{
    access_log {directory / "access.log"};
{temps}
    default_type text/plain;
    server {{
        server_name {lab.hostname};
{self._listeners(lab)}
        location / {{ return 200 "{ROOT_PAGE}\\n"; }}
        location /exchange/ {{ return 200 "{EXCHANGE_PAGE}\\n"; }}
    }}
}}
"""

    def _listeners(self, lab: LabContext) -> str:
        address = lab.listen_address
        lines = [f"listen {address}:{port};" for port in self.http_ports]
        lines += [f"listen {address}:{port} ssl;" for port in self.tls_ports]
        if self.tls_ports:
            cert, key = cert_pair(lab.pki, self.cert)
            lines += [
                f"ssl_certificate {cert};",
                f"ssl_certificate_key {key};",
                f"ssl_protocols {self.tls_protocols};",
            ]
            if self.ciphers:
                lines.append(f'ssl_ciphers "{self.ciphers}";')
        return "\n".join(f"        {line}" for line in lines)


def _default_ciphers(protocols: str) -> str | None:
    legacy_only = not {"TLSv1.2", "TLSv1.3"} & set(protocols.split())
    return LEGACY_CIPHERS if legacy_only else None
