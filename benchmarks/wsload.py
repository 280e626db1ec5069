"""The WebSocket session client: frames, ping-pong and pipelined sessions, verification.

Every result frame is checked (code 0, the frame's status, its own text back,
in order), so a server that is fast because it is wrong shows up as errors
rather than as throughput.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import orjson
import uvloop
from aiohttp import WSMsgType
from loadgen import _percentile, payload_text

Frame = tuple[str, str, int]  # (wire JSON, text it must echo, status)
NORMAL_CLOSE = 1000
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Plan:
    """One measurement: `concurrency` workers, each running `rounds` sessions back to back."""
    concurrency: int
    frames: int          # per session
    rounds: int = 1
    pipelined: bool = False
    size: int = 100      # payload text bytes, before base64
    timeout: float = 10.0  # seconds to wait for any one server frame


@dataclass
class Tally:
    ok_frames: int = 0
    errors: int = 0
    sessions: int = 0    # sessions whose every frame checked out and that closed normally
    latencies: list[float] = field(default_factory=list)
    session_times: list[float] = field(default_factory=list)
    first_error: str = ""

    def fail(self, count: int, why: str) -> None:
        self.errors += count
        self.first_error = self.first_error or why


@dataclass(frozen=True)
class Result:
    frames: int          # verified result frames
    sessions: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    session_p50_ms: float
    client_cpu: float    # share of one core used by this (client) process
    server_cpu: float    # share of one core used by the server process
    first_error: str

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    @property
    def sps(self) -> float:
        return self.sessions / self.seconds if self.seconds else 0.0


def session_frames(tag: int, count: int, size: int) -> list[Frame]:
    """A session's frames; each text starts with its session tag and frame index.

    Unique texts are what let the check catch a result that is reordered,
    repeated or from another session (for sizes of at least 14 bytes).
    """
    statuses = [3] if count == 1 else [0] + [1] * (count - 2) + [2]
    frames = []
    for i, status in enumerate(statuses):
        text = (f"s{tag:05d}f{i:06d}:" + payload_text(size))[:size]
        doc = {"header": {"appid": "bench"}, "parameter": {"svcName": {}},
               "payload": {"input": {"encoding": "utf8", "status": status,
                                     "text": base64.b64encode(text.encode()).decode()}}}
        frames.append((orjson.dumps(doc).decode(), text, status))
    return frames


def check(msg: aiohttp.WSMessage, text: str, status: int) -> str:
    """Why this server frame is not the echo of (text, status); empty when it is."""
    if msg.type != WSMsgType.TEXT:
        return f"expected a result, got {msg.type.name} {msg.data!r}"[:200]
    try:
        doc = orjson.loads(msg.data)
        head = doc["header"]
        # The code first: an error frame has no payload, and its message is the news.
        if head.get("code") != 0:
            return f"code {head.get('code')}: {head.get('message')}"
        echoed = doc["payload"]["input"]["text"]
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return f"not a result frame: {msg.data[:200]}"
    if head.get("status") != status:
        return f"status {head.get('status')}, expected {status}"
    if echoed != text:
        return (f"echo differs (order or content): got {echoed[:14]!r}... ({len(echoed)} B), "
                f"sent {text[:14]!r}... ({len(text)} B)")
    return ""


async def receive_result(ws: aiohttp.ClientWebSocketResponse, timeout: float):
    """The next server frame that is not the ack aiges (as upstream) sends for a first
    frame whose result was not there at once: code 0 and no payload."""
    while True:
        msg = await ws.receive(timeout)
        if msg.type == WSMsgType.TEXT and '"payload"' not in msg.data:
            try:
                if orjson.loads(msg.data)["header"]["code"] == 0:
                    continue
            except (orjson.JSONDecodeError, KeyError, TypeError):
                pass
        return msg


async def _expect_close(ws: aiohttp.ClientWebSocketResponse, plan: Plan, tally: Tally) -> bool:
    msg = await ws.receive(plan.timeout)
    if msg.type == WSMsgType.CLOSE and msg.data == NORMAL_CLOSE:
        return True
    tally.fail(1, f"after the last result: {msg.type.name} {str(msg.data)[:200]}")
    return False


@dataclass
class _Progress:
    """Verified frames of one session: the tally is shared by every concurrent session."""
    ok: int = 0


async def _pingpong(ws, frames: list[Frame], plan: Plan, tally: Tally,
                    progress: _Progress) -> None:
    """Sends each frame once the previous result is in; stops at the first bad one."""
    for wire, text, status in frames:
        sent = time.perf_counter()
        await ws.send_str(wire)
        why = check(await receive_result(ws, plan.timeout), text, status)
        if why:
            tally.fail(1, why)
            return
        tally.latencies.append(time.perf_counter() - sent)
        progress.ok += 1


async def _pipelined(ws, frames: list[Frame], plan: Plan, tally: Tally,
                     progress: _Progress) -> None:
    """Sends every frame without waiting, then takes the results in.

    The sender is a task of its own so that a session larger than the socket
    buffers cannot deadlock; send_str only yields once the buffer is full, so
    until then it does send everything before the first receive.
    """
    sent_at = [0.0] * len(frames)

    async def send_all() -> None:
        for i, (wire, _text, _status) in enumerate(frames):
            sent_at[i] = time.perf_counter()
            await ws.send_str(wire)

    sender = asyncio.create_task(send_all())
    try:
        for i, (_wire, text, status) in enumerate(frames):
            why = check(await receive_result(ws, plan.timeout), text, status)
            if why:
                tally.fail(1, why)
                return
            tally.latencies.append(time.perf_counter() - sent_at[i])
            progress.ok += 1
        await sender
    finally:
        sender.cancel()
        # Collects the sender's own failure (the server closed on it), which
        # the receive side has already counted.
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender


async def one_session(http: aiohttp.ClientSession, url: str, frames: list[Frame],
                      plan: Plan, tally: Tally) -> None:
    """Connect, stream, check every result and the normal close; errors are counted.

    A failed session costs one error per frame that did not check out (or one
    for a bad close after all did): the stream stops at the first bad result,
    since every later one would be wrong by position alone.
    """
    began, progress = time.perf_counter(), _Progress()
    stream = _pipelined if plan.pipelined else _pingpong
    try:
        async with http.ws_connect(url, max_msg_size=0) as ws:
            await stream(ws, frames, plan, tally, progress)
            if progress.ok == len(frames) and await _expect_close(ws, plan, tally):
                tally.sessions += 1
                tally.session_times.append(time.perf_counter() - began)
    except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
        tally.fail(1, f"{type(exc).__name__}: {exc}"[:200])
    tally.ok_frames += progress.ok
    if progress.ok < len(frames):
        # The frame that failed was counted above; the ones never answered count too.
        tally.errors += len(frames) - progress.ok - 1


async def _run(url: str, plan: Plan, frames_for: Callable[[int], list[Frame]]) -> Tally:
    tally = Tally()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        async def worker(index: int) -> None:
            frames = frames_for(index)
            for _ in range(plan.rounds):
                await one_session(http, url, frames, plan, tally)

        await asyncio.gather(*(worker(i) for i in range(plan.concurrency)))
    return tally


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads (the engine's included)."""
    if not pid:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def run(url: str, plan: Plan, server_pid: int = 0) -> Result:
    """Runs the plan on a fresh uvloop and measures it, client and server CPU included."""
    # Frames are built before the clock starts: the client should spend its
    # time on the wire and the checks, not on composing JSON.
    built = {i: session_frames(i, plan.frames, plan.size) for i in range(plan.concurrency)}
    return measured(lambda: uvloop.run(_run(url, plan, built.__getitem__)), server_pid)


def measured(go: Callable[[], Tally], server_pid: int = 0) -> Result:
    """``go()``'s tally with its wall time and the client's and the server's CPU."""
    cpu0, srv0, t0 = time.process_time(), _cpu_seconds(server_pid), time.perf_counter()
    tally = go()
    seconds = time.perf_counter() - t0
    client_cpu = (time.process_time() - cpu0) / seconds
    server_cpu = (_cpu_seconds(server_pid) - srv0) / seconds
    lat, per_session = sorted(tally.latencies), sorted(tally.session_times)
    return Result(tally.ok_frames, tally.sessions, tally.errors, seconds,
                  _percentile(lat, 50) * 1e3, _percentile(lat, 99) * 1e3,
                  _percentile(per_session, 50) * 1e3, client_cpu, server_cpu,
                  tally.first_error)


def probe(url: str) -> None:
    """One 3-frame session that must echo exactly; anything else aborts the run."""
    result = run(url, Plan(concurrency=1, frames=3))
    if result.errors or result.sessions != 1:
        raise RuntimeError(f"{url}: the probe session failed: {result.first_error}")
