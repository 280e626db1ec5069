"""The fast path's head reader against aiohttp's own parser (the one its server uses):
whatever the fast path serves, aiohttp would read as the same request, with the
same body length and the same keep-alive decision; everything else is handed on."""
from __future__ import annotations

import asyncio

import pytest
from aiohttp.base_protocol import BaseProtocol
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.http_parser import HttpRequestParser
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from aiges.server.head import FOREIGN, MAX_FIELDS, MAX_HEAD, Head, read_head

LINE = b"POST /v1/svcName HTTP/1.1\r\n"

# Mostly plausible heads, so that many are served; the odd ones are what gets handed on.
NAMES = st.sampled_from([
    b"Content-Type", b"Content-Length", b"content-length", b"CONTENT-LENGTH", b"Connection",
    b"connection", b"X-Id", b"Accept", b"Transfer-Encoding", b"Expect", b"Upgrade", b"Host",
    b"Content-Length ", b" Host", b"Bad Name", b"", b"X\x00", b"\xc3\xa9"])
VALUES = st.one_of(
    st.sampled_from([b"12", b" 12 ", b"\t0", b"+12", b"1_2", b"12, 12", b"0x10", b"-1",
                     b"close", b"keep-alive", b"Close", b"keep-alive, close", b"upgrade",
                     b"chunked", b"100-continue", b"websocket", b"", b"a\x01b", b"a\rb",
                     b"a\nb", b"caf\xc3\xa9", b"123456789012345678"]),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12).map(str.encode),
    st.binary(max_size=12),
    # around aiohttp's field limit (8190 bytes of name and value)
    st.integers(8170, 8200).map(lambda n: b"a" * n), st.just(b"b" * 9000))
PRINTABLE = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12)
CLEAN = st.one_of(
    st.tuples(st.sampled_from([b"Content-Type", b"X-Id", b"Accept", b"User-Agent"]),
              PRINTABLE.map(str.encode)),
    st.tuples(st.sampled_from([b"Content-Length", b"content-length"]),
              st.integers(0, 99).map(lambda n: b" %d" % n)),
    st.tuples(st.just(b"Connection"), st.sampled_from([b"close", b"keep-alive", b"Close",
                                                       b" keep-alive , close"])))
# A clean head, or one with an odd field somewhere; sometimes with very many fields
# (aiohttp refuses more than 128).
MANY = st.integers(100, 140).map(lambda n: [(b"X-%d" % i, b"v") for i in range(n)])
FIELDS = st.tuples(st.lists(CLEAN, max_size=4) | MANY, st.none() | st.tuples(NAMES, VALUES),
                   st.integers(0, 4)).map(
    lambda t: t[0] if t[1] is None else t[0][:t[2]] + [t[1]] + t[0][t[2]:])
LINES = st.sampled_from([LINE] * 16 + [
    b"POST /v1/svcName HTTP/1.0\r\n", b"GET /v1/svcName HTTP/1.1\r\n",
    b"POST /v1/svcName?x=1 HTTP/1.1\r\n", b"POST /v1/other HTTP/1.1\r\n",
    b"post /v1/svcName HTTP/1.1\r\n", b"POST  /v1/svcName HTTP/1.1\r\n",
    b"\r\n" + LINE, b"POST /v1/svcName HTTP/1.1\n"])


def head_bytes(line: bytes, fields: list[tuple[bytes, bytes]], sep: bytes = b"\r\n") -> bytes:
    return line + b"".join(name + b":" + value + sep for name, value in fields) + sep


def aiohttp_messages(data: bytes):
    """aiohttp's messages for ``data`` (several when pipelined), or None when it refuses."""
    loop = asyncio.new_event_loop()
    try:
        parser = HttpRequestParser(BaseProtocol(loop), loop, 2 ** 16, max_line_size=8190,
                                   max_field_size=8190)
        try:
            messages, _upgraded, _tail = parser.feed_data(data)
        except HttpProcessingError:
            return None
        return [m for m, _payload in messages]
    finally:
        loop.close()


def aiohttp_reads(data: bytes):
    """aiohttp's message for ``data``, or None when it refuses it."""
    messages = aiohttp_messages(data)
    return messages[0] if messages else None


@settings(max_examples=500, deadline=None)
@example(LINE, [(b"Content-Type", b"\r\n\r\n")], True, b"\r\n")  # a blank line in a value
@example(LINE, [(b"Content-Type", b"\r\n\r\n"), (b"X-0", b"v")], True, b"\r\n")  # then more
@given(LINES, FIELDS, st.sampled_from([True] * 4 + [False]), st.sampled_from([b"\r\n"] * 5 + [b"\n"]))
def test_served_heads_read_alike_by_aiohttp(line, fields, host, sep):
    head = head_bytes(line, [(b"Host", b"x")] + fields if host else fields, sep)
    found = read_head(head, LINE)
    assert found is not None  # a whole head is either served or handed on
    event("served" if found is not FOREIGN else "handed on")
    if found is FOREIGN:
        return
    # A value may hold a blank line itself (st.binary): the head ends at the first one,
    # for aiohttp too; what follows is the body.
    blank = head.find(b"\r\n\r\n")
    assert found.end == (blank + 4 if blank >= 0 else len(head))
    message = aiohttp_reads(head[:found.end] + b"x" * found.length)  # the request it serves
    assert message is not None, head
    assert (message.method, message.path, message.version) == ("POST", "/v1/svcName", (1, 1))
    assert not message.chunked and not message.upgrade
    assert int(message.headers.get("Content-Length", 0)) == found.length
    assert message.should_close == found.close


