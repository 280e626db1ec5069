"""The fast path: once requests answered straight off the socket.

For a small request aiohttp's web layer (request and response objects, routing,
a task per request) costs more than parsing the JSON, calling the engine and
rendering the answer together: a bare aiohttp echo spends about half of its
time there (benchmarks/protocol_echo.py). So connections start on this asyncio protocol, which answers the
one request worth it, ``POST /v1/{service} HTTP/1.1`` with a Content-Length, and
hands the connection, from the first byte of any other request, to aiohttp's
own protocol, which then serves it to the end: WebSocket, sessions, docs,
metrics, chunked bodies, Expect, HTTP/1.0, anything malformed or oversized.

What it accepts is a strict subset of HTTP/1.1 that aiohttp reads the same way,
so the two never disagree on where a request ends. Requests on one connection
are answered in order: while one waits for the engine, the next is not read.
``[aiges] fastHttp = false`` sends every connection to aiohttp.
"""
from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from time import perf_counter, time
from typing import NamedTuple

from aiohttp.http import SERVER_SOFTWARE

from aiges.server import once
from aiges.server.once import Answer
from aiges.server.responses import JSON_HEADERS
from aiges.server.state import State

log = logging.getLogger(__name__)

# Header fields as RFC 9110 has them, each ending in CRLF; anything else goes to aiohttp.
_FIELDS = re.compile(rb"(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e\x80-\xff]*\r\n)*")
# Headers that make a request one for aiohttp (Transfer-Encoding, Expect, Upgrade)
# or that this path reads.
_SPECIAL = frozenset({b"content-length", b"connection", b"transfer-encoding", b"expect",
                      b"upgrade"})
# Headers aiohttp refuses to see twice (its SINGLETON_HEADERS); HTTP/1.1 needs one Host.
_SINGLE = frozenset({b"content-length", b"content-location", b"content-range",
                     b"content-type", b"etag", b"host", b"max-forwards", b"server",
                     b"transfer-encoding", b"user-agent"})
MAX_HEAD = 16 * 1024     # a longer head is aiohttp's to refuse (431/400)
READ_AHEAD = 256 * 1024  # bytes buffered behind a request being answered before reading pauses
KEEPALIVE_S = 75.0       # an idle connection closes after this long (as aiohttp's default)
SWEEP_S = 15.0


class FastHTTP:
    """The protocol factory for a listening socket, its connections and their end."""

    def __init__(self, state: State, fallback: Callable[[], asyncio.Protocol]):
        self.state = state
        self.fallback = fallback  # aiohttp's protocol factory (web.Server)
        self.route = f"/v1/{state.config.service}"
        self.line = f"POST {self.route} HTTP/1.1\r\n".encode()
        self.max_body = state.config.max_body
        self.connections: set[Connection] = set()
        self.tasks: set[asyncio.Task] = set()
        self.closing = False
        self._empty = asyncio.Event()
        headers = dict(JSON_HEADERS, Server=SERVER_SOFTWARE, **state.extra_headers)
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode("latin-1")
        self._status: dict[int, bytes] = {}
        self._date = (0, b"")
        self._sweep = asyncio.get_running_loop().call_later(SWEEP_S, self._sweep_idle)

    def __call__(self) -> Connection:
        return Connection(self)

    def head(self, answer: Answer, close: bool) -> bytes:
        line = self._status.get(answer.status)
        if line is None:
            line = self._status[answer.status] = (
                f"HTTP/1.1 {answer.status} {HTTPStatus(answer.status).phrase}\r\n".encode())
        extra = b"Connection: close\r\n" if close else b""
        if answer.retry_after:
            extra += b"Retry-After: %d\r\n" % answer.retry_after
        return b"%s%sContent-Length: %d\r\nDate: %s\r\n%s\r\n" % (
            line, self._fixed, len(answer.body), self._now(), extra)

    def _now(self) -> bytes:
        now = int(time())
        if self._date[0] != now:
            self._date = (now, formatdate(now, usegmt=True).encode())
        return self._date[1]

    def _sweep_idle(self) -> None:
        limit = KEEPALIVE_S / SWEEP_S
        for conn in list(self.connections):
            conn.idle += 1
            if conn.idle > limit and conn.resting:
                conn.close()
        self._sweep = asyncio.get_running_loop().call_later(SWEEP_S, self._sweep_idle)

    async def shutdown(self, timeout_s: float) -> None:
        """The listening socket is closed: idle connections close now, the others once
        their request is answered (Connection: close), at most ``timeout_s``."""
        self.closing = True
        self._sweep.cancel()
        for conn in list(self.connections):
            if conn.resting:
                conn.close()
        if self.connections:
            try:
                await asyncio.wait_for(self._empty.wait(), timeout_s)
            except TimeoutError:
                log.warning("connections still busy at the end of the drain time",
                            extra={"connections": len(self.connections)})
        for conn in list(self.connections):
            conn.close()

    def forget(self, conn: Connection) -> None:
        self.connections.discard(conn)
        if self.closing and not self.connections:
            self._empty.set()


