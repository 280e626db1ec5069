"""The HTTP front door under hostile clients (issue 16), on both paths: the fast path
(`POST /v1/{service}`) and the connections aiohttp serves behind the relay. Slow heads
and bodies are timed out, a client that never reads costs no memory, both paths
refuse the same heads with the same status, every request before a FIN is answered,
the connection cap answers 503, and a malformed head costs one throttled log line."""
from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

from tests.e2e.test_fast_http import GET_HEALTH, echoed, once_bytes, read_reply
from tests.helpers import rss_mb

pytestmark = pytest.mark.e2e


@pytest.fixture
def door(start, echo_so, tmp_path):
    """door(http_section, fast=True, engine=C echo): a service with an [http] section."""

    def _start(http: str = "", fast: bool = True, engine: str | None = None):
        path = tmp_path / f"door-{fast}.toml"
        path.write_text(f"[aiges]\nfastHttp = {str(fast).lower()}\n[http]\n{http}\n")
        return start(engine or echo_so, "-c", str(path), "--no-access-log")

    return _start


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> float:
    """How long until the server closed the connection (EOF or reset)."""
    started = time.monotonic()
    try:
        while await asyncio.wait_for(reader.read(65536), seconds):
            pass
    except ConnectionError:
        pass
    return time.monotonic() - started


async def health_ok(service) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    writer.write(GET_HEALTH)
    assert (await read_reply(reader)).status == 200
    writer.close()


PARTIAL = {
    "fast head": b"POST /v1/svcName HTTP/1.1\r\nHost: t\r\nContent-Le",
    "aiohttp head": b"GET /health HTTP/1.1\r\nHo",
    "fast body": b"POST /v1/svcName HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{\"pay",
    "aiohttp body": (b"POST /v1/svcName/sessions HTTP/1.1\r\nHost: t\r\n"
                     b"Content-Length: 100\r\n\r\n{\"pay"),
}


@pytest.mark.parametrize("case", PARTIAL)
async def test_stalled_heads_and_bodies_are_closed_in_time(door, case):
    service = door("headTimeout = 1\nbodyTimeout = 1")
    stalled = []
    for _ in range(20):
        reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
        writer.write(PARTIAL[case])
        stalled.append((reader, writer))
    await health_ok(service)  # others are served meanwhile
    waited = await asyncio.gather(*(closed_within(r, 5) for r, _ in stalled))
    assert max(waited) < 3.5, waited
    for _, writer in stalled:
        writer.close()
    await health_ok(service)


async def test_a_head_trickling_in_is_timed_from_its_first_byte(door):
    service = door("headTimeout = 1")
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    closing = asyncio.ensure_future(closed_within(reader, 10))
    head = b"POST /v1/svcName HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 1000
    for i in range(0, len(head), 10):  # bytes keep coming, the head never ends
        if closing.done():
            break
        writer.write(head[i:i + 10])
        await asyncio.sleep(0.05)
    assert await closing < 3
    writer.close()


@pytest.mark.parametrize("fast", [True, False])
async def test_idle_keepalive_closes_on_both_paths(door, fast):
    service = door("keepAlive = 1", fast=fast)
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    writer.write(GET_HEALTH)  # served by aiohttp
    assert (await read_reply(reader)).status == 200
    assert await closed_within(reader, 5) < 3.5
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    writer.write(once_bytes("idle next"))  # the fast path, when on
    assert echoed(await read_reply(reader)) == "idle next"
    assert await closed_within(reader, 5) < 3.5


OVER_LIMIT = {
    "long field": b"X-Long: " + b"a" * 9000 + b"\r\n",
    "many fields": b"".join(b"X-%d: a\r\n" % i for i in range(200)),
    "long line": None,
}


