"""Connections that aiohttp serves, still watched by us: ``Relay`` stands between the
transport and aiohttp's protocol, passes everything through (bytes, end of input,
flow control: aiohttp sees a pause that began before it took over) and reads the
same bytes with an llhttp parser of its own, only to time them: a head must arrive
within ``[http] headTimeout`` of its first byte, a body may pause at most
``[http] bodyTimeout``. After a protocol upgrade (WebSocket) only bytes pass.
``Refused`` answers a connection over ``[http] maxConnections`` with a quick 503.
Knows nothing of requests beyond their timing.
"""
from __future__ import annotations

import asyncio
import logging
import time

import httptools
from aiohttp.http_exceptions import HttpProcessingError

log = logging.getLogger(__name__)

IDLE, HEAD, BODY = 0, 1, 2


class Throttle:
    """At most one line per ``every_s`` for each message; the count of lines left out
    rides on the next. Messages are the code's own strings: a bounded set."""

    def __init__(self, logger: logging.Logger, every_s: float = 60.0):
        self.logger = logger
        self.every_s = every_s
        self._seen: dict[str, tuple[float, int]] = {}

    def log(self, level: int, message: str, **extra) -> None:
        now = time.monotonic()
        last, skipped = self._seen.get(message, (-self.every_s, 0))
        if now - last < self.every_s:
            self._seen[message] = (last, skipped + 1)
            return
        self._seen[message] = (now, 0)
        self.logger.log(level, message, extra={**extra, "left_out": skipped})


class ServerLog:
    """The logger aiohttp's connections log through: a client's malformed request is a
    throttled warning line without a traceback (a few bytes from a client must not buy
    a page of log); anything else, a bug of ours, keeps its traceback."""

    def __init__(self, logger: logging.Logger):
        self.logger = logger
        self.throttle = Throttle(logger)

    def exception(self, msg, *args, exc_info=None, **kw) -> None:
        if isinstance(exc_info, HttpProcessingError):
            self.throttle.log(logging.WARNING, "bad request from a client",
                              status=exc_info.code, error=str(exc_info.message)[:200])
            return
        self.logger.exception(msg, *args, exc_info=exc_info, **kw)

    def debug(self, msg, *args, exc_info=None, **kw) -> None:
        if not isinstance(exc_info, HttpProcessingError):
            self.logger.debug(msg, *args, exc_info=exc_info, **kw)

    def __getattr__(self, name):
        return getattr(self.logger, name)


class Relay(asyncio.Protocol):
    __slots__ = ("owner", "handler", "transport", "parser", "phase", "since", "eof",
                 "refused", "on_lost")

    def __init__(self, owner, handler: asyncio.Protocol):
        self.owner = owner          # FastHTTP: the connections, limits and the sweep
        self.handler = handler      # aiohttp's RequestHandler
        self.transport: asyncio.Transport | None = None
        self.parser: httptools.HttpRequestParser | None = httptools.HttpRequestParser(self)
        self.phase = IDLE
        self.since = 0.0            # loop time: head began, or the body's last bytes
        self.eof = False            # the client shut its side between requests
        self.refused = False        # a request aiohttp will refuse (400) came
        self.on_lost = None         # called when the client goes (aiges/server/gone.py)

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.owner.connections.add(self)
        self.handler.connection_made(transport)

    def take_over(self, transport, data: bytes, write_paused: bool, eof: bool) -> None:
        """From the fast path: aiohttp serves this connection from ``data`` (the start
        of a request) on, in the flow-control state the fast path left."""
        transport.set_protocol(self)
        self.connection_made(transport)
        if write_paused:
            self.handler.pause_writing()
        self.data_received(data)
        if eof and self.transport is not None and not self.eof_received():
            transport.close()

    def connection_lost(self, exc) -> None:
        self.transport = None
        self.owner.forget(self)
        self.handler.connection_lost(exc)
        if self.on_lost is not None:
            self.on_lost()

    def data_received(self, data: bytes) -> None:
        parser = self.parser
        if parser is not None:
            if self.phase == BODY:
                self.since = self.owner.tick
            try:
                parser.feed_data(data)
            except httptools.HttpParserUpgrade:
                self.parser, self.phase = None, IDLE  # a WebSocket: aiohttp's from here on
            except httptools.HttpParserError:
                # aiohttp refuses it too, answers 400 and closes.
                self.parser, self.phase, self.refused = None, IDLE, True
        self.handler.data_received(data)

    def eof_received(self):
        """The client shut its side. Between requests, the ones it sent are still
        answered (aiohttp would close at once and drop them): the sweep closes the
        connection once aiohttp has nothing left to do. Mid-request: closed now."""
        if self.refused:
            return True  # its 400 is on the way; aiohttp closes after it
        if self.phase != IDLE or self.parser is None:
            return self.handler.eof_received()
        if self.on_lost is not None:
            return False  # a request waits on a cancellable engine: the client left (gone.py)
        self.eof = True
        return True

    def pause_writing(self) -> None:
        self.handler.pause_writing()

    def resume_writing(self) -> None:
        self.handler.resume_writing()

    # -- llhttp's callbacks: when a request's parts arrive ------------------------------
    def on_message_begin(self) -> None:
        self.phase, self.since = HEAD, self.owner.tick

    def on_headers_complete(self) -> None:
        self.phase, self.since = BODY, self.owner.tick

    def on_message_complete(self) -> None:
        self.phase = IDLE

    # -- the sweep -----------------------------------------------------------------------
    def overdue(self, now: float, head_s: float, body_s: float,
                keepalive_s: float) -> str | None:
        """Why this connection should close now, if it should (aiohttp times its own
        idle keep-alive: ``keepalive_s`` is not ours to apply here)."""
        if self.eof and _answered(self.handler):
            return "idle"
        if self.phase == HEAD and now - self.since > head_s and self._reading():
            return "head"
        if self.phase == BODY and now - self.since > body_s and self._reading():
            return "body"
        return None

    def _reading(self) -> bool:
        # A request that stopped because aiohttp stopped reading (its handler is slow,
        # its pipeline full) is not the client's stall.
        transport = self.transport
        return transport is not None and transport.is_reading()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _answered(handler) -> bool:
    """aiohttp's RequestHandler has answered every request it received and waits for
    the next (its private state: no public one tells)."""
    return not getattr(handler, "_messages", True) and getattr(handler, "_waiter", None) \
        is not None


class Refused(asyncio.Protocol):
    """A connection over [http] maxConnections: 503, then close."""

    ANSWER = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
              b"Connection: close\r\nRetry-After: 1\r\nContent-Length: %d\r\n\r\n%s")

    def __init__(self, body: bytes):
        self.body = body

    def connection_made(self, transport) -> None:
        transport.write(self.ANSWER % (len(self.body), self.body))
        transport.close()