@pytest.mark.parametrize("head, expected", [
    (LINE + b"Host: x\r\nContent-Length: 12\r\n\r\n", (12, False)),
    (LINE + b"Content-Length:3\r\nHost:\r\nConnection: keep-alive, Close\r\n\r\n",
     (3, True)),
    (LINE + b"Host: x\r\n\r\n", (0, False)),  # no body
])
def test_plain_heads_are_served(head, expected):
    assert read_head(head + b"{}", LINE) == Head(len(head), *expected)


@pytest.mark.parametrize("head", [
    LINE + b"Transfer-Encoding: chunked\r\n\r\n",
    LINE + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\n",
    LINE + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",  # smuggling
    LINE + b"Expect: 100-continue\r\nContent-Length: 3\r\n\r\n",
    LINE + b"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    LINE + b"Content-Length : 3\r\n\r\n",
    LINE + b"Host: x\r\n Content-Length: 3\r\n\r\n",  # obs-fold
    LINE + b"Content-Length: 3\r\n\r\n",  # no Host
    LINE + b"Host: x\r\nHost: y\r\n\r\n",
    b"GET /health HTTP/1.1\r\n\r\n",
    b"POST /v1/svcName HTTP/1.0\r\nContent-Length: 3\r\n\r\n",
])
def test_other_requests_are_handed_on(head):
    assert read_head(head, LINE) is FOREIGN


def test_partial_heads_wait_or_go():
    head = LINE + b"Host: x\r\nContent-Length: 12\r\n\r\n"
    for cut in range(1, len(head)):
        assert read_head(head[:cut], LINE) is None, cut
    assert read_head(b"GET ", LINE) is FOREIGN  # known at once: no need to wait
    assert read_head(LINE + b"Host: x\n", LINE) is FOREIGN  # bare LF: aiohttp's to judge
    assert read_head(LINE + b"X: " + b"a" * MAX_HEAD, LINE) is FOREIGN


@settings(max_examples=200, deadline=None)
@given(FIELDS, st.binary(min_size=1, max_size=3))
def test_a_head_split_anywhere_reads_as_the_whole(fields, step):
    """Fed in pieces (the scan resuming where it stopped), a head reads exactly as when
    it comes whole: None until its last byte, then the same answer."""
    head = head_bytes(LINE, [(b"Host", b"x")] + fields)
    whole = read_head(head, LINE)
    size, scanned, found = step[0] % 7 + 1, 0, None
    for cut in range(size, len(head) + size, size):
        part = head[:cut]
        found = read_head(part, LINE, scanned)
        scanned = len(part)
        if found is not None:
            break
    if whole is FOREIGN:
        assert found is FOREIGN  # known as early as the whole, or at its end
    else:
        assert found == whole and cut >= len(head)


@settings(max_examples=300, deadline=None)
@given(FIELDS, LINES, FIELDS)
def test_pipelined_requests_end_where_aiohttp_ends_them(first, line, second):
    """A served request followed by another: the fast path's end of the first is
    aiohttp's, so the next request starts on the same byte for both."""
    head = head_bytes(LINE, [(b"Host", b"x")] + first)
    found = read_head(head + b"{}", LINE)
    if found is FOREIGN:
        return
    body = b"x" * found.length
    nxt = head_bytes(line, [(b"Host", b"y"), (b"Content-Length", b"0")] + second)
    messages = aiohttp_messages(head + body + nxt)
    if messages is None or len(messages) < 2:
        return  # aiohttp refuses the second: it gets the connection from its first byte
    assert messages[0].path == "/v1/svcName"
    end = nxt.index(b"\r\n\r\n") + 4  # a blank line inside a value ends the head there
    assert read_head(nxt, LINE) in (FOREIGN, Head(end, 0, False), Head(end, 0, True))


def test_limits_are_aiohttps():
    at_limit = head_bytes(LINE, [(b"Host", b"x")] + [(b"X-%d" % i, b"v")
                                                      for i in range(MAX_FIELDS + 2)])
    assert read_head(at_limit, LINE) is FOREIGN
    assert aiohttp_reads(at_limit) is None
    long = head_bytes(LINE, [(b"Host", b"x"), (b"X", b"a" * 9000)])
    assert read_head(long, LINE) is FOREIGN and aiohttp_reads(long) is None
    # At the limit the fast path hands on (aiohttp then decides): it never serves a head
    # aiohttp might refuse.
    near = head_bytes(LINE, [(b"Host", b"x"), (b"X", b"a" * 8189)])
    assert read_head(near, LINE) is FOREIGN


def test_a_repeated_head_is_read_once():
    """A connection's next head, byte for byte the last one served, reads the same
    without llhttp; any other head is read anew (and FOREIGN is never kept)."""
    head = LINE + b"Host: x\r\nContent-Length: 2\r\n\r\n"
    last = [b"", None]
    found = read_head(head + b"{}", LINE, 0, last)
    assert found == Head(len(head), 2, False) and last == [head, found]
    assert read_head(head + b"[]", LINE, 0, last) is found
    other = LINE + b"Host: x\r\nContent-Length: 3\r\n\r\n"
    assert read_head(other, LINE, 0, last) == Head(len(other), 3, False)
    assert read_head(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", LINE, 0, last) is FOREIGN
    assert last[0] == other
