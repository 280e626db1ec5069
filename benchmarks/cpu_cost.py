"""What one request costs each server in CPU time, under wrk: a figure a busy box
cannot move much.

    .venv/bin/python benchmarks/cpu_cost.py [--sizes 100] [--concurrency 1,64]
        [--targets aiges,aiges-py,ceiling,bare] [--baseline /tmp/aiges-before]

Requests/s on a shared machine follow its neighbours; the server's own CPU time
(utime + stime from /proc) divided by the requests it answered does much less: time
spent waiting for a core is not in it. Each server runs pinned to the server CPU and
is loaded by wrk from the others, the targets taking turns; at concurrency 64 the
servers are CPU-bound, so the ratio of two servers' CPU per request is the ratio of
their requests/s on an idle core (the inverse). At concurrency 1 each request also
pays for the loop going to sleep and waking, which a bigger share of idle time makes
cheaper or dearer: there it is a cost, not a throughput.

``--baseline TREE`` also serves the C and Python echo from another checkout (for
instance `git archive main | tar -x -C /tmp/aiges-before`) as aiges@base and
aiges-py@base, to compare a change with the build before it in the same turns.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
from pathlib import Path

import loadgen
import servers

import run

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def start(stack: contextlib.ExitStack, bench: run.Bench, args) -> dict[str, servers.Server]:
    engines = {"aiges": args.engine, "aiges-py": args.py_engine}
    started = {}
    for name in args.targets:
        port = servers.free_port()
        cmd = servers.echo_command(name, port) if name in run.REFERENCES else \
            servers.aiges_command(engines[name].resolve(), port, None)
        started[name] = stack.enter_context(
            servers.running(name, cmd, port, bench.pinning, bench.workdir))
    if args.baseline:
        for name in ("aiges", "aiges-py"):
            port = servers.free_port()
            engine = engines[name].resolve() if name == "aiges" else \
                args.baseline / engines[name].resolve().relative_to(servers.REPO)
            cmd = servers.aiges_command(engine, port, None)
            started[f"{name}@base"] = stack.enter_context(servers.running(
                f"{name}@base", cmd, port, bench.pinning, bench.workdir, tree=args.baseline))
    return started


def measure(bench: run.Bench, targets: dict[str, servers.Server], size: int,
            concurrency: int) -> dict[str, float]:
    """Median CPU microseconds per request of each target over the rounds."""
    text, body, script = run.request_for(bench, size)
    costs: dict[str, list[float]] = {name: [] for name in targets}
    for name, server in targets.items():
        loadgen.probe(run.url_of(server), body, text)
        bench.load(run.url_of(server), body, script, concurrency, bench.warmup)
    for turn in range(bench.rounds):
        for name in list(targets) if turn % 2 == 0 else list(targets)[::-1]:
            server = targets[name]
            before = cpu_seconds(server.pid)
            got = bench.load(run.url_of(server), body, script, concurrency, bench.duration)
            spent = cpu_seconds(server.pid) - before
            if got.bad or got.socket_errors:
                sys.exit(f"{name}: {got.bad} bad answers, {got.socket_errors} socket errors")
            costs[name].append(spent / max(got.requests, 1) * 1e6)
    return {name: statistics.median(values) for name, values in costs.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    run.add_target_args(p)
    p.add_argument("--sizes", type=run.int_list, default=[100])
    p.add_argument("--concurrency", type=run.int_list, default=[1, 64])
    p.add_argument("--duration", type=int, default=3, help="seconds per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--baseline", type=Path, help="another checkout to serve as @base")
    args = p.parse_args(argv)
    run.check_target_args(p, args)
    run.choose_tool("wrk")
    pinning = servers.choose_pinning(True)
    if not pinning.server:
        sys.exit("needs 2 CPUs: one for the servers, the rest for wrk")
    with tempfile.TemporaryDirectory(prefix="aiges-cpu-") as tmp, \
            contextlib.ExitStack() as stack:
        bench = run.Bench("wrk", pinning, args.duration, args.warmup, Path(tmp), args.rounds)
        targets = start(stack, bench, args)
        rows = [(size, c, measure(bench, targets, size, c))
                for size in args.sizes for c in args.concurrency]
    print(f"server CPU microseconds per request (median of {args.rounds} x "
          f"{args.duration}s; {pinning.describe()})")
    for size, c, costs in rows:
        line = "  ".join(f"{name} {us:.1f}" for name, us in costs.items())
        ceiling = costs.get("ceiling")
        ratios = "".join(f"  {name}: {ceiling / us:.2f}x of ceiling" for name, us in
                         costs.items() if ceiling and name not in run.REFERENCES)
        print(f"{size:>8} B c={c:<3} {line}{ratios}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
