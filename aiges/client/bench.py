"""`aiges bench`: load a running service with C worker coroutines on one event loop.

Once mode POSTs the same document over and over; session mode opens WebSocket
sessions that stream the input in frames. Workers share one connector limited
to C connections and start `ramp_up / C` seconds apart. The run stops after
`requests` (or sessions) in total or when `duration` has passed; requests in
flight then are finished and counted.
"""
from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass

import aiohttp
import orjson
from aiohttp import WSMsgType

from aiges.client.stats import Outcome

HEADERS = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Plan:
    url: str
    concurrency: int
    duration: float | None = None   # seconds; or
    requests: int | None = None     # total requests (sessions)
    ramp_up: float = 0.0
    timeout: float = 30.0
    body: bytes = b""               # once mode
    frames: tuple[str, ...] = ()    # session mode: the wire frames of one session
    interval: float = 0.0           # session mode: seconds between frames

    @property
    def session(self) -> bool:
        return bool(self.frames)


class Run:
    """The shared state of a run: outcomes so far and whether to start another."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.outcomes: list[Outcome] = []
        self.errors = 0
        self.started = 0
        self.t0 = time.perf_counter()
        self.deadline = self.t0 + plan.duration if plan.duration else None

    def claim(self) -> bool:
        if self.deadline is not None and time.perf_counter() >= self.deadline:
            return False
        if self.plan.requests is not None and self.started >= self.plan.requests:
            return False
        self.started += 1
        return True

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        self.errors += not outcome.ok

    def now(self) -> float:
        return time.perf_counter() - self.t0


def _header(raw: bytes) -> tuple[int | None, str]:
    try:
        head = orjson.loads(raw).get("header") or {}
        return head.get("code"), str(head.get("message") or "")
    except (orjson.JSONDecodeError, AttributeError):
        return None, raw[:80].decode("utf-8", "replace")


async def once(http: aiohttp.ClientSession, run: Run) -> Outcome:
    start = time.perf_counter()
    try:
        async with http.post(run.plan.url, data=run.plan.body, headers=HEADERS) as resp:
            raw = await resp.read()
            status = resp.status
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        return _failure(run, start, exc)
    code, message = _header(raw)
    return Outcome(run.now(), time.perf_counter() - start, status == 200 and code == 0,
                   status, code, "", message)


def _failure(run: Run, start: float, exc: BaseException) -> Outcome:
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        return Outcome(run.now(), time.perf_counter() - start, False, exc.status, None, "",
                       exc.message)
    name = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
    return Outcome(run.now(), time.perf_counter() - start, False, None, None, name,
                   str(exc)[:80])


async def _send_frames(ws: aiohttp.ClientWebSocketResponse, plan: Plan) -> None:
    for i, frame in enumerate(plan.frames):
        if i and plan.interval:
            await asyncio.sleep(plan.interval)
        if ws.closed:
            return
        await ws.send_str(frame)


async def session(http: aiohttp.ClientSession, run: Run) -> Outcome:
    """Connect, stream the frames (sent as they go, results read meanwhile), until the
    final result (status 2/3) or an error frame."""
    plan, start = run.plan, time.perf_counter()
    first = None
    try:
        async with http.ws_connect(plan.url, receive_timeout=plan.timeout) as ws:
            sender = asyncio.create_task(_send_frames(ws, plan))
            try:
                async for msg in ws:
                    if msg.type != WSMsgType.TEXT:
                        continue
                    first = first or time.perf_counter() - start
                    head = (orjson.loads(msg.data).get("header") or {})
                    code = head.get("code")
                    if code != 0:
                        return Outcome(run.now(), time.perf_counter() - start, False, 101,
                                       code, "", str(head.get("message") or ""), first)
                    if head.get("status") in (2, 3):
                        return Outcome(run.now(), time.perf_counter() - start, True, 101, 0,
                                       first=first, frames=len(plan.frames))
            finally:
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)
    except (aiohttp.ClientError, OSError, TimeoutError, orjson.JSONDecodeError) as exc:
        return _failure(run, start, exc)
    return Outcome(run.now(), time.perf_counter() - start, False, 101, None, "closed early",
                   "the server closed before the final result", first)


async def _worker(index: int, http: aiohttp.ClientSession, run: Run) -> None:
    plan = run.plan
    if plan.ramp_up and plan.concurrency > 1:
        await asyncio.sleep(plan.ramp_up * index / plan.concurrency)
    one = session if plan.session else once
    while run.claim():
        run.add(await one(http, run))


async def _progress(run: Run, stream, tty: bool) -> None:
    period = 0.25 if tty else 2.0
    while True:
        await asyncio.sleep(period)
        stream.write(progress_line(run, tty))
        stream.flush()


def progress_line(run: Run, tty: bool) -> str:
    plan, done, elapsed = run.plan, len(run.outcomes), run.now()
    unit = "sessions" if plan.session else "req"
    rate = done / elapsed if elapsed else 0.0
    if plan.requests:
        share = done / plan.requests
        count = f"{done}/{plan.requests} {unit}"
    else:
        share = min(1.0, elapsed / plan.duration) if plan.duration else 0.0
        count = f"{done} {unit}"
    text = f"{count}  {rate:.0f} {unit}/s  errors {run.errors}  {elapsed:.1f}s"
    if not tty:
        return text + "\n"
    bar = "#" * int(share * 30)
    return f"\r[{bar:<30}] {text}\x1b[K"


async def measure(plan: Plan, progress=None) -> tuple[list[Outcome], float]:
    """Run the plan; (outcomes, seconds from start to the last completion)."""
    connector = aiohttp.TCPConnector(limit=plan.concurrency)
    timeout = aiohttp.ClientTimeout(total=plan.timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        run = Run(plan)
        reporter = None
        if progress is not None:
            reporter = asyncio.create_task(_progress(run, progress, progress.isatty()))
        try:
            await asyncio.gather(*(_worker(i, http, run) for i in range(plan.concurrency)))
        finally:
            if reporter:
                reporter.cancel()
                await asyncio.gather(reporter, return_exceptions=True)
                if progress.isatty():
                    progress.write(progress_line(run, True) + "\n")
        elapsed = max((o.end for o in run.outcomes), default=run.now())
    return run.outcomes, elapsed


def event_loop_run(coro):
    try:
        import uvloop
    except ImportError:  # not on Windows
        return asyncio.run(coro)
    return uvloop.run(coro)


def progress_stream(quiet: bool):
    return None if quiet else sys.stderr
