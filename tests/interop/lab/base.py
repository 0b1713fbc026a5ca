"""The interface every lab daemon follows; the lab (netns, PKI) is built in lab.py.

A daemon is started inside the lab's network namespace with its own configuration files
under its own work directory, with stdio sent to a log file (forking daemons otherwise keep a
test runner's pipes open), and stopped by PID.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pki:
    """Files of the lab's test PKI (PEM)."""

    ca_cert: Path
    #: A computer certificate for the lab host name (and 127.0.0.1), signed by the lab CA.
    server_cert: Path
    server_key: Path
    #: Signed by the lab CA, but expired.
    expired_cert: Path
    expired_key: Path
    #: Signed by the lab CA, valid, for another name only.
    wrong_name_cert: Path
    wrong_name_key: Path


class Daemon(ABC):
    #: Short name used for its work directory and log file ("slapd", "dovecot", ...).
    name: str
    #: TCP ports it serves on 127.0.0.1 inside the namespace.
    ports: tuple[int, ...]

    @abstractmethod
    def start(self, lab: LabContext) -> None:
        """Write configuration under `lab.workdir / self.name`, start the daemon inside the
        namespace (`lab.ns_cmd([...])` gives the argv prefix), and return once every port of
        `self.ports` accepts connections (`lab.wait_ports`), or raise RuntimeError with the
        tail of its log."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the daemon and wait until its processes are gone. Safe to call twice."""


class LabContext(ABC):
    """What a daemon may use from the lab."""

    #: The namespace's name, e.g. "pcl-12345".
    netns: str
    #: A fresh directory for this lab run; each daemon uses workdir / daemon.name.
    workdir: Path
    #: The host name the certificates are made for; resolves to 127.0.0.1 inside the namespace.
    hostname: str
    pki: Pki
    #: Where the daemons listen: 127.0.0.1, or 0.0.0.0 for a lab that answers on every
    #: address of 127.0.0.0/8 (the namespace's loopback holds the whole range).
    listen_address: str = "127.0.0.1"

    @abstractmethod
    def ns_cmd(self, argv: list[str]) -> list[str]:
        """`argv` prefixed so that it runs inside the namespace."""

    @abstractmethod
    def wait_ports(self, ports: tuple[int, ...], timeout: float = 20.0) -> None:
        """Block until each port on 127.0.0.1 in the namespace accepts TCP, or RuntimeError."""
