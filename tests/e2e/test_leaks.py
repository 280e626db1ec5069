"""Leaks: thousands of once requests and hundreds of short sessions; the aiges-load
process's RSS levels off and the engine's live-handle counters return to zero."""
from __future__ import annotations

import asyncio
import base64
import json
import time

import pytest

from tests.helpers import read_counters

pytestmark = pytest.mark.e2e

ONCE, SESSIONS, CONCURRENCY = 3000, 200, 16


def vm_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def doc(text: str, status: int) -> str:
    return json.dumps({"header": {"appid": "t"}, "parameter": {"svcName": {"n": text}},
                       "payload": {"input": {"encoding": "utf8", "status": status,
                                             "text": base64.b64encode(text.encode() * 50)
                                             .decode()}}})


async def once_requests(http, url: str, n: int) -> None:
    async def worker(k: int) -> None:
        for i in range(k, n, CONCURRENCY):
            async with http.post(url, data=doc(f"r{i}", 3)) as resp:
                assert resp.status == 200, await resp.text()
                await resp.read()
    await asyncio.gather(*(worker(k) for k in range(CONCURRENCY)))


async def sessions(http, url: str, n: int) -> None:
    async def one(i: int) -> None:
        async with http.ws_connect(url) as ws:
            for status in (0, 1, 2):
                await ws.send_str(doc(f"s{i}", status))
            got = [json.loads(m.data) async for m in ws]
            assert got[-1]["header"]["status"] == 2, got
    for start in range(0, n, CONCURRENCY):
        await asyncio.gather(*(one(i) for i in range(start, min(n, start + CONCURRENCY))))


async def test_rss_levels_off_and_handles_return(http, start, echo_so, echo_config,
                                                 counters_file):
    # Sessions may take every instance ([fc] maxSessions = 0): the test runs once
    # requests and sessions one after the other, CONCURRENCY of each at once.
    echo_config.write_text(echo_config.read_text() + "[fc]\nmaxSessions = 0\n")
    service = start(echo_so, "-c", str(echo_config), "--log-level", "warning")
    url = service.url + "/v1/svcName"
    started = time.monotonic()
    rss = []
    for _ in range(2):  # two equal halves: the second must not keep growing
        await once_requests(http, url, ONCE // 2)
        await sessions(http, url, SESSIONS // 2)
        rss.append(vm_rss_kb(service.proc.pid))
    assert time.monotonic() - started < 120
    assert rss[1] - rss[0] < 8 * 1024, f"RSS grew {rss[1] - rss[0]} KiB in the second half"
    counters = read_counters(counters_file)
    assert counters["exec"] >= ONCE and counters["create"] >= SESSIONS, counters
    assert (counters["live_exec"], counters["live_sessions"]) == (0, 0), counters
    assert service.terminate() == 0, service.log
    counters = read_counters(counters_file)
    assert counters["create"] == counters["destroy"] and counters["fini"] == 1, counters
