"""Frames written as aiohttp parses them (aiges.server.ws_frames): a session's text
frames that arrive while its task waits are written there and then; control frames,
invalid frames and frames that must wait for the engine go to the task, in order.
What a client sees must be what one frame at a time gives: every result in order,
pings answered, the error after the results of the frames before it, the read
timeout counted from the last frame."""
from __future__ import annotations

import asyncio
import json
import time

import pytest

from tests.e2e.test_hostile_ws import frame, raw_connect, raw_frame, read_server_frames

pytestmark = pytest.mark.e2e

TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


@pytest.fixture
def serve(balanced, echo_so):
    """serve(toml_extra, *flags): the C echo, its write and read measured fast (inline,
    aiges.placement: 32 fast calls in a row), so that frames can be taken."""
    def _serve(extra="", *flags):
        service = balanced(echo_so, extra, *flags)
        sock = raw_connect(service)
        first_result(sock)
        for i in range(40):
            sock.sendall(raw_frame(TEXT, frame(f"w{i}", 1).encode()))
            read_text(sock)
        sock.sendall(raw_frame(TEXT, frame("end", 2).encode()))
        assert texts(read_server_frames(sock)) == [("end", 2), ("close", 1000)]
        sock.close()
        return service
    return _serve


def read_text(sock) -> bytes:
    """One unmasked server text frame of under 64 KiB."""
    sock.settimeout(5)
    got = b""
    while len(got) < 4 or len(got) < _frame_end(got):
        got += sock.recv(65536 if len(got) < 4 else _frame_end(got) - len(got))
    return got


def texts(frames: list[tuple[int, bytes]]) -> list:
    """(opcode, what it says): a result's text and status, an error's code, a pong's
    payload, a close's code."""
    out = []
    for opcode, payload in frames:
        if opcode == TEXT:
            doc = json.loads(payload)
            header = doc["header"]
            if header["code"]:
                out.append(("error", header["code"]))
            elif "payload" in doc:
                out.append((doc["payload"]["input"]["text"], header["status"]))
            else:
                out.append(("ack", header["status"]))
        elif opcode == CLOSE:
            out.append(("close", int.from_bytes(payload[:2], "big")))
        else:
            out.append((opcode, payload))
    return out


def _frame_end(head: bytes) -> int:
    n = head[1] & 0x7F
    return 2 + n if n < 126 else 4 + int.from_bytes(head[2:4], "big")


def first_result(sock) -> None:
    """The session's first frame, written and answered alone: from here on its task
    waits, and frames are taken as they are parsed."""
    sock.sendall(raw_frame(TEXT, frame("a", 0).encode()))
    # In asyncMode an acknowledgement may come first (the result was not pushed yet
    # when the write returned): up to the result itself.
    while b'"payload"' not in read_text(sock):
        pass
    time.sleep(0.05)  # the task is back in receive()


@pytest.mark.parametrize("flags", [(), ("--async-mode",)], ids=["sync", "async"])
async def test_a_ping_among_frames_of_one_chunk_keeps_their_order(serve, flags):
    service = serve("", *flags)
    sock = raw_connect(service)
    first_result(sock)
    sock.sendall(raw_frame(TEXT, frame("b", 1).encode()) + raw_frame(PING, b"hi")
                 + raw_frame(TEXT, frame("c", 1).encode())
                 + raw_frame(TEXT, frame("d", 2).encode()))
    got = texts(await asyncio.to_thread(read_server_frames, sock))
    sock.close()
    assert [g for g in got if g[0] != PONG] == [("b", 1), ("c", 1), ("d", 2), ("close", 1000)]
    assert (PONG, b"hi") in got


async def test_a_close_after_frames_of_one_chunk_comes_after_their_results(serve):
    service = serve()
    sock = raw_connect(service)
    first_result(sock)
    sock.sendall(raw_frame(TEXT, frame("b", 1).encode())
                 + raw_frame(TEXT, frame("c", 1).encode())
                 + raw_frame(CLOSE, (1000).to_bytes(2, "big")))
    got = texts(await asyncio.to_thread(read_server_frames, sock))
    sock.close()
    assert got[:2] == [("b", 1), ("c", 1)] and got[-1][0] == "close"


async def test_an_invalid_frame_of_a_chunk_is_answered_after_those_before_it(serve):
    service = serve()
    sock = raw_connect(service)
    first_result(sock)
    sock.sendall(raw_frame(TEXT, frame("b", 1).encode()) + raw_frame(TEXT, b"{not json")
                 + raw_frame(TEXT, frame("c", 1).encode()))
    got = texts(await asyncio.to_thread(read_server_frames, sock))
    sock.close()
    assert got == [("b", 1), ("error", 10163), ("close", 1000)]


async def test_frames_that_wait_for_the_engine_keep_their_order(serve):
    """Each write waits 2 ms (over the inline limit): the frames taken go to the task,
    which writes them on the engine's threads one after the other."""
    service = serve()
    sock = raw_connect(service)
    sock.sendall(raw_frame(TEXT, frame("a", 0, write_delay_ms=2).encode()))
    chunk = b"".join(raw_frame(TEXT, frame(str(i), 1).encode()) for i in range(1, 40))
    sock.sendall(chunk + raw_frame(TEXT, frame("40", 2).encode()))
    got = texts(await asyncio.to_thread(read_server_frames, sock))
    sock.close()
    assert got == [("a", 0)] + [(str(i), 1) for i in range(1, 40)] + [("40", 2),
                                                                       ("close", 1000)]


async def test_frames_taken_as_parsed_hold_off_the_read_timeout(serve):
    service = serve("[ws]\nreadTimeout = 0.4")
    sock = raw_connect(service)
    first_result(sock)
    for i in range(8):  # 0.8 s of frames, never 0.4 s apart
        sock.sendall(raw_frame(TEXT, frame(f"f{i}", 1).encode()))
        await asyncio.sleep(0.1)
    # Then silence: the timeout ends the session.
    got = texts(await asyncio.to_thread(read_server_frames, sock))
    sock.close()
    assert got == [(f"f{i}", 1) for i in range(8)] + [("error", 10114), ("close", 1000)]


async def test_frames_after_the_last_one_of_a_chunk_are_not_served(serve):
    """The session ends at the final frame's result: the frames the client sent after
    it in the same chunk get no answer and no error, as when read one by one."""
    service = serve()
    sock = raw_connect(service)
    first_result(sock)
    sock.sendall(raw_frame(TEXT, frame("b", 2).encode())
                 + raw_frame(TEXT, frame("late", 1).encode()))
    got = texts(await asyncio.to_thread(read_server_frames, sock))
    sock.close()
    assert got == [("b", 2), ("close", 1000)]


async def test_compressed_frames_are_taken_too(serve, http):
    """A client that negotiated permessage-deflate: its compressed frames are inflated by
    aiohttp's parser as before, taken, and answered in order."""
    service = serve()
    async with http.ws_connect(service.url + "/v1/svcName", compress=15) as ws:
        assert ws.compress == 15
        await ws.send_str(frame("a", 0))
        assert (await ws.receive_json())["payload"]["input"]["text"] == "a"
        await asyncio.sleep(0.05)
        for i in range(1, 30):
            await ws.send_str(frame(f"z{i}" * 50, 1))
        await ws.send_str(frame("end", 2))
        got = [await asyncio.wait_for(ws.receive_json(), 5) for _ in range(30)]
    assert [g["payload"]["input"]["text"] for g in got] == \
        [f"z{i}" * 50 for i in range(1, 30)] + ["end"]
