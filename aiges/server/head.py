"""Reading a request head for the fast path, with llhttp (httptools, the parser Node
and uvicorn use): is it ``POST /v1/{service} HTTP/1.1`` with a Content-Length that
the fast path may serve, and where does its body start and end?

What the fast path serves is a strict subset of what aiohttp (llhttp too) reads as
the same request: anything else, anything near aiohttp's limits (line and field
size, header count) and anything odd (bare LF line ends, repeated singleton
headers, Transfer-Encoding, Expect, Upgrade, HTTP/1.0) is FOREIGN and goes to
aiohttp, which then answers it, refusals included, so both paths refuse alike.
The scan for the end of a head resumes where the last one stopped: a head fed a
byte at a time costs linear time.
"""
from __future__ import annotations

from typing import NamedTuple

import httptools

# aiohttp's limits (web_protocol.RequestHandler): a field's name and value together,
# and the number of fields. A head at either goes to aiohttp, which refuses it.
MAX_FIELD = 8190
MAX_FIELDS = 128
MAX_HEAD = 16 * 1024     # a longer head is aiohttp's to refuse (431/400)
# Headers that make a request one for aiohttp (Transfer-Encoding, Expect, Upgrade)
# or that this path reads.
_SPECIAL = frozenset({b"content-length", b"connection", b"transfer-encoding", b"expect",
                      b"upgrade"})
# Headers aiohttp refuses to see twice (its SINGLETON_HEADERS); HTTP/1.1 needs one Host.
_SINGLE = frozenset({b"content-length", b"content-location", b"content-range",
                     b"content-type", b"etag", b"host", b"max-forwards", b"server",
                     b"transfer-encoding", b"user-agent"})
# The caller's W3C trace context, kept for tracing (aiges.tracing): the first of each.
_TRACE = frozenset({b"traceparent", b"tracestate"})
_WATCHED = _SPECIAL | _SINGLE | _TRACE


class Head(NamedTuple):
    end: int      # where the body starts
    length: int   # Content-Length (0 when absent)
    close: bool   # Connection: close
    trace: dict | None = None  # {"traceparent": ..., "tracestate": ...} when sent


FOREIGN = Head(-1, -1, False)  # a request for aiohttp


class _Fields:
    """httptools callbacks for one head: what the fast path needs from it."""

    __slots__ = ("length", "close", "ours", "count", "seen", "trace")

    def __init__(self) -> None:
        self.length = 0
        self.close = False
        self.ours = True
        self.count = 0
        self.seen: set[bytes] = set()
        self.trace: dict | None = None

    def on_header(self, name: bytes, value: bytes) -> None:
        self.count += 1
        if len(name) + len(value) >= MAX_FIELD:
            self.ours = False
        name = name.lower()
        if name in _WATCHED:
            self._watched(name, value)

    def _watched(self, name: bytes, value: bytes) -> None:
        if name in _TRACE:
            trace = self.trace = self.trace or {}
            trace.setdefault(name.decode(), value.strip(b" \t").decode("latin-1"))
            return
        if name in _SINGLE:
            if name in self.seen:
                self.ours = False
            self.seen.add(name)
        if name not in _SPECIAL:
            return
        value = value.strip(b" \t")
        if name == b"content-length":
            if not value.isdigit() or len(value) > 15:
                self.ours = False
            else:
                self.length = int(value)
        elif name == b"connection":
            tokens = {t.strip(b" \t").lower() for t in value.split(b",")}
            if b"upgrade" in tokens:
                self.ours = False
            self.close = self.close or b"close" in tokens
        else:
            self.ours = False


def _bare_lf(buf: bytes | bytearray, scanned: int) -> bool:
    """A LF without its CR in the bytes not seen before."""
    i = buf.find(b"\n", scanned)
    while i >= 0:
        if i == 0 or buf[i - 1] != 13:
            return True
        i = buf.find(b"\n", i + 1)
    return False


def read_head(buf: bytes | bytearray, line: bytes, scanned: int = 0,
              last: list | None = None) -> Head | None:
    """The head at the start of ``buf`` if it is a request for the fast path, whose
    request line is ``line``; FOREIGN when it is anything else, or may be; None when
    it is not complete yet. ``scanned``: how much of ``buf`` an earlier call saw.
    ``last``: [head bytes, Head] of the connection's previous head, reused when the
    next is the same bytes (clients repeat their heads; the same bytes read the same),
    and updated."""
    start = max(scanned - 3, 0)
    end = buf.find(b"\r\n\r\n", start, MAX_HEAD)
    if end < 0:
        if scanned < len(line):
            n = min(len(buf), len(line))
            if buf[:n] != line[:n]:
                return FOREIGN  # known at once: no need to wait
        if len(buf) >= MAX_HEAD or _bare_lf(buf, scanned):
            return FOREIGN  # too long, or with bare LFs: aiohttp's to judge
        return None
    head = buf[:end + 4]
    if last is not None and last[0] == head:
        return last[1]
    # The request line is the route's; llhttp (strict) checks the rest: a bare LF,
    # an obs-fold or a bad character is an error, so aiohttp's to answer.
    if not head.startswith(line):
        return FOREIGN
    fields = _Fields()
    try:
        httptools.HttpRequestParser(fields).feed_data(head)
    except (httptools.HttpParserError, httptools.HttpParserUpgrade):
        return FOREIGN
    if not fields.ours or fields.count >= MAX_FIELDS or b"host" not in fields.seen:
        return FOREIGN
    found = Head(end + 4, fields.length, fields.close, fields.trace)
    if last is not None:
        last[:] = (bytes(head), found)
    return found
