"""Adaptive batching (docs/BATCHING.md) on the gpusim engine: req/s and p50/p99 with
batching off and with [batch] maxSize 8 and 32, at several concurrencies, next to the
ideal (full batches back to back).

    .venv/bin/python benchmarks/batching.py [--call-ms 20] [--item-us 100]
        [--concurrency 1,8,32,64] [--sizes 1,8,32] [--delay-ms 0] [--duration 5]
        [--warmup 1] [--instances 1] [--json benchmarks/results/batching.json]

gpusim's call costs call_ms plus item_us per item and runs one call at a time (one
simulated GPU), so with batching off one instance serves 1000 / call_ms req/s whatever
the concurrency, and a batch of n serves n calls' worth in one. The ideal at concurrency
c and maxSize m is k / (call_ms + k * item_us) with k = min(c, m): every call full.
Uses wrk (pinned to the second CPU, aiges-load to the first) when installed, else the
Python load generator. Needs the CMake build (build/native_examples/libgpusim.so).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import loadgen

ROOT = Path(__file__).resolve().parent.parent
AIGES_LOAD = str(Path(sys.executable).parent / "aiges-load")


def int_list(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pin(cpu: int) -> list[str]:
    if shutil.which("taskset") and len(os.sched_getaffinity(0)) >= 2:
        return ["taskset", "-c", str(cpu)]
    return []


class Server:
    """aiges-load serving gpusim with one [batch] maxSize (1 = off)."""

    def __init__(self, args, size: int, workdir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1/svcName"
        config = workdir / f"batch{size}.toml"
        config.write_text(
            f"[aiges]\naccessLog = false\n[fc]\nmax = {args.instances}\nqueue = 4096\n"
            f"[batch]\nmaxSize = {size}\nmaxDelayMs = {args.delay_ms}\n"
            f"[wrapper]\ncall_ms = {args.call_ms}\nitem_us = {args.item_us}\n")
        engine = args.build / "native_examples" / "libgpusim.so"
        self.log = (workdir / f"batch{size}.log").open("wb")
        self.proc = subprocess.Popen(
            pin(0) + [AIGES_LOAD, str(engine), "-c", str(config), "--host", "127.0.0.1",
                      "--port", str(self.port), "--log-level", "warning"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url.replace("/v1/svcName", "/ready"),
                                            timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        self.close()
        raise RuntimeError(f"aiges-load did not start; see {self.log.name}")

    def wait_idle(self, limit_s: float = 30) -> None:
        """Until the requests a load run left behind are answered: wrk stops without
        waiting for them, and they would eat into the next run's window."""
        busy = ("aiges_instances_in_use ", "aiges_queue_depth ", "aiges_batch_waiting ")
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            with urllib.request.urlopen(self.url.replace("/v1/svcName", "/metrics"),
                                        timeout=5) as resp:
                lines = resp.read().decode().splitlines()
            if all(float(line.split()[1]) == 0 for line in lines if line.startswith(busy)):
                return
            time.sleep(0.05)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def ideal(args, size: int, concurrency: int) -> float:
    k = min(size, concurrency)
    return k / ((args.call_ms + k * args.item_us / 1000) / 1000)


def measure(args, url: str, body: bytes, script: Path, concurrency: int,
            seconds: int) -> loadgen.Measurement:
    if args.tool == "wrk":
        return loadgen.run_wrk(url, script, concurrency, seconds, pin(1))
    return loadgen.run_python(url, body, concurrency, seconds, ())


def run(args) -> list[dict]:
    text = loadgen.payload_text(100)
    body = loadgen.request_body(text)
    rows = []
    with tempfile.TemporaryDirectory(prefix="aiges-batching-") as tmp:
        workdir = Path(tmp)
        script = loadgen.write_wrk_script(workdir / "post.lua", body)
        for size in args.sizes:
            server = Server(args, size, workdir)
            try:
                loadgen.probe(server.url, body, text)
                for c in args.concurrency:
                    if args.warmup:
                        measure(args, server.url, body, script, c, args.warmup)
                        server.wait_idle()
                    m = measure(args, server.url, body, script, c, args.duration)
                    server.wait_idle()
                    row = {"max_size": size, "delay_ms": args.delay_ms if size > 1 else 0,
                           "concurrency": c, "rps": round(m.rps, 1),
                           "p50_ms": round(m.p50_ms, 2), "p99_ms": round(m.p99_ms, 2),
                           "ideal_rps": round(ideal(args, size, c), 1),
                           "bad": m.bad + m.socket_errors}
                    rows.append(row)
                    print_row(row)
            finally:
                server.close()
    return rows


def print_row(row: dict) -> None:
    size = "off" if row["max_size"] == 1 else str(row["max_size"])
    if row["delay_ms"]:
        size += f"+{row['delay_ms']}ms"
    share = row["rps"] / row["ideal_rps"] if row["ideal_rps"] else 0
    print(f"{size:>8} {row['concurrency']:>5} {row['rps']:>9.1f} {row['ideal_rps']:>9.1f} "
          f"{share:>6.0%} {row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f} {row['bad']:>5}",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--call-ms", type=int, default=20)
    parser.add_argument("--item-us", type=int, default=100)
    parser.add_argument("--concurrency", type=int_list, default=[1, 8, 32, 64])
    parser.add_argument("--sizes", type=int_list, default=[1, 8, 32],
                        help="[batch] maxSize values; 1 = batching off")
    parser.add_argument("--delay-ms", type=int, default=0, help="[batch] maxDelayMs")
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--build", type=Path, default=ROOT / "build")
    parser.add_argument("--python-load", action="store_true",
                        help="the Python load generator even when wrk is installed")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    args.tool = "wrk" if shutil.which("wrk") and not args.python_load else "python"
    print(f"gpusim: {args.call_ms} ms per call + {args.item_us} us per item, "
          f"{args.instances} instance(s), maxDelayMs {args.delay_ms}, load: {args.tool}")
    print(f"{'maxSize':>8} {'c':>5} {'req/s':>9} {'ideal':>9} {'share':>6} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'bad':>5}")
    rows = run(args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"call_ms": args.call_ms, "item_us": args.item_us,
                                         "instances": args.instances,
                                         "delay_ms": args.delay_ms, "tool": args.tool,
                                         "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
