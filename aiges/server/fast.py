"""The fast path: once requests answered straight off the socket.

For a small request aiohttp's web layer (request and response objects, routing,
a task per request) costs more than parsing the JSON, calling the engine and
rendering the answer together: a bare aiohttp echo spends about half of its
time there (benchmarks/protocol_echo.py). So connections start on this asyncio protocol, which answers the
one request worth it, ``POST /v1/{service} HTTP/1.1`` with a Content-Length, and
hands the connection, from the first byte of any other request, to aiohttp's
own protocol, which then serves it to the end: WebSocket, sessions, docs,
metrics, chunked bodies, Expect, HTTP/1.0, anything malformed or oversized.

What it accepts is a strict subset of HTTP/1.1 that aiohttp reads the same way
(aiges/server/head.py, llhttp), so the two never disagree on where a request ends
nor on what to refuse. Requests on one connection are answered in order: while one
waits for the engine, the next is not read. A client that shuts its side still
gets an answer to every complete request it sent (unless the engine can cancel:
then it left, aiges/server/gone.py). Slow clients are timed out on
every connection, this path's and aiohttp's (aiges/server/relay.py), by one sweep
a second; past ``[http] maxConnections`` new connections get a quick 503. Answers
leave through an outbox (aiges/server/outbox.py): those of one turn of the loop go
out together at the start of the next.
``[aiges] fastHttp = false`` sends every connection to aiohttp (still timed).
"""
from __future__ import annotations

import asyncio
import logging
import resource
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from time import perf_counter, time

from aiges import errors, protocol
from aiges.server import gone
from aiges.server.head import FOREIGN, read_head
from aiges.server.outbox import Outbox
from aiges.server.relay import Refused, Relay, Throttle
from aiges.server.responses import JSON_HEADERS, SERVER
from aiges.service import routes
from aiges.service.core import Service
from aiges.service.once import Answer, Pending, begin
from aiges.service.spec import NATIVE

log = logging.getLogger(__name__)

READ_AHEAD = 256 * 1024  # bytes buffered behind a request being answered before reading pauses
SWEEP_S = 1.0            # how often slow and idle connections are looked for
FD_MARGIN = 128          # open files kept for engines and logs under the default cap
LINGER_S = 1.0           # how long a connection answered for the last time waits for its client to close


class FastHTTP:
    """The protocol factory for a listening socket: its connections (this path's and
    the relays of aiohttp's), their limits and their end."""

    def __init__(self, state: Service, fallback: Callable[[], asyncio.Protocol],
                 fast: bool = True):
        config = state.config
        self.state = state
        self.fallback = fallback  # aiohttp's protocol factory (web.Server)
        self.fast = fast
        # The one request line served here: the once route of the route table.
        once = routes.named(routes.table(config.service), "once")
        self.route = once.path
        self.line = f"{once.method} {once.path} HTTP/1.1\r\n".encode()
        self.max_body = config.max_body
        self.head_s = config.http_head_timeout_s
        self.body_s = config.http_body_timeout_s
        self.keepalive_s = config.http_keepalive_s
        self.max_connections = config.max_connections or default_max_connections()
        self.connections: set[Connection | Relay] = set()
        self.tasks: set[asyncio.Task] = set()
        self.closing = False
        self.loop = asyncio.get_running_loop()
        self.throttle = Throttle(log)
        self.outbox = Outbox(self.loop)  # this path's answers, written a turn together
        # A coarse clock for the connections, advanced by the sweep: reading the loop's
        # clock for every chunk received costs more than it is worth.
        self.tick = self.loop.time()
        self._empty = asyncio.Event()
        headers = dict(JSON_HEADERS, Server=SERVER, **state.extra_headers)
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode("latin-1")
        self._status: dict[int, bytes] = {}
        self._date = (0, b"")
        self._busy_body = protocol.failure(errors.INVALID_OPERATION, "too many connections: "
                                           "retry ([http] maxConnections)")
        self._sweep = self.loop.call_later(SWEEP_S, self._sweep_slow)

    def __call__(self) -> asyncio.Protocol:
        if len(self.connections) >= self.max_connections:
            self.throttle.log(logging.WARNING, "connection refused: too many open "
                              "([http] maxConnections)", limit=self.max_connections)
            return Refused(self._busy_body)
        if not self.fast:
            return Relay(self, self.fallback())
        return Connection(self)

    def head(self, answer: Answer, close: bool) -> bytes:
        line = self._status.get(answer.status)
        if line is None:
            line = self._status[answer.status] = (
                f"HTTP/1.1 {answer.status} {HTTPStatus(answer.status).phrase}\r\n".encode())
        extra = b"Connection: close\r\n" if close else b""
        if answer.headers:  # the pipeline's own (Retry-After): rare
            extra += "".join(f"{k}: {v}\r\n" for k, v in answer.headers.items()).encode(
                "latin-1")
        return b"%s%sContent-Length: %d\r\nDate: %s\r\n%s\r\n" % (
            line, self._fixed, len(answer.body), self._now(), extra)

    def _now(self) -> bytes:
        now = int(time())
        if self._date[0] != now:
            self._date = (now, formatdate(now, usegmt=True).encode())
        return self._date[1]

    def _sweep_slow(self) -> None:
        """Close what waits on a slow client: a head or a body that stalls, an idle
        keep-alive connection of this path (aiohttp times its own)."""
        now = self.tick = self.loop.time()
        for conn in list(self.connections):
            why = conn.overdue(now, self.head_s, self.body_s, self.keepalive_s)
            if why is not None:
                if why != "idle":
                    self.throttle.log(logging.INFO, "slow client: connection closed",
                                      waited_for=why)
                conn.close()
        self._sweep = self.loop.call_later(SWEEP_S, self._sweep_slow)

    async def shutdown(self, timeout_s: float) -> None:
        """The listening socket is closed: this path's idle connections close now, the
        others once their request is answered (Connection: close), at most
        ``timeout_s``. aiohttp's are closed by its runner's cleanup."""
        self.closing = True
        self._sweep.cancel()
        for conn in self._own():
            if conn.resting:
                conn.close()
        if self._own():
            try:
                await asyncio.wait_for(self._empty.wait(), timeout_s)
            except TimeoutError:
                log.warning("connections still busy at the end of the drain time",
                            extra={"connections": len(self._own())})
        for conn in self._own():
            conn.close()

    def _own(self) -> list[Connection]:
        return [c for c in self.connections if type(c) is Connection]

    def forget(self, conn: Connection | Relay) -> None:
        self.connections.discard(conn)
        if self.closing and not self._own():
            self._empty.set()


