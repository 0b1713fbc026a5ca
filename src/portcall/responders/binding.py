"""Getting the ports: binding, holding a port closed, and errors a person can act on."""

from __future__ import annotations

import errno
import socket

from portcall.catalog import PortEntry, port_text


class BindError(Exception):
    """A port could not be listened on; `hint` says what to do about it."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def reserve_port(address: str, port: int) -> socket.socket:
    """A TCP socket bound to the port but not listening: the kernel refuses every connection,
    and no other program can take the port meanwhile."""
    return _bound(address, port, socket.SOCK_STREAM)


def datagram_socket(address: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A UDP socket bound to `address` and `port`, ready for asyncio. An IPv6 one takes IPv6
    only: `::` and `0.0.0.0` on the same port are then two sockets, as TCP's are, instead of
    the second failing because the first took IPv4 as well."""
    sock = _bound(address, port, socket.SOCK_DGRAM, reuse_port=reuse_port)
    sock.setblocking(False)
    return sock


def _bound(
    address: str, port: int, kind: socket.SocketKind, *, reuse_port: bool = False
) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, kind)
    try:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((address, port))
    except OSError:
        sock.close()
        raise
    return sock


def bind_error(exc: OSError, entry: PortEntry, port: int, binds: tuple[str, ...]) -> BindError:
    """A message and a hint a person can act on, for an `OSError` raised while binding. UDP
    ports are named "53/udp": 53 over UDP and 53 over TCP are different sockets, and the one
    taken is the one to free."""
    port_name = port_text(port, entry.transport)
    where = f"{' and '.join(binds)} port {port_name}"
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
            f"port {port_name} ({entry.label}) is already taken on {' or '.join(binds)}",
            f"stop the program holding it (`{_ss(entry.transport)} 'sport = :{port}'` names it), "
            "leave the row out with --ports, or move every port with --port-offset",
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return BindError(
            f"cannot listen on {where}: the address is not one of this machine's",
            "--bind takes an address of this machine, such as 127.0.0.1, ::1 or 0.0.0.0",
        )
    return BindError(f"cannot listen on {where}: {os_reason(exc)}", "check --bind and --ports")


def _ss(transport: str) -> str:
    """The ss(8) command that lists who holds a port of `transport`."""
    return "ss -lunp" if transport == "udp" else "ss -ltnp"


def os_reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
