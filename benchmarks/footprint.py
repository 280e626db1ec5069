"""Start-up time and memory per idle session: aiges (C and Python echo) against bare.

    .venv/bin/python benchmarks/footprint.py [--sessions 200] [--json out.json]

Start-up: from spawning the process to the first 200 from /health (polled every
5 ms), median of --starts runs. Idle sessions: the server's resident memory
(VmRSS) before and after opening --sessions WebSocket sessions that each sent a
first frame (status 0, Begin) and got its result, divided by their number.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp
import servers

import run

BEGIN = {"header": {"appid": "bench"}, "parameter": {"svcName": {}},
         "payload": {"input": {"encoding": "utf8", "status": 0,
                               "text": base64.b64encode(b"idle session").decode()}}}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def startup_seconds(cmd: list[str], port: int, workdir: Path) -> float:
    began = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=workdir, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[:3]} exited {proc.returncode} during start-up")
            with contextlib.suppress(OSError), urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/health", timeout=1) as resp:
                if resp.status == 200:
                    return time.perf_counter() - began
            if time.perf_counter() - began > 60:
                raise RuntimeError(f"{cmd[:3]} not healthy within 60 s")
            time.sleep(0.005)
    finally:
        servers.stop(proc)


async def open_idle(url: str, count: int) -> tuple[list, aiohttp.ClientSession]:
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))  # > 100 sockets
    sockets = []
    frame = json.dumps(BEGIN)
    for _ in range(count):
        ws = await http.ws_connect(url)
        await ws.send_str(frame)
        msg = await ws.receive(timeout=10)
        doc = json.loads(msg.data)
        if doc["header"]["code"] != 0:
            raise RuntimeError(f"{url}: session refused: {doc['header']}")
        sockets.append(ws)
    return sockets, http


async def idle_session_kb(server: servers.Server, count: int) -> float:
    url = server.base.replace("http://", "ws://") + "/v1/svcName"
    warm, http = await open_idle(url, 8)  # first-use allocations are not per session
    for ws in warm:
        await ws.close()
    await asyncio.sleep(0.3)
    before = rss_mb(server.pid)
    sockets, http2 = await open_idle(url, count)
    await asyncio.sleep(0.3)
    after = rss_mb(server.pid)
    for ws in sockets:
        await ws.close()
    await http.close()
    await http2.close()
    return (after - before) * 1024 / count


SESSION_TARGETS = ("aiges", "aiges-py", "bare")  # the targets that serve WebSocket sessions


def commands(args: argparse.Namespace, port: int, instances: int) -> dict[str, list[str]]:
    engines = {"aiges": args.engine, "aiges-py": args.py_engine}
    return {name: servers.bare_command(port) if name == "bare" else
            servers.aiges_command(engines[name].resolve(), port, instances)
            for name in args.targets}


def measure(args: argparse.Namespace) -> dict[str, dict]:
    results: dict[str, dict] = {}
    pinning = servers.choose_pinning(True)
    with tempfile.TemporaryDirectory(prefix="aiges-footprint-") as tmp:
        workdir = Path(tmp)
        for name in args.targets:
            port = servers.free_port()
            cmd = pinning.prefix(pinning.server) + commands(args, port, 1)[name]
            starts = [startup_seconds(cmd, port, workdir) for _ in range(args.starts)]
            port = servers.free_port()
            cmd = commands(args, port, args.sessions + 16)[name]
            with servers.running(name, cmd, port, pinning, workdir) as server:
                idle = asyncio.run(idle_session_kb(server, args.sessions))
            results[name] = {"startup_s": statistics.median(starts), "idle_session_kb": idle}
    return results


def render(results: dict[str, dict]) -> str:
    lines = [f"{'target':<10} {'start-up s':>10} {'KB per idle session':>20}"]
    for name, r in results.items():
        lines.append(f"{name:<10} {r['startup_s']:>10.3f} {r['idle_session_kb']:>20.1f}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    run.add_target_args(p)
    p.add_argument("--sessions", type=int, default=200, help="idle sessions to open")
    p.add_argument("--starts", type=int, default=3, help="start-ups timed per target")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    args = p.parse_args(argv)
    run.check_target_args(p, args)
    # The ceiling and protocol echoes answer once requests only: no sessions to hold.
    args.targets = [t for t in args.targets if t in SESSION_TARGETS]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = measure(args)
    print(render(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
