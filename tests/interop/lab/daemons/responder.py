"""portcall's own responder as a lab daemon: `portcall listen` inside the namespace, for the
ports no packaged daemon serves (691, the Exchange routing engine)."""

from __future__ import annotations

import sys

from tests.interop.lab.base import Daemon, LabContext
from tests.interop.lab.lab import LoggedProcess


class Responder(Daemon):
    def __init__(
        self,
        ports: tuple[int, ...] = (691,),
        profile: str = "exchange2003",
        name: str = "responder",
    ) -> None:
        self.name = name
        self.ports = ports
        self.profile = profile
        self._process: LoggedProcess | None = None

    def start(self, lab: LabContext) -> None:
        directory = lab.workdir / self.name
        directory.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "portcall", "listen", "--bind", lab.listen_address]
        argv += ["--ports", ",".join(map(str, self.ports)), "--profile", self.profile]
        argv += ["--hostname", lab.hostname, "--cert-dir", str(directory / "certs")]
        self._process = LoggedProcess(lab, argv, directory / "listen.log")
        self._process.wait_ready(lab, self.ports)

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None
