"""Hostile WebSocket clients (SPEC 4): malformed frames, storms, slow and silent
readers, abrupt resets. Each ends with the documented error frame and/or close, the
service keeps serving other sessions, and every wrapperCreate is matched by a
wrapperDestroy once the service is stopped."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct

import aiohttp
import pytest

from tests.helpers import read_counters

pytestmark = pytest.mark.e2e

CLOSED = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED)


def frame(text: str | bytes, status: int = 0, **params) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return json.dumps({"header": {"appid": "t"}, "parameter": {"svcName": params},
                       "payload": {"input": {"encoding": "utf8", "status": status,
                                             "text": base64.b64encode(raw).decode()}}})


@pytest.fixture
def serve(balanced, echo_so):
    """serve(toml_extra): the C echo, checked balanced at the end."""
    return lambda extra="": balanced(echo_so, extra)


async def still_serves(http, service) -> None:
    """A fresh WebSocket session and a once request are both answered."""
    async with http.ws_connect(service.url + "/v1/svcName") as ws:
        await ws.send_str(frame("alive", 3))
        got = await asyncio.wait_for(ws.receive_json(), 5)
        assert got["payload"]["input"]["text"] == "alive"
    async with http.get(service.url + "/health") as resp:
        assert resp.status == 200


async def error_then_close(ws) -> int:
    msg = await asyncio.wait_for(ws.receive(), 5)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    code = json.loads(msg.data)["header"]["code"]
    assert (await asyncio.wait_for(ws.receive(), 5)).type in CLOSED
    return code


# ---- a raw client: frames aiohttp's client would refuse to send ----

def raw_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    mask = os.urandom(4)
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def raw_connect(service) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", service.port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /v1/svcName HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def read_server_frames(sock: socket.socket) -> list[tuple[int, bytes]]:
    """Server frames (opcode, payload) until close or EOF."""
    frames, buf = [], b""
    sock.settimeout(5)
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 2:
            n, off = buf[1] & 0x7F, 2
            if n == 126:
                n, off = struct.unpack("!H", buf[2:4])[0], 4
            elif n == 127:
                n, off = struct.unpack("!Q", buf[2:10])[0], 10
            if len(buf) < off + n:
                break
            frames.append((buf[0] & 0x0F, buf[off:off + n]))
            buf = buf[off + n:]
        if frames and frames[-1][0] == 0x8:
            break
    return frames


@pytest.mark.parametrize("bad, code", [
    # not a JSON object: upstream's WebSocket code 10163 (10000 on the once route)
    ("{not json", 10163),
    ("[1, 2, 3]", 10163),
    ('"just a string"', 10163),
    (json.dumps({"payload": {"input": {"text": "%%%not base64", "status": 0}}}), 10001),
    (json.dumps({"payload": {"input": {"text": "YQ==", "status": 10**30}}}), 10009),
    (json.dumps({"payload": {"input": {"text": "YQ==", "status": -1}}}), 10009),
    (json.dumps({"payload": []}), 10009),
    (json.dumps({"header": [], "payload": {"input": {"text": "YQ=="}}}), 10009),
    (json.dumps({"header": {"res_id": "x,y"}, "payload": {"input": {"text": "YQ=="}}}), 10107),
])
@pytest.mark.parametrize("when", ["first", "mid-session"])
async def test_malformed_text_frame_is_one_error_frame_then_close(http, serve, bad, code, when):
    service = serve()
    async with http.ws_connect(service.url + "/v1/svcName") as ws:
        if when == "mid-session":
            await ws.send_str(frame("a", 0))
            assert (await ws.receive_json())["payload"]["input"]["text"] == "a"
        await ws.send_str(bad)
        assert await error_then_close(ws) == code
    await still_serves(http, service)


async def test_binary_frame_is_an_error(http, serve):
    service = serve()
    async with http.ws_connect(service.url + "/v1/svcName") as ws:
        await ws.send_bytes(frame("a", 0).encode())
        assert await error_then_close(ws) == 10009
    async with http.ws_connect(service.url + "/v1/svcName") as ws:
        await ws.send_str(frame("a", 0))
        await ws.receive_json()
        await ws.send_bytes(b"\x00\xff" * 100)
        assert await error_then_close(ws) == 10009
    await still_serves(http, service)


@pytest.mark.parametrize("payload", [b"\xff\xfe{}", b'{"payload": "\xc3\x28"}'])
async def test_invalid_utf8_text_frame_closes_the_socket(http, serve, payload):
    service = serve()
    sock = raw_connect(service)
    try:
        sock.sendall(raw_frame(0x1, payload))
        frames = read_server_frames(sock)
        # aiohttp refuses the frame: close 1007 (invalid frame payload data).
        assert frames and frames[-1][0] == 0x8
        assert struct.unpack("!H", frames[-1][1][:2])[0] == 1007
    finally:
        sock.close()
    await still_serves(http, service)


async def test_frames_after_the_session_ended_are_not_served(http, serve):
    service = serve()
    sock = raw_connect(service)
    try:
        # The once frame and more frames right behind it, before the server's close.
        sock.sendall(raw_frame(0x1, frame("one", 3).encode())
                     + raw_frame(0x1, frame("two", 1).encode())
                     + raw_frame(0x1, b"garbage"))
        frames = read_server_frames(sock)
    finally:
        sock.close()
    texts = [json.loads(p) for op, p in frames if op == 0x1]
    assert texts[0]["payload"]["input"]["text"] == "one"
    assert all(t["payload"]["input"]["text"] != "two" for t in texts if "payload" in t)
    assert frames[-1][0] == 0x8
    await still_serves(http, service)


async def test_ping_pong_and_close_storms(http, serve):
    service = serve()
    sock = raw_connect(service)
    try:
        sock.sendall(raw_frame(0x1, frame("a", 0).encode()))
        storm = b"".join(raw_frame(0x9, b"p%d" % i) + raw_frame(0xA, b"u") for i in range(500))
        sock.sendall(storm + raw_frame(0x1, frame("b", 1).encode()))
        sock.sendall(b"".join(raw_frame(0x8, struct.pack("!H", 1000)) for _ in range(50)))
        frames = read_server_frames(sock)
    finally:
        sock.close()
    opcodes = [op for op, _ in frames]
    assert opcodes.count(0xA) <= 500 and opcodes[-1] == 0x8
    await still_serves(http, service)


async def test_fragmented_and_oversized_frames(http, serve):
    service = serve("[ws]\nmaxFrame = 4096")
    sock = raw_connect(service)
    try:
        sock.sendall(raw_frame(0x1, b"x" * 10000))
        frames = read_server_frames(sock)
        assert [op for op, _ in frames] == [0x1, 0x8]
        assert json.loads(frames[0][1])["header"]["code"] == 10009
        assert struct.unpack("!H", frames[-1][1][:2])[0] == 1009  # message too big
    finally:
        sock.close()
    sock = raw_connect(service)
    try:  # a continuation frame with no start
        sock.sendall(raw_frame(0x0, b"abc"))
        frames = read_server_frames(sock)
        assert frames and frames[-1][0] == 0x8
    finally:
        sock.close()
    await still_serves(http, service)


async def test_silent_client_hits_the_read_timeout(http, serve):
    service = serve("[ws]\nreadTimeout = 0.3")
    async with http.ws_connect(service.url + "/v1/svcName") as ws:
        assert await error_then_close(ws) == 10114
    await still_serves(http, service)


async def test_abrupt_reset_mid_session_destroys_it(http, serve, counters_file):
    service = serve()
    for _ in range(5):
        sock = raw_connect(service)
        sock.sendall(raw_frame(0x1, frame("a", 0).encode()))
        assert read_one_text(sock)["payload"]["input"]["text"] == "a"
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # RST, no close frame
    await wait_no_live_sessions(counters_file)
    await still_serves(http, service)


def read_one_text(sock: socket.socket) -> dict:
    buf = b""
    while True:
        buf += sock.recv(65536)
        if len(buf) >= 2 and len(buf) >= 2 + (buf[1] & 0x7F) and (buf[1] & 0x7F) < 126:
            return json.loads(buf[2:2 + (buf[1] & 0x7F)])
        if len(buf) >= 4 and (buf[1] & 0x7F) == 126:
            n = struct.unpack("!H", buf[2:4])[0]
            if len(buf) >= 4 + n:
                return json.loads(buf[4:4 + n])


async def wait_no_live_sessions(counters_file, timeout: float = 5) -> None:
    for _ in range(int(timeout / 0.02)):
        if read_counters(counters_file)["live_sessions"] == 0:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(read_counters(counters_file))


async def test_slow_reader_does_not_stall_other_sessions(http, serve, counters_file):
    """A client that writes big frames and never reads: the server's send blocks on
    that socket only (bounded buffers), other sessions are served meanwhile."""
    service = serve("[aiges]\nmaxBody = 2097152")
    rss_before = vm_rss_kb(service.proc.pid)
    sock = raw_connect(service)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    big = os.urandom(700_000)
    sock.sendall(raw_frame(0x1, frame(big, 0).encode()))
    sock.settimeout(0.5)
    sent = 0
    try:
        for _ in range(40):  # keep writing until the server stops reading us
            sock.sendall(raw_frame(0x1, frame(big, 1).encode()))
            sent += 1
    except TimeoutError:
        pass
    grown_kb = vm_rss_kb(service.proc.pid) - rss_before
    # Regression: the reader kept reading frames and queued every echo (~37 MiB of
    # base64 here, without bound) for a client that never reads.
    assert sent < 40 and grown_kb < 30_000, (sent, grown_kb)
    for _ in range(3):
        await asyncio.wait_for(still_serves(http, service), 10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    await wait_no_live_sessions(counters_file, 10)
    await still_serves(http, service)


def vm_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")