def default_max_connections() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1_000_000
    return max(soft - FD_MARGIN, 16)


class Connection(asyncio.Protocol):
    __slots__ = ("server", "transport", "buf", "scanned", "last", "parts", "size", "need",
                 "close_after", "head", "started", "busy", "since", "head_since", "eof",
                 "write_paused", "read_paused", "trace", "task", "lingering")

    def __init__(self, server: FastHTTP):
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buf: bytes | bytearray = b""  # received, not yet parsed
        self.scanned = 0          # bytes of ``buf`` the head reader has seen
        self.last = [b"", None]   # the last head served and what it read as
        self.parts: list[bytes] = []  # the body being received, ``size`` bytes so far
        self.size = 0
        self.need = -1            # its Content-Length; -1: reading a head
        self.close_after = False  # the request asked for Connection: close
        self.head = b""           # that request's head, while its body arrives
        self.started = 0.0
        self.busy = False         # a request is waiting for its answer
        self.since = 0.0          # loop time of the last bytes received (or answer sent)
        self.head_since = 0.0     # loop time of the first byte of the head being read
        self.eof = False          # the client shut its side
        self.write_paused = self.read_paused = False
        self.trace: dict | None = None  # the request's traceparent/tracestate, if sent
        self.task: asyncio.Task | None = None  # the request waiting for its answer
        self.lingering = None     # the transport, half-closed after a Connection: close

    @property
    def resting(self) -> bool:
        """Between requests: closing now loses nothing."""
        return not self.busy and not self.buf and self.need < 0

    def overdue(self, now: float, head_s: float, body_s: float,
                keepalive_s: float) -> str | None:
        """Why the connection should close now, if it should: a head or a body that
        stalls (not while this side waits: a request being answered, reading paused),
        or idle past the keep-alive time."""
        if self.resting:
            return "idle" if now - self.since > keepalive_s else None
        if self.busy or self.read_paused:
            return None
        if self.need >= 0:
            return "body" if now - self.since > body_s else None
        if self.buf and now - self.head_since > head_s:
            return "head"
        return None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.since = self.server.tick
        self.server.connections.add(self)

    def connection_lost(self, exc) -> None:
        self.transport = None
        self.server.forget(self)
        gone.give_up(self.task, self.server.state, self.server.closing)

    def close(self) -> None:
        transport = self.transport or self.lingering
        if transport is not None:
            self.server.outbox.flush()
            transport.close()

    def eof_received(self) -> bool:
        """The client shut its side: every complete request it sent still gets its
        answer, then the connection closes; with an engine that can cancel, a request
        waiting for it is given up instead (TCP cannot tell a half-close from leaving)."""
        self.eof = True
        self.server.outbox.flush()  # answered before: out before the transport may close
        if self.lingering is not None:
            return False  # the client saw our FIN and closes too: closed now
        if self.busy and gone.leaves(self.server.state):
            return False  # closed: the request is given up (aiges/server/gone.py)
        return self.busy  # not busy: all complete requests were answered already

    def pause_writing(self) -> None:
        self.write_paused = True
        self._flow()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._flow()

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            return  # lingering after its last answer: what the client still sends is dropped
        now = self.since = self.server.tick
        if self.need >= 0:
            self.parts.append(data)
            self.size += len(data)
        elif self.buf:
            if type(self.buf) is bytes:
                self.buf = bytearray(self.buf)  # a head arriving in pieces: no copies
            self.buf += data
        elif not self.busy and self._repeated(data):
            return
        else:
            self.buf, self.head_since = data, now
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
            if self.need < 0 and not self._head():
                break
            if self.size < self.need:
                break  # the body is still arriving
            parts = self.parts
            data = parts[0] if len(parts) == 1 else b"".join(parts)
            need, self.parts, self.size, self.need = self.need, [], 0, -1
            rest = data[need:]
            if self.close_after and rest:
                # Bytes after a Connection: close request: aiohttp refuses the lot.
                self._hand_off(self.head + data)
                return
            self.buf, self.scanned, self.head = rest, 0, b""
            self.head_since = self.since
            self._answer(data[:need])  # no copy when nothing follows the body
        if self.eof and not self.busy and self.transport is not None:
            self.close()  # everything complete is answered; the rest never will be

    def _repeated(self, data: bytes) -> bool:
        """The common request answered straight, when it is the whole of a read on an
        idle connection and its head is the connection's last one, byte for byte (as
        keep-alive clients send them): that head reads as before (read_head), and the
        body is all that follows it."""
        head, known = self.last
        if not head or len(data) - len(head) != known.length or not data.startswith(head):
            return False
        self.close_after, self.trace = known.close, known.trace
        self.head_since = self.since
        self.started = perf_counter()
        self._answer(data[len(head):])
        return True

    def _head(self) -> bool:
        """Parse a buffered head; False when there is none (yet) or aiohttp took over."""
        buf = self.buf
        if not buf:
            return False
        head = read_head(buf, self.server.line, self.scanned, self.last)
        if head is None:
            self.scanned = len(buf)
            return False
        if head is FOREIGN or head.length > self.server.max_body:
            self._hand_off(bytes(buf))
            return False
        self.close_after = head.close
        self.trace = head.trace
        if head.close:
            self.head = bytes(buf[:head.end])
        self.started = perf_counter()
        self.buf, self.scanned = b"", 0
        self.parts, self.size, self.need = [buf[head.end:]], len(buf) - head.end, head.length
        return True

    def _answer(self, body: bytes) -> None:
        result = begin(self.server.state, NATIVE, body, self.server.route, self.started,
                       carrier=self.trace)
        if type(result) is Answer:
            self._write(result)
            return
        self.busy = True
        task = self.task = asyncio.get_running_loop().create_task(self._finish(result))
        self.server.tasks.add(task)
        task.add_done_callback(self.server.tasks.discard)

    async def _finish(self, pending: Pending) -> None:
        answer = await pending.finish()
        self.busy, self.task = False, None
        self.since = self.server.tick
        self._write(answer)
        self._flow()
        self._serve()

    def _write(self, answer: Answer) -> None:
        transport = self.transport
        if transport is None:
            return  # the client left; the answer is counted all the same
        server = self.server
        close = self.close_after or server.closing
        head = server.head(answer, close)
        if len(answer.body) <= 65536 and not close:
            server.outbox.write(transport, head + answer.body)
            return
        server.outbox.flush()  # the answers before it go first
        transport.writelines((head, answer.body))
        if close:
            self.transport = None  # nothing more is read or answered here
            self._linger(transport)

    def _linger(self, transport) -> None:
        """After the last answer: FIN now, but the socket closes only when the client
        closes its side, or LINGER_S later. Closing it while the client's next bytes
        are unread would make the kernel answer with a reset, which can destroy the
        answer still in flight to the client (nginx's lingering_close)."""
        if self.server.closing or not transport.can_write_eof():
            transport.close()
            return
        self.lingering = transport
        transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER_S, transport.close)

    def _hand_off(self, data: bytes) -> None:
        """aiohttp serves this connection from ``data`` (the start of a request) on,
        through a relay that keeps timing it."""
        self.server.outbox.flush()  # this path's answers before aiohttp's
        transport, self.transport = self.transport, None
        self.server.forget(self)
        if self.read_paused:
            transport.resume_reading()
        Relay(self.server, self.server.fallback()).take_over(
            transport, data, self.write_paused, self.eof)
