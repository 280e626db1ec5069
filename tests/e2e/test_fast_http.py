"""The fast HTTP/1.1 path for once requests (aiges/server/fast.py), over raw sockets
against the real aiges-load: it answers like aiohttp does, in order, whatever way
the bytes arrive, hands everything else to aiohttp mid-connection, and drains."""
from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from dataclasses import dataclass

import pytest

from tests.e2e.test_once import body
from tests.helpers import metric, metric_samples, read_counters

pytestmark = pytest.mark.e2e

PLACEMENT = {"inline": "", "threads": "inlineMaxUs = 0\n"}


@pytest.fixture
def serve(start, tmp_path, counters_file):
    """serve(engine, aiges_toml_lines) -> a Service with a counters file."""

    def _serve(engine: str, aiges: str = "", name: str = "aiges.toml"):
        path = tmp_path / name
        path.write_text(f'[aiges]\n{aiges}\n[wrapper]\ncounters_file = "{counters_file}"\n')
        return start(engine, "-c", str(path), "--no-access-log")

    return _serve


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


def once_bytes(text: str = "hello", head: str = "", doc: dict | None = None) -> bytes:
    data = json.dumps(doc if doc is not None else body(text)).encode()
    return (f"POST /v1/svcName HTTP/1.1\r\nHost: t\r\nContent-Length: {len(data)}\r\n"
            f"{head}\r\n").encode() + data


GET_HEALTH = b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n"


async def read_reply(reader: asyncio.StreamReader) -> Reply:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    line, *fields = head.decode("latin-1").split("\r\n")[:-2]
    headers = {}
    for field in fields:
        name, _, value = field.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        data = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 10)
    else:
        data = await asyncio.wait_for(reader.read(), 10)  # Connection: close
    return Reply(int(line.split()[1]), headers, data)


async def exchange(port: int, data: bytes, replies: int) -> list[Reply]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        return [await read_reply(reader) for _ in range(replies)]
    finally:
        writer.close()


def echoed(reply: Reply) -> str:
    assert reply.status == 200, reply
    return reply.json()["payload"]["input"]["text"]


@pytest.mark.parametrize("placement", PLACEMENT)
async def test_pipelined_requests_are_answered_in_order(serve, echo_engine, placement):
    service = serve(echo_engine, PLACEMENT[placement])
    # GET /health hands the connection to aiohttp mid-pipeline: the two after it are
    # aiohttp's, and still come back in order.
    data = (once_bytes("a") + once_bytes("b" * 70000) + once_bytes("c") + GET_HEALTH +
            once_bytes("d") + once_bytes("e"))
    replies = await exchange(service.port, data, 6)
    assert [echoed(r) for r in replies[:3]] == ["a", "b" * 70000, "c"]
    assert replies[3].json()["status"] == "ok"
    assert [echoed(r) for r in replies[4:]] == ["d", "e"]


@pytest.mark.parametrize("fast", ["true", "false"])
async def test_data_after_connection_close_is_refused_as_aiohttp_does(serve, echo_so, fast):
    # A request that says Connection: close followed by more bytes: aiohttp refuses the
    # lot (400) and runs nothing; the fast path hands such a connection to aiohttp.
    service = serve(echo_so, f"fastHttp = {fast}")
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    try:
        writer.write(once_bytes("last", "Connection: close\r\n") + once_bytes("ignored"))
        reply = await read_reply(reader)
        assert reply.status == 400
        assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()
    metrics, = await exchange(service.port, b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n", 1)
    samples = metric_samples(metrics.body.decode())
    assert metric(samples, "aiges_requests_total", mode="once", code="0") == 0  # not run


async def test_connection_close_is_the_last_answer(serve, echo_so):
    service = serve(echo_so)
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    try:
        writer.write(once_bytes("last", "Connection: close\r\n"))
        reply = await read_reply(reader)
        assert echoed(reply) == "last" and reply.headers["connection"] == "close"
        writer.write(once_bytes("ignored"))
        assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()


async def test_requests_split_anywhere(serve, echo_so):
    service = serve(echo_so)
    first, second = once_bytes("split"), once_bytes("next")
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    try:
        # A byte at a time through the head, then the body in odd pieces, the next
        # request starting in the same piece as the end of the first.
        end = first.index(b"\r\n\r\n") + 4
        pieces = [first[i:i + 1] for i in range(end)]
        rest = first[end:] + second
        pieces += [rest[i:i + 7] for i in range(0, len(rest), 7)]
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.001)
        assert [echoed(await read_reply(reader)) for _ in range(2)] == ["split", "next"]
    finally:
        writer.close()


