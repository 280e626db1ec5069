"""Where one WebSocket session frame's CPU goes, stage by stage, timed in process.

    .venv/bin/python benchmarks/stream_breakdown.py [--size 100] [--json out.json]

As breakdown.py does for once requests: each stage of a session frame's path run
on its own, many times, against the real app that create_app builds (C echo and
Python echo engine, sync mode, write and read already inline), with no socket:
aiohttp's WebSocket frame parser and its receive() with the read timeout, JSON
parsing and validation, the engine's write and read alone and through the runner,
the session's bookkeeping, rendering, aiohttp's frame writer; the whole of what
aiges/server/ws.py does for a frame but the socket (decode, read its inputs, write
it inline, take its result, render it), alone and in a burst of frames read together
(written together, their results rendered for one send), per frame, and the same
taken as aiohttp's parser yields them (aiges/server/ws_frames.py); then the bare
echo's whole work per frame for comparison, and one hand-over between two tasks (what
a frame costs each time it wakes a task). What a frame costs under load beyond the sum is the kernel's send and
receive and the event loop.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

import orjson
from aiohttp import WSMsgType, web
from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
from aiohttp._websocket.writer import WebSocketWriter
from breakdown import app_state, report, stage_parser
from echo_server import echo_item
from loadgen import payload_text, request_body

from aiges import protocol
from aiges.server import ws, ws_frames
from aiges.service import sessions
from aiges.sessions import Session


BURST = 16  # frames of one read in the burst stage (one pipelined client's, typically)


class _Sink:
    """A transport and protocol that take everything and drop it."""

    _paused = False
    _reading_paused = False

    def write(self, data) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class _Sending:
    """ws._Sender's part in on_frames: the results rendered and written, at once."""

    def __init__(self, session: Session, sink: _Sink):
        self.session, self.protocol, self.holding = session, sink, False

    def send(self) -> None:
        self.holding = False
        self.protocol.write(ws.render(self.session, self.session.take()))

    def release(self) -> None:
        self.holding = False


def client_frame(text: bytes) -> bytes:
    """A masked client text frame, as a browser sends it."""
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(text))
    n = len(text)
    if n < 126:
        head = bytes([0x81, 0x80 | n])
    elif n < 65536:
        head = bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x81, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + mask + masked


async def timed(calls: dict, number: int, repeat: int) -> dict:
    """Median microseconds per call; coroutine functions are awaited (in this task:
    none of them suspends). The repeats go round every stage in turn."""
    runs: dict = {name: [] for name in calls}
    for _ in range(repeat):
        for name, fn in calls.items():
            is_async = asyncio.iscoroutinefunction(fn)
            t0 = time.perf_counter()
            if is_async:
                for _ in range(number):
                    await fn()
            else:
                for _ in range(number):
                    fn()
            # A stage of several frames (``frames``) is reported per frame.
            runs[name].append((time.perf_counter() - t0) / number / getattr(fn, "frames", 1)
                              * 1e6)
    return {name: round(statistics.median(times), 2) for name, times in runs.items()}


async def open_session(state, body: bytes) -> tuple[Session, protocol.Request]:
    first = state.parse(protocol.loads(body.replace(b'"status":3', b'"status":0')), None,
                        need_payload=False)
    session = await state.sessions.open(first.sid, first.params, first.psr_ids,
                                        first.outputs, ws.MODE, ack=True)
    await session.write(first.data)
    await session.results()
    req = state.parse(protocol.loads(body), session.sid)
    for _ in range(200):  # until write and read run inline
        await session.write(req.data)
        await session.results()
    return session, req