@pytest.mark.parametrize("case", OVER_LIMIT)
async def test_over_limit_heads_get_the_same_status_on_both_paths(door, case):
    statuses = []
    for fast in (True, False):
        service = door(fast=fast)
        if OVER_LIMIT[case] is None:
            data = b"POST /v1/svcName?" + b"q" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n"
        else:  # a request the fast path would answer 200 but for its head
            data = once_bytes("over", OVER_LIMIT[case].decode())
        reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
        writer.write(data)
        statuses.append((await read_reply(reader)).status)
        writer.close()
        service.close()
    assert statuses[0] == statuses[1] and statuses[0] in (400, 413, 431), statuses


@pytest.mark.parametrize("kind", ["fast", "aiohttp"])
async def test_every_request_before_a_fin_is_answered(door, kind, native_dir):
    # An engine without wrapperCancel: with one, a FIN while a request waits for it
    # counts as the client leaving (aiges/server/gone.py; test_cancel.py).
    service = door(engine=str(native_dir / "libgpusim.so"))
    if kind == "fast":
        requests = [once_bytes(f"piped {i}") for i in range(3)]
    else:
        requests = [GET_HEALTH] * 3
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    writer.write(b"".join(requests))
    writer.write_eof()
    replies = [await read_reply(reader) for _ in requests]
    assert [r.status for r in replies] == [200, 200, 200]
    if kind == "fast":
        assert [echoed(r) for r in replies] == [f"piped {i}" for i in range(3)]
    assert await closed_within(reader, 5) < 3


async def test_a_client_that_never_reads_costs_no_memory(door):
    # Fast-path requests whose answers fill the socket (writes pause), then requests for
    # aiohttp with big answers, all in one stream, never read: aiohttp takes over while
    # writes are paused and must know it, or its answers pile up in memory.
    service = door()
    before = rss_mb(service.proc.pid)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", service.port))
    sock.setblocking(False)
    stream = once_bytes("x" * 3000) * 200 + b"GET /openapi.json HTTP/1.1\r\nHost: t\r\n\r\n" * 40000
    sent = 0
    deadline = time.monotonic() + 8
    while sent < len(stream) and time.monotonic() < deadline:
        try:
            sent += sock.send(stream[sent:sent + 65536])
        except BlockingIOError:
            await asyncio.sleep(0.05)
    await asyncio.sleep(1)
    grown = rss_mb(service.proc.pid) - before
    await health_ok(service)
    sock.close()
    assert grown < 60, f"RSS grew {grown:.0f} MiB after {sent} bytes of requests"


async def test_connections_over_the_cap_get_a_quick_503(door):
    service = door("maxConnections = 5")
    held = [await asyncio.open_connection("127.0.0.1", service.port) for _ in range(5)]
    await asyncio.sleep(0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    reply = await read_reply(reader)
    assert reply.status == 503 and json.loads(reply.body)["header"]["code"] == 10003
    for _, w in held:
        w.close()
    await asyncio.sleep(0.3)
    await health_ok(service)
    assert service.log.count("too many open") == 1  # throttled


async def test_malformed_heads_cost_one_log_line(door):
    service = door()
    for i in range(30):
        reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header %d\r\n\r\n" % i)
        assert (await read_reply(reader)).status == 400
        writer.close()
    await health_ok(service)
    log = service.log
    assert log.count("bad request from a client") == 1
    assert "Traceback" not in log


async def test_a_huge_document_does_not_hold_other_clients(door):
    service = door()
    items = {f"k{i}": {"text": "eA==", "status": 3} for i in range(300_000)}
    body = json.dumps({"payload": items}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    writer.write(b"POST /v1/svcName HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n"
                 % len(body) + body)
    answer = asyncio.ensure_future(read_reply(reader))
    slowest = 0.0
    while not answer.done():
        started = time.monotonic()
        await health_ok(service)
        slowest = max(slowest, time.monotonic() - started)
        await asyncio.sleep(0.02)
    assert (await answer).status == 200
    assert slowest < 0.5, f"/health waited {slowest:.2f} s behind a big document"