async def test_a_repeated_head_reads_as_the_first(serve, echo_so):
    """Keep-alive clients repeat their heads byte for byte; the fast path then skips
    reading the head again (Connection._repeated), never what follows it."""
    service = serve(echo_so)
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)

    async def ask(*requests: bytes) -> list[str]:
        writer.write(b"".join(requests))
        return [echoed(await read_reply(reader)) for _ in requests]

    try:
        assert await ask(once_bytes("aaaa")) == ["aaaa"]
        assert await ask(once_bytes("aaaa")) == ["aaaa"]
        assert await ask(once_bytes("bbbb")) == ["bbbb"]  # same head, another body
        assert await ask(once_bytes("bbbb"), once_bytes("cccc")) == ["bbbb", "cccc"]
        assert await ask(once_bytes("longer")) == ["longer"]  # another length: another head
        writer.write(once_bytes("dddd")[:-3])  # the same head, its body cut short
        await writer.drain()
        await asyncio.sleep(0.05)
        assert await ask(once_bytes("dddd")[-3:]) == ["dddd"]
        closing = once_bytes("eeee", "Connection: close\r\n")
        writer.write(closing)
        reply = await read_reply(reader)
        assert echoed(reply) == "eeee" and reply.headers["connection"] == "close"
        assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()


async def test_large_bodies_round_trip(serve, echo_so):
    service = serve(echo_so)
    raw = bytes(range(256)) * 8192  # 2 MB: many reads, a thread, a split write
    doc = body(pcm={"audio": base64.b64encode(raw).decode()})
    reply, = await exchange(service.port, once_bytes(doc=doc), 1)
    assert reply.status == 200
    assert base64.b64decode(reply.json()["payload"]["pcm"]["audio"]) == raw


def normal(reply: Reply) -> tuple:
    """A reply without what differs between any two: the date and the sids."""
    headers = {k: v for k, v in reply.headers.items() if k != "date"}
    return reply.status, headers, re.sub(rb"[0-9a-f]{32}", b"SID", reply.body)


SAME_ANSWERS = {
    "ok": once_bytes("same"),
    "not json": b"POST /v1/svcName HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyz",
    "bad base64": once_bytes(doc=body(pcm={"audio": "%%%"})),
    "no payload": once_bytes(doc={"header": {}}),
    "no body": b"POST /v1/svcName HTTP/1.1\r\nHost: t\r\n\r\n",
    "too large": once_bytes("x" * 5000),
    "close": once_bytes("bye", "Connection: close\r\n"),
    "chunked": (b"POST /v1/svcName HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                + b"%x\r\n" % len(json.dumps(body("ch"))) + json.dumps(body("ch")).encode()
                + b"\r\n0\r\n\r\n"),
    "http/1.0": once_bytes("old").replace(b"HTTP/1.1", b"HTTP/1.0"),
    "query": once_bytes("q").replace(b"/v1/svcName", b"/v1/svcName?x=1"),
}


async def test_answers_are_those_of_aiohttp(serve, echo_so):
    """Every case once through the fast path (fastHttp on, the default) and once
    through aiohttp alone: the same status, headers and body."""
    limit = "maxBody = 4096\n"
    fast = serve(echo_so, limit, "fast.toml")
    plain = serve(echo_so, limit + "fastHttp = false\n", "plain.toml")
    for case, data in SAME_ANSWERS.items():
        got, = await exchange(fast.port, data, 1)
        want, = await exchange(plain.port, data, 1)
        assert normal(got) == normal(want), case
    assert got.status == 200 and "server" in got.headers
    statuses = {case: (await exchange(fast.port, data, 1))[0].status
                for case, data in SAME_ANSWERS.items()}
    assert statuses == {"ok": 200, "not json": 400, "bad base64": 400, "no payload": 400,
                        "no body": 400, "too large": 413, "close": 200, "chunked": 200,
                        "http/1.0": 200, "query": 200}


BAD_HEADS = {
    "two lengths": b"Content-Length: 3\r\nContent-Length: 4\r\n",
    "length and chunked": b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
    "length not a number": b"Content-Length: 3x\r\n",
    "space before colon": b"Content-Length : 3\r\n",
    "control character": b"X-Id: a\x01b\r\nContent-Length: 3\r\n",
}