class Connection(asyncio.Protocol):
    __slots__ = ("server", "transport", "buf", "parts", "size", "need", "close_after",
                 "started", "busy", "idle", "write_paused", "read_paused")

    def __init__(self, server: FastHTTP):
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buf = b""            # received, not yet parsed
        self.parts: list[bytes] = []  # the body being received, ``size`` bytes so far
        self.size = 0
        self.need = -1            # its Content-Length; -1: reading a head
        self.close_after = False  # the request asked for Connection: close
        self.started = 0.0
        self.busy = False         # a request is waiting for its answer
        self.idle = 0             # sweeps since data last came
        self.write_paused = self.read_paused = False

    @property
    def resting(self) -> bool:
        """Between requests: closing now loses nothing."""
        return not self.busy and not self.buf and self.need < 0

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.server.connections.add(self)

    def connection_lost(self, exc) -> None:
        self.transport = None
        self.server.forget(self)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def eof_received(self) -> bool:
        """The client shut its side: a request still being answered gets its answer
        (then the connection closes); otherwise close now."""
        if self.busy:
            self.close_after = True
            return True
        return False

    def pause_writing(self) -> None:
        self.write_paused = True
        self._flow()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._flow()

    def data_received(self, data: bytes) -> None:
        self.idle = 0
        if self.need >= 0:
            self.parts.append(data)
            self.size += len(data)
        else:
            self.buf = self.buf + data if self.buf else data
        if self.busy:
            self._flow()
        else:
            self._serve()

    def _flow(self) -> None:
        """Read while the client reads our answers and little is buffered behind a
        request that waits."""
        transport = self.transport
        if transport is None:
            return
        pause = self.write_paused or (self.busy and len(self.buf) + self.size > READ_AHEAD)
        if pause != self.read_paused:
            self.read_paused = pause
            if pause:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def _serve(self) -> None:
        """Answer every complete request buffered, in order, until one must wait."""
        while self.transport is not None and not self.busy:
            if self.need >= 0:
                if self.size < self.need:
                    return
                data = self.parts[0] if len(self.parts) == 1 else b"".join(self.parts)
                need, self.parts, self.size, self.need = self.need, [], 0, -1
                self.buf = data[need:]
                self._answer(data[:need])  # no copy when nothing follows the body
            elif not self._head():
                return

    def _head(self) -> bool:
        """Parse a buffered head; False when there is none (yet) or aiohttp took over."""
        buf = self.buf
        if not buf:
            return False
        head = read_head(buf, self.server.line)
        if head is None:
            return False
        if head is FOREIGN or head.length > self.server.max_body:
            self._hand_off(buf)
            return False
        self.close_after = head.close
        self.started = perf_counter()
        self.buf = b""
        self.parts, self.size, self.need = [buf[head.end:]], len(buf) - head.end, head.length
        return True

    def _answer(self, body: bytes) -> None:
        result = once.begin(self.server.state, body, self.server.route, self.started)
        if type(result) is Answer:
            self._write(result)
            return
        self.busy = True
        task = asyncio.get_running_loop().create_task(self._finish(result))
        self.server.tasks.add(task)
        task.add_done_callback(self.server.tasks.discard)

    async def _finish(self, pending: once.Pending) -> None:
        answer = await pending.finish()
        self.busy = False
        self._write(answer)
        self._flow()
        self._serve()

    def _write(self, answer: Answer) -> None:
        transport = self.transport
        if transport is None:
            return  # the client left; the answer is counted all the same
        close = self.close_after or self.server.closing
        head = self.server.head(answer, close)
        if len(answer.body) <= 65536:
            transport.write(head + answer.body)
        else:
            transport.writelines((head, answer.body))
        if close:
            transport.close()
            self.transport = None  # nothing more is read or answered here

    def _hand_off(self, data: bytes) -> None:
        """aiohttp serves this connection from ``data`` (the start of a request) on."""
        transport, self.transport = self.transport, None
        self.server.forget(self)
        protocol = self.server.fallback()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if self.read_paused:
            transport.resume_reading()
        protocol.data_received(data)


class Head(NamedTuple):
    end: int      # where the body starts
    length: int   # Content-Length (0 when absent)
    close: bool   # Connection: close


FOREIGN = Head(-1, -1, False)  # a request for aiohttp


def read_head(buf: bytes, line: bytes) -> Head | None:
    """The head at the start of ``buf`` if it is a request for the fast path, whose
    request line is ``line``; FOREIGN when it is anything else, or may be (a head too
    long, bare LFs); None when it is not complete yet."""
    end = buf.find(b"\r\n\r\n", 0, MAX_HEAD)
    if end < 0:
        n = min(len(buf), len(line))
        if buf[:n] != line[:n] or len(buf) >= MAX_HEAD or \
                buf.count(b"\n") != buf.count(b"\r\n"):
            return FOREIGN
        return None
    if not buf.startswith(line):
        return FOREIGN
    fields = buf[len(line):end + 2]
    if not _FIELDS.fullmatch(fields):
        return FOREIGN
    length, close, seen = 0, False, set()
    for field in fields.split(b"\r\n"):
        name, _, value = field.partition(b":")
        name = name.lower()
        if name in _SINGLE:
            if name in seen:
                return FOREIGN
            seen.add(name)
        if name not in _SPECIAL:
            continue
        value = value.strip(b" \t")
        if name == b"content-length":
            if not value.isdigit() or len(value) > 15:
                return FOREIGN
            length = int(value)
        elif name == b"connection":
            tokens = {t.strip(b" \t").lower() for t in value.split(b",")}
            if b"upgrade" in tokens:
                return FOREIGN
            close = close or b"close" in tokens
        else:
            return FOREIGN
    if b"host" not in seen:
        return FOREIGN
    return Head(end + 4, length, close)
