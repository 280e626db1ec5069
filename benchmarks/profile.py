"""Where a once request's time goes: py-spy samples aiges-load under wrk load.

    .venv/bin/pip install py-spy        # or: pip install -e '.[bench]'
    .venv/bin/python benchmarks/profile.py [--size 100] [--concurrency 64] [--seconds 8]

Starts aiges-load with the C echo engine (or --engine) pinned to the first CPU,
loads it with wrk from the others, samples the event loop's thread with py-spy,
and prints the share of the loop's samples spent in each part of the request path
(inclusive: a part counts the time of everything it calls). --raw PATH keeps
py-spy's collapsed stacks (for flamegraph.pl or speedscope).
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import loadgen
import servers

# (label, a frame that marks it): py-spy's raw lines are "frame;frame;... count".
PARTS = [
    ("fast path: a connection's bytes to its answers", "Connection.data_received (aiges/server/fast.py"),
    ("  reading the head", "read_head (aiges/server/fast.py"),
    ("  writing the answer", "Connection._write (aiges/server/fast.py"),
    ("once request (either HTTP layer)", "begin (aiges/service/once.py"),
    ("  parse: JSON, validation, base64", "parse (aiges/protocol.py"),
    ("  runner: the engine call inline", "Runner.once_now (aiges/runner.py"),
    ("    CEngine.exec: the cffi call", "CEngine.exec (aiges/native/library.py"),
    ("      building ParamList/DataList", "_list (aiges/native/lists.py"),
    ("      copying the outputs", "read_data (aiges/native/lists.py"),
    ("      engine meter callback", "_on_meter"),
    ("    PythonEngine.exec", "PythonEngine.exec"),
    ("    engine call metrics", "Metrics.engine_call"),
    ("  rendering the response JSON", "success (aiges/protocol.py"),
    ("  request metrics (once_done)", "once_done (aiges/server/ops.py"),
    ("runner.once: awaited (threads, queue)", "Runner.once (aiges/runner.py"),
    ("aiohttp: reading and parsing HTTP", "RequestHandler.data_received"),
    ("aiohttp: writing the response", "RequestHandler.finish_response"),
]


def summarize(raw: Path) -> str:
    total, shares = 0, collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if "Thread._bootstrap" in stack:
            continue  # engine threads and the watchdog: not the loop
        total += int(count)
        for label, mark in PARTS:
            if mark in stack:
                shares[label] += int(count)
    lines = [f"{'share':>6}  part of the event loop's samples ({total})"]
    lines += [f"{100 * shares[label] / max(total, 1):5.1f}%  {label}" for label, _ in PARTS]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--engine", type=Path,
                   default=servers.REPO / "build" / "native_examples" / "libecho.so")
    p.add_argument("--size", type=int, default=100, help="payload bytes (default 100)")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--seconds", type=int, default=8)
    p.add_argument("--raw", type=Path, help="keep py-spy's collapsed stacks here")
    args = p.parse_args(argv)
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists() or not shutil.which("wrk"):
        sys.exit("needs py-spy (pip install py-spy) and wrk (apt-get install wrk)")
    pinning = servers.choose_pinning(True)
    client = pinning.prefix(pinning.client)
    with tempfile.TemporaryDirectory(prefix="aiges-profile-") as tmp, \
            contextlib.ExitStack() as stack:
        work = Path(tmp)
        port = servers.free_port()
        server = stack.enter_context(servers.running(
            "aiges", servers.aiges_command(args.engine.resolve(), port, None), port, pinning,
            work))
        url = server.base + "/v1/svcName"
        text = loadgen.payload_text(args.size)
        script = loadgen.write_wrk_script(work / "post.lua", loadgen.request_body(text))
        loadgen.probe(url, loadgen.request_body(text), text)
        loadgen.run_wrk(url, script, args.concurrency, 2, client)  # warm-up: inline calls
        raw = args.raw or work / "stacks.txt"
        spy_proc = subprocess.Popen(
            client + [spy, "record", "--format", "raw", "--rate", "1000", "--nonblocking",
                      "--duration", str(args.seconds), "--output", str(raw),
                      "--pid", str(server.pid)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        result = loadgen.run_wrk(url, script, args.concurrency, args.seconds, client)
        _, err = spy_proc.communicate(timeout=args.seconds + 30)
        if spy_proc.returncode:
            sys.exit(f"py-spy failed: {err.decode(errors='replace')}")
        print(f"{args.size} B at concurrency {args.concurrency}: {result.rps:.0f} req/s "
              f"while sampled (py-spy slows the server)")
        print(summarize(raw))
    return 0


if __name__ == "__main__":
    sys.exit(main())
