"""Getting the ports: binding, holding a port closed, and errors a person can act on."""

from __future__ import annotations

import errno
import socket

from portcall.catalog import PortEntry


class BindError(Exception):
    """A port could not be listened on; `hint` says what to do about it."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def reserve_port(address: str, port: int) -> socket.socket:
    """A socket bound to the port but not listening: the kernel refuses every connection,
    and no other program can take the port meanwhile."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.bind((address, port))
    except OSError:
        sock.close()
        raise
    return sock


def bind_error(exc: OSError, entry: PortEntry, port: int, binds: tuple[str, ...]) -> BindError:
    """A message and a hint a person can act on, for an `OSError` raised while binding."""
    where = f"{' and '.join(binds)} port {port}"
    if isinstance(exc, socket.gaierror):
        return BindError(
            f"cannot listen on {where}: {', '.join(binds)} is not an address of this machine",
            "--bind takes an address of this machine, such as 127.0.0.1, ::1 or 0.0.0.0",
        )
    if exc.errno == errno.EACCES:
        return BindError(
            f"no permission to listen on {where} ({entry.label}): "
            "ports below 1024 are reserved for root",
            "add --port-offset 10000 to listen on catalog port + 10000, or run as root "
            "or with the CAP_NET_BIND_SERVICE capability",
        )
    if exc.errno == errno.EADDRINUSE:
        return BindError(
            f"port {port} ({entry.label}) is already taken on {' or '.join(binds)}",
            f"stop the program holding it (`ss -ltnp 'sport = :{port}'` names it), leave the "
            "row out with --ports, or move every port with --port-offset",
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return BindError(
            f"cannot listen on {where}: the address is not one of this machine's",
            "--bind takes an address of this machine, such as 127.0.0.1, ::1 or 0.0.0.0",
        )
    return BindError(f"cannot listen on {where}: {os_reason(exc)}", "check --bind and --ports")


def os_reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
