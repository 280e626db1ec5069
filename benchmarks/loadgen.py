"""Request bodies, the correctness probe, and the two load generators (wrk, Python)."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import statistics
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import uvloop

HEADERS = {"Content-Type": "application/json"}
MARK = "BENCH_RESULT "

# wrk hands every thread its own Lua state; done() alone sees the merged
# summary, so it prints one line the harness parses instead of wrk's text.
WRK_SCRIPT = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[%(body)s]==]

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "%(mark)s{\\"requests\\":%%d,\\"duration_us\\":%%d,\\"non2xx\\":%%d," ..
    "\\"socket_errors\\":%%d,\\"p50_us\\":%%d,\\"p99_us\\":%%d}\\n",
    summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class Measurement:
    requests: int
    seconds: float
    bad: int  # wrk: status >= 400; Python: anything but 200 with header.code 0
    socket_errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @staticmethod
    def merged(rounds: list[Measurement]) -> Measurement:
        """Rounds of one target at one point: requests over their whole time, every bad
        answer, and the median round's latencies (wrk hands out percentiles, not its
        histogram)."""
        return Measurement(sum(m.requests for m in rounds), sum(m.seconds for m in rounds),
                           sum(m.bad for m in rounds), sum(m.socket_errors for m in rounds),
                           statistics.median(m.p50_ms for m in rounds),
                           statistics.median(m.p99_ms for m in rounds))


def payload_text(size: int) -> str:
    """ASCII, so the echo engine can hand it back as a JSON string unchanged."""
    return ("abcdefghijklmnopqrstuvwxyz0123456789" * (size // 36 + 1))[:size]


def request_body(text: str) -> bytes:
    doc = {"header": {"appid": "bench"}, "parameter": {"svcName": {}},
           "payload": {"input": {"encoding": "utf8", "status": 3,
                                 "text": base64.b64encode(text.encode()).decode()}}}
    return json.dumps(doc, separators=(",", ":")).encode()


def probe(url: str, body: bytes, text: str) -> None:
    """One plain request: fail loudly unless it is a 200, code 0, with the text echoed.

    wrk only counts statuses, so this is what shows a server answers correctly
    rather than fast and wrong.
    """
    req = urllib.request.Request(url, data=body, headers=HEADERS, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        doc = json.loads(raw)
        code, echoed = doc["header"]["code"], doc["payload"]["input"]["text"]
    except (ValueError, KeyError, TypeError):
        raise RuntimeError(f"{url}: HTTP {status}, unexpected body {raw[:200]!r}") from None
    if status != 200 or code != 0 or echoed != text:
        raise RuntimeError(f"{url}: HTTP {status}, code {code}, echo "
                           f"{'matches' if echoed == text else 'differs'}")


def write_wrk_script(path: Path, body: bytes) -> Path:
    path.write_text(WRK_SCRIPT % {"body": body.decode(), "mark": MARK})
    return path


def run_wrk(url: str, script: Path, concurrency: int, seconds: int,
            prefix: list[str]) -> Measurement:
    # One thread for one connection; two for more, matching the 2 cores the
    # box has (both then share the client core when pinned).
    threads = 1 if concurrency == 1 else 2
    # wrk's default 2 s timeout would count 16 MB requests at c=64 as socket errors.
    cmd = prefix + ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{seconds}s",
                    "--timeout", "60s", "--latency", "-s", str(script), url]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True,
                          timeout=seconds + 60)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    r = json.loads(line[len(MARK):])
    return Measurement(r["requests"], r["duration_us"] / 1e6, r["non2xx"],
                       r["socket_errors"], r["p50_us"] / 1e3, r["p99_us"] / 1e3)


def run_python(url: str, body: bytes, concurrency: int, seconds: float,
               cpus: tuple[int, ...]) -> Measurement:
    """The fallback: this process becomes the client, pinned to the client CPUs."""
    before = os.sched_getaffinity(0)
    if cpus:
        os.sched_setaffinity(0, cpus)
    try:
        return uvloop.run(_python_load(url, body, concurrency, seconds))
    finally:
        os.sched_setaffinity(0, before)


async def _python_load(url: str, body: bytes, concurrency: int,
                       seconds: float) -> Measurement:
    latencies: list[float] = []
    counts = {"bad": 0, "socket": 0}
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=HEADERS) as session:
        async def worker() -> None:
            while (start := time.perf_counter()) < deadline:
                try:
                    async with session.post(url, data=body) as resp:
                        raw = await resp.read()
                except aiohttp.ClientError:
                    counts["socket"] += 1
                    continue
                latencies.append(time.perf_counter() - start)
                # A substring test: parsing every body would slow the client further.
                if resp.status != 200 or b'"code":0' not in raw:
                    counts["bad"] += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return Measurement(len(latencies), elapsed, counts["bad"], counts["socket"],
                       _percentile(latencies, 50) * 1e3, _percentile(latencies, 99) * 1e3)


def _percentile(ordered: list[float], pct: float) -> float:
    if not ordered:
        return 0.0
    rank = max(0, math.ceil(pct / 100 * len(ordered)) - 1)  # nearest rank
    return ordered[rank]
