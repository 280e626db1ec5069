"""The HTTP session API client (SPEC 4: POST .../sessions, POST .../sessions/{sid}):
one POST per frame, every result checked, as wsload does for WebSocket.

The bare echo has no session API; its reference is the same number of POSTs of
the same frames to its once route (``once_plan``): one HTTP request per frame
is what either costs a client without WebSocket.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

import aiohttp
import orjson
import uvloop
import wsload


def _check_doc(doc: dict, text: str, status: int) -> str:
    head = doc.get("header", {})
    if head.get("code") != 0:
        return f"code {head.get('code')}: {head.get('message')}"
    try:
        echoed = doc["payload"]["input"]["text"]
    except (KeyError, TypeError):
        return f"not a result frame: {str(doc)[:200]}"
    if head.get("status") != status:
        return f"status {head.get('status')}, expected {status}"
    return "" if echoed == text else f"echo differs: got {echoed[:14]!r}, sent {text[:14]!r}"


async def _session(http: aiohttp.ClientSession, base: str, frames: list[wsload.Frame],
                   plan: wsload.Plan, tally: wsload.Tally) -> None:
    """Create with the first frame, write the rest, poll until ended; every result in
    order. Acks (no payload) are skipped, as over WebSocket."""
    began, ok = time.perf_counter(), 0
    expected: deque = deque()
    sent_at: deque = deque()
    sid, ended = "", False

    def take(doc: dict) -> str:
        nonlocal ok
        if doc.get("header", {}).get("code") != 0:
            return f"code {doc['header'].get('code')}: {doc['header'].get('message')}"
        for frame in doc.get("results", []):
            if "payload" not in frame:
                continue  # the ack of a first frame without a result
            if not expected:
                return "a result nobody asked for"
            text, status = expected.popleft()
            why = _check_doc(frame, text, status)
            if why:
                return why
            tally.latencies.append(time.perf_counter() - sent_at.popleft())
            ok += 1
        return ""

    try:
        for i, (wire, text, status) in enumerate(frames):
            url = f"{base}/sessions" if i == 0 else f"{base}/sessions/{sid}"
            expected.append((text, status))
            sent_at.append(time.perf_counter())
            async with http.post(url, data=wire) as resp:
                doc = orjson.loads(await resp.read())
            sid = sid or doc.get("header", {}).get("sid", "")
            ended = bool(doc.get("header", {}).get("ended"))
            why = take(doc)
            if why:
                tally.fail(1, why)
                break
        else:
            while expected or not ended:
                async with http.get(f"{base}/sessions/{sid}",
                                    params={"wait_ms": str(int(plan.timeout * 1000))}) as resp:
                    doc = orjson.loads(await resp.read())
                why = take(doc)
                if why:
                    tally.fail(1, why)
                    break
                ended = bool(doc["header"].get("ended"))
                if ended and expected:
                    tally.fail(1, "ended before every result came")
                    break
            else:
                tally.sessions += 1
                tally.session_times.append(time.perf_counter() - began)
    except (aiohttp.ClientError, ConnectionError, TimeoutError, orjson.JSONDecodeError) as exc:
        tally.fail(1, f"{type(exc).__name__}: {exc}"[:200])
    tally.ok_frames += ok
    if ok < len(frames):
        tally.errors += max(0, len(frames) - ok - 1)


async def _once(http: aiohttp.ClientSession, url: str, frames: list[wsload.Frame],
                tally: wsload.Tally) -> None:
    """The reference: each frame as a once request to the bare echo."""
    for wire, text, _status in frames:
        sent = time.perf_counter()
        try:
            async with http.post(url, data=wire) as resp:
                doc = orjson.loads(await resp.read())
        except (aiohttp.ClientError, ConnectionError, orjson.JSONDecodeError) as exc:
            tally.fail(1, f"{type(exc).__name__}: {exc}"[:200])
            continue
        echoed = doc.get("payload", {}).get("input", {}).get("text")
        if doc.get("header", {}).get("code") != 0 or echoed != text:
            tally.fail(1, f"bad once answer: {str(doc)[:200]}")
            continue
        tally.latencies.append(time.perf_counter() - sent)
        tally.ok_frames += 1
    tally.sessions += 1


def run(url: str, plan: wsload.Plan, server_pid: int = 0, bare: bool = False) -> wsload.Result:
    """``url``: http://host:port/v1/svcName; ``bare``: once requests instead of sessions."""
    built = {i: wsload.session_frames(i, plan.frames, plan.size)
             for i in range(plan.concurrency)}

    async def main() -> wsload.Tally:
        tally = wsload.Tally()
        async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                headers={"Content-Type": "application/json"}) as http:
            async def worker(i: int) -> None:
                for _ in range(plan.rounds):
                    if bare:
                        await _once(http, url, built[i], tally)
                    else:
                        await _session(http, url, built[i], plan, tally)
            await asyncio.gather(*(worker(i) for i in range(plan.concurrency)))
        return tally

    return wsload.measured(lambda: uvloop.run(main()), server_pid)


def probe(url: str) -> None:
    result = run(url, wsload.Plan(concurrency=1, frames=3))
    if result.errors or result.sessions != 1:
        raise RuntimeError(f"{url}: the probe HTTP session failed: {result.first_error}")
