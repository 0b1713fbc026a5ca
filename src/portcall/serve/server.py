"""A small HTTP/1.1 server on asyncio streams, with h11 doing all the parsing.

It answers GET only, keeps connections alive between requests, and bounds what a client can
make it hold: the request head (`MAX_HEAD` bytes), a body (`MAX_BODY`; a GET needs none), the
time to send a request (`READ_TIMEOUT`, which also ends idle keep-alive connections) and the
number of connections open at once (`MAX_CONNECTIONS`; more are closed at once).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import h11

MAX_HEAD = 16 * 1024
MAX_BODY = 8 * 1024
MAX_QUERY_FIELDS = 32
READ_TIMEOUT = 30.0
WRITE_TIMEOUT = 30.0
MAX_CONNECTIONS = 64
SERVER_NAME = b"portcall"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    #: Header names in lower case; a repeated header keeps its last value.
    headers: dict[str, str]

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = field(default=())
    #: Close the connection after this reply (a request the server could not read whole).
    close: bool = False


def text_reply(
    status: int, text: str, *, headers: tuple[tuple[str, str], ...] = (), close: bool = False
) -> Reply:
    """A plain-text answer: one line or a few, ending with a line end."""
    body = (text.rstrip("\n") + "\n").encode("utf-8")
    return Reply(status, body, headers=headers, close=close)


Handler = Callable[[Request], Awaitable[Reply]]
#: Told of every request refused before the handler saw it: the reason and the status.
RefusalHook = Callable[[str, int], None]


class HttpServer:
    """Serves `handler` on one listening address until `close`."""

    def __init__(self, handler: Handler, *, on_refused: RefusalHook | None = None) -> None:
        self._handler = handler
        self._on_refused = on_refused or (lambda _reason, _status: None)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> list[tuple[str, int]]:
        """Listen; the (address, port) pairs bound (port 0 asks for a free port)."""
        self._server = await asyncio.start_server(self._accept, host, port, limit=MAX_HEAD)
        return [(str(s.getsockname()[0]), int(s.getsockname()[1])) for s in self._server.sockets]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None or len(self._connections) >= MAX_CONNECTIONS:
            writer.close()
            return
        self._connections.add(task)
        try:
            await self._serve(reader, writer)
        except (OSError, TimeoutError, h11.LocalProtocolError):
            pass  # the client went away or stalled: nothing left to answer
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        while True:
            incoming = await self._next_request(connection, reader)
            if incoming is None:
                return
            reply = incoming if isinstance(incoming, Reply) else await self._handler(incoming)
            await _send(connection, writer, reply)
            if reply.close or connection.our_state is not h11.DONE:
                return
            if connection.their_state is not h11.DONE:
                return
            connection.start_next_cycle()

    async def _next_request(
        self, connection: h11.Connection, reader: asyncio.StreamReader
    ) -> Request | Reply | None:
        """The next whole request, a reply refusing it, or None when the client is gone."""
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                return await _read_request(connection, reader)
        except h11.RemoteProtocolError as exc:
            self._on_refused("bad-request", exc.error_status_hint)
            return text_reply(exc.error_status_hint, f"bad request: {exc}", close=True)
        except _Refusal as refusal:
            self._on_refused(refusal.reason, refusal.reply.status)
            return refusal.reply
        except TimeoutError:
            return None


class _Refusal(Exception):
    def __init__(self, reason: str, reply: Reply) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reply = reply


async def _read_request(connection: h11.Connection, reader: asyncio.StreamReader) -> Request | None:
    event = await _next_event(connection, reader)
    if event is None:
        return None
    if not isinstance(event, h11.Request):
        raise h11.RemoteProtocolError("expected a request", 400)
    body = 0
    while not isinstance(end := await _next_event(connection, reader), h11.EndOfMessage):
        if end is None:
            return None
        body += len(end.data) if isinstance(end, h11.Data) else 0
        if body > MAX_BODY:
            raise _Refusal("too-large", text_reply(413, "request body too large", close=True))
    method = event.method.decode("ascii", "replace")
    if method != "GET":
        refusal = text_reply(405, "only GET is served", headers=(("Allow", "GET"),))
        # An answer to HEAD has no body (RFC 9110 9.3.2); h11 refuses to send one.
        raise _Refusal("method", replace(refusal, body=b"") if method == "HEAD" else refusal)
    return _request(method, event)


async def _next_event(connection: h11.Connection, reader: asyncio.StreamReader) -> object | None:
    """The next h11 event, reading as needed; None when the client closed the connection."""
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(await reader.read(4096))
            continue
        if isinstance(event, h11.ConnectionClosed):
            return None
        return event


def _request(method: str, event: h11.Request) -> Request:
    target = event.target.decode("ascii", "replace")
    parts = urlsplit(target)
    try:
        query = parse_qs(parts.query, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS)
    except ValueError:
        raise _Refusal("bad-request", text_reply(400, "too many query parameters")) from None
    headers = {
        name.decode("ascii", "replace").lower(): value.decode("latin-1")
        for name, value in event.headers
    }
    return Request(method, parts.path, query, headers)


async def _send(connection: h11.Connection, writer: asyncio.StreamWriter, reply: Reply) -> None:
    headers = [
        ("Content-Type", reply.content_type),
        ("Content-Length", str(len(reply.body))),
        ("X-Content-Type-Options", "nosniff"),
        ("Cache-Control", "no-store"),
        ("Server", SERVER_NAME.decode()),
        *reply.headers,
        *((("Connection", "close"),) if reply.close else ()),
    ]
    phrase = HTTPStatus(reply.status).phrase.encode("ascii")
    response = h11.Response(status_code=reply.status, headers=headers, reason=phrase)
    writer.write(connection.send(response))
    writer.write(connection.send(h11.Data(data=reply.body)))
    writer.write(connection.send(h11.EndOfMessage()))
    async with asyncio.timeout(WRITE_TIMEOUT):
        await writer.drain()