@pytest.mark.parametrize("case", BAD_HEADS)
async def test_malformed_heads_get_400_and_the_service_serves_on(serve, echo_so, case):
    service = serve(echo_so)
    data = b"POST /v1/svcName HTTP/1.1\r\nHost: t\r\n" + BAD_HEADS[case] + b"\r\n{}x"
    reply, = await exchange(service.port, data, 1)
    assert reply.status == 400
    assert echoed((await exchange(service.port, once_bytes("fine"), 1))[0]) == "fine"


async def test_one_connection_counts_every_request(serve, echo_so):
    """Keep-alive on the fast path, then aiohttp on the same connection: every once
    request is counted in the metrics, whichever served it."""
    service = serve(echo_so)
    metrics = b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"
    replies = await exchange(service.port, once_bytes("x") * 20 + metrics +
                             once_bytes("y") * 5 + metrics, 27)
    assert [echoed(r) for r in replies[:20]] == ["x"] * 20
    assert [echoed(r) for r in replies[21:26]] == ["y"] * 5
    samples = metric_samples(replies[26].body.decode())
    assert metric(samples, "aiges_requests_total", mode="once", code="0") == 25


async def test_drain_answers_in_flight_and_closes_idle(serve, native_dir, counters_file):
    """SIGTERM: a request waiting for a slow engine call still gets its answer (with
    Connection: close), an idle keep-alive connection is closed, the service exits 0."""
    service = serve(str(native_dir / "libfaulty.so"), "drainTimeout = 5000\n")
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", service.port)
    idle_writer.write(once_bytes())
    assert (await read_reply(idle_reader)).status == 200
    busy_reader, busy_writer = await asyncio.open_connection("127.0.0.1", service.port)
    busy_writer.write(once_bytes(doc=body(params={"fault": "slow", "ms": 1500})))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    service.proc.terminate()
    assert await asyncio.wait_for(idle_reader.read(), 5) == b""  # closed, not answered
    assert time.monotonic() - started < 1.0
    reply = await read_reply(busy_reader)
    assert reply.status == 200 and reply.headers["connection"] == "close"
    assert await asyncio.wait_for(busy_reader.read(), 5) == b""
    assert await asyncio.to_thread(service.wait_exit) == 0, service.log
    counters = read_counters(counters_file)
    assert (counters["live_exec"], counters["fini"]) == (0, 1), counters
    idle_writer.close()
    busy_writer.close()


async def test_client_gone_before_its_answer(serve, native_dir, counters_file):
    """A client that leaves while its request waits costs nothing else: the call
    completes, the instance comes back, others are served."""
    service = serve(str(native_dir / "libfaulty.so"))
    _, writer = await asyncio.open_connection("127.0.0.1", service.port)
    writer.write(once_bytes(doc=body(params={"fault": "slow", "ms": 300})))
    await asyncio.sleep(0.1)
    writer.close()
    await asyncio.sleep(0.5)
    replies = await exchange(service.port, once_bytes("after") * 3, 3)
    assert all(r.status == 200 for r in replies)
    assert service.terminate() == 0, service.log
    assert read_counters(counters_file)["live_exec"] == 0


async def test_half_closed_client_still_gets_its_answer(serve, native_dir):
    """A client that sends its request and then shuts its side (as `nc -N` does) is
    answered before the connection closes, also when the engine call waits (an engine
    without wrapperCancel: libgpusim)."""
    service = serve(str(native_dir / "libgpusim.so"))
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    writer.write(once_bytes(doc=body(params={"delay_ms": 200})))
    await writer.drain()
    writer.write_eof()
    reply = await read_reply(reader)
    assert reply.status == 200
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_half_close_leaves_when_the_engine_can_cancel(serve, native_dir, counters_file):
    """With an engine that has wrapperCancel (libfaulty), TCP cannot tell that client
    from one that closed its socket: its waiting call is cancelled and the connection
    closes unanswered (aiges/server/gone.py)."""
    service = serve(str(native_dir / "libfaulty.so"))
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    writer.write(once_bytes(doc=body(params={"fault": "slow", "ms": 2000})))
    await writer.drain()
    await asyncio.sleep(0.1)
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), 1) == b""
    writer.close()
    deadline = time.monotonic() + 1
    while read_counters(counters_file)["cancelled"] != 1:
        assert time.monotonic() < deadline, read_counters(counters_file)
        await asyncio.sleep(0.01)
