"""Slow HTTP clients: a body that trickles in, headers never finished, a client that
never reads its responses. Other clients are served meanwhile, and the engine's
counters balance once the service stops."""
from __future__ import annotations

import asyncio
import base64
import json
import socket
import time

import pytest

from tests.helpers import read_counters

pytestmark = pytest.mark.e2e


def once_body(text: bytes) -> bytes:
    return json.dumps({"header": {"appid": "t"}, "payload": {"input": {
        "encoding": "utf8", "status": 3, "text": base64.b64encode(text).decode()}}}).encode()


@pytest.fixture
def service(start, echo_so, echo_config, counters_file):
    service = start(echo_so, "-c", str(echo_config))
    yield service
    assert service.terminate() == 0, service.log
    counters = read_counters(counters_file)
    assert (counters["live_exec"], counters["live_sessions"], counters["fini"]) == (0, 0, 1)


async def served_quickly(http, service, n: int = 5) -> None:
    for i in range(n):
        started = time.monotonic()
        async with http.post(service.url + "/v1/svcName", data=once_body(b"q%d" % i)) as resp:
            assert resp.status == 200
            assert (await resp.json())["payload"]["input"]["text"] == "q%d" % i
        assert time.monotonic() - started < 1.0


def request_head(length: int) -> bytes:
    return (f"POST /v1/svcName HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


async def test_trickling_body_does_not_block_others(http, service):
    body = once_body(b"slowly")
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    writer.write(request_head(len(body)))
    for i in range(0, len(body), 8):
        writer.write(body[i:i + 8])
        await writer.drain()
        if i % 32 == 0:
            await served_quickly(http, service, 1)
        await asyncio.sleep(0.02)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200")
    writer.close()
    await served_quickly(http, service)


async def test_unfinished_headers_and_bodies_do_not_block_others(http, service):
    socks = []
    for i in range(20):
        sock = socket.create_connection(("127.0.0.1", service.port))
        # Half the clients stop inside the headers, half inside a declared body.
        sock.sendall(b"POST /v1/svcName HTTP/1.1\r\nHost: x\r\nX-Slow: " if i % 2
                     else request_head(10_000) + b'{"payload":')
        socks.append(sock)
    try:
        await served_quickly(http, service, 10)
    finally:
        for sock in socks:
            sock.close()
    await served_quickly(http, service)


async def test_client_that_never_reads_responses(http, service):
    """Pipelined requests with 256 KiB answers, never read: the server blocks on that
    connection only."""
    body = once_body(b"x" * 200_000)
    sock = socket.create_connection(("127.0.0.1", service.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(1)
    try:
        for _ in range(200):
            sock.sendall(request_head(len(body)) + body)
    except TimeoutError:
        pass
    try:
        await served_quickly(http, service, 10)
        async with http.get(service.url + "/health") as resp:
            assert resp.status == 200
    finally:
        sock.close()
    await served_quickly(http, service)