async def stages(state, session: Session, req, body: bytes) -> dict:
    loop = asyncio.get_running_loop()
    engine, runner, handle = state.engine, session.registry.runner, session.handle
    sink = _Sink()
    queue = WebSocketDataQueue(sink, 2 ** 16, loop=loop)
    reader = WebSocketReader(queue, 0, compress=False, decode_text=True)
    wire = client_frame(body)
    response = web.WebSocketResponse()
    response._reader = queue  # receive() reads what the parser queued
    writer = WebSocketWriter(sink, sink)
    engine.write(handle, req.data)
    items = engine.read(handle)
    frame = protocol.session_frame(session.sid, items, session.outputs, {"input": 1})
    msg = None

    async def feed() -> None:
        nonlocal msg
        reader.feed_data(wire)
        msg = await queue.read()

    async def receive_timeout() -> None:
        reader.feed_data(wire)
        await response.receive(timeout=30)

    async def receive_plain() -> None:
        reader.feed_data(wire)
        await response.receive()

    def write_read() -> None:
        engine.write(handle, req.data)
        engine.read(handle)

    def runner_write_read() -> None:
        runner.now(engine.write, handle, req.data, sid=session.sid)
        runner.now(engine.read, handle, sid=session.sid)

    async def session_write_take() -> None:
        await session.write(req.data)
        await session.results()

    async def send_str() -> None:
        await response_send(frame.decode())

    async def response_send(text: str) -> None:
        await writer.send_frame(text.encode(), WSMsgType.TEXT)

    async def send_bytes() -> None:
        await writer.send_frame(frame, WSMsgType.TEXT)

    def whole_frame() -> None:
        # What ws.py does for each frame, but the socket: decode, parse, write (inline),
        # take the result and render it as a WebSocket frame.
        later = sessions.write_soon(state, session, ws._decode(msg, state.config.ws_max_frame))
        assert later is None, "write and read must run inline"
        ws.render(session, session.take())

    async def whole_burst() -> None:
        # What ws.py does for frames aiohttp read together: decode each, write them
        # together (Session.write_many), take and render their results in one send.
        docs = [ws._decode(msg, state.config.ws_max_frame) for _ in range(BURST)]
        await sessions.write_many(state, session, docs)
        ws.render(session, session.take())

    whole_burst.frames = BURST

    # The path of a frame taken as aiohttp parses it (aiges/server/ws_frames.py): the
    # parser, then ws.py's on_frames (decode, inputs, write and read inline, take,
    # render, one transport write), for one frame of a chunk and for a chunk of BURST.
    frames = ws_frames.Frames(sink, 2 ** 16, loop=loop)
    taken_feed = ws_frames._Feed(WebSocketReader(frames, 0, compress=False,
                                                 decode_text=True), frames)
    on_frames = ws._write_taken(state, session, _Sending(session, sink), ws._ReadClock(0),
                                frames)
    chunk = wire * BURST

    def taken_frame() -> None:
        frames.take(on_frames)
        taken_feed.feed_data(wire)

    def taken_chunk() -> None:
        frames.take(on_frames)
        taken_feed.feed_data(chunk)

    taken_chunk.frames = BURST

    def bare_work() -> None:
        doc = orjson.loads(msg.data)
        payload = {name: dict(echo_item(item), seq="1") for name, item in doc["payload"].items()}
        orjson.dumps({"header": {"code": 0, "message": "success", "sid": "x", "status": 1},
                      "payload": payload}).decode()

    async def handover() -> None:
        done = loop.create_future()
        loop.call_soon(done.set_result, None)
        await done

    await feed()
    return {
        "ws read: aiohttp frame parser (feed_data, read)": feed,
        "ws read: + receive(), no timeout": receive_plain,
        "ws read: + receive(timeout=30)": receive_timeout,
        "parse: size check, JSON, validation, base64": lambda: state.parse(
            ws._decode(msg, state.config.ws_max_frame), session.sid),
        "parse, a later frame: its inputs only": lambda: state.inputs(
            ws._decode(msg, state.config.ws_max_frame)),
        "engine: write + read alone": write_read,
        "engine: write + read through the runner, inline": runner_write_read,
        "session: write (2 calls, push) + results()": session_write_take,
        "session: touch() (idle timer rearmed)": session.touch,
        "render: session_frame": lambda: protocol.session_frame(
            session.sid, items, session.outputs, {"input": 1}),
        "send: decode + send_str (str -> bytes)": send_str,
        "send: send_frame(bytes)": send_bytes,
        "event loop: one hand-over through a future": handover,
        "whole frame: decode, parse, write, take, render": whole_frame,
        f"whole burst of {BURST} frames read together, per frame": whole_burst,
        "taken as parsed: parser, the whole frame, its send": taken_frame,
        f"taken as parsed, {BURST} frames of one chunk, per frame": taken_chunk,
        "bare echo's work: loads, b64, dumps, decode": bare_work,
    }


async def measure(engines: dict[str, Path], body: bytes, number: int, repeat: int) -> dict:
    results: dict = {}
    async with contextlib.AsyncExitStack() as stack:
        calls = {}
        for kind, path in engines.items():
            state = await stack.enter_async_context(app_state(path, request_body("x")))
            session, req = await open_session(state, body)
            stack.push_async_callback(session.end, "done")
            for name, fn in (await stages(state, session, req, body)).items():
                calls[kind, name] = fn
        times = await timed(calls, number, repeat)
    for (kind, name), us in times.items():
        results.setdefault(kind, {})[name] = us
    return results


def frame_body(size: int) -> bytes:
    text = payload_text(size)
    return orjson.dumps({"header": {"appid": "bench"}, "parameter": {"svcName": {}},
                         "payload": {"input": {"encoding": "utf8", "status": 1,
                                               "text": base64.b64encode(text.encode())
                                               .decode()}}})


def main(argv: list[str] | None = None) -> int:
    args = stage_parser(__doc__.split("\n\n")[0], 3000, 15).parse_args(argv)
    engines = {"C echo": args.engine.resolve(), "Python echo": args.py_engine.resolve()}
    import uvloop
    results = uvloop.run(measure(engines, frame_body(args.size), args.number, args.repeat))
    report(results, f"{args.size} B session frame (status Continue, sync mode), median us "
           "per call", args.size, args.json, width=52)
    return 0


if __name__ == "__main__":
    sys.exit(main())
