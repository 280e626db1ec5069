"""aiges and the bare echo loaded at the same moment, sharing one core.

    .venv/bin/python benchmarks/paired.py [--sizes 100] [--concurrency 1,8,64]
                                          [--duration 5] [--rounds 3] [--json out.json]

run.py measures the targets one after the other; on a shared box whose speed moves
from one second to the next (a VM's neighbours), two windows a few seconds apart
can differ by 30% for the same server, and so can a ratio. Here each aiges target
and the bare echo run at once, both pinned to the server CPU, each driven by its
own wrk on the client CPUs: the scheduler gives both loaded servers equal time,
so the ratio of their req/s is the ratio of what a request costs each, and a slow
spell slows both alike. Absolute req/s are about half of run.py's (each server
has half a core); only the ratios are the result.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import loadgen
import servers

import run


def measure_pair(bench: run.Bench, target: servers.Server, bare: servers.Server,
                 size: int, concurrency: int) -> tuple[loadgen.Measurement, ...]:
    """(target, bare), each merged over the rounds; both loaded at once every round."""
    text, body, script = run.request_for(bench, size)
    urls = [run.url_of(s) for s in (target, bare)]
    for url in urls:
        loadgen.probe(url, body, text)
    print(f"  {target.name} with bare, size={size} c={concurrency}: {bench.warmup}s "
          f"warm-up, {bench.rounds} x {bench.duration}s", file=sys.stderr, flush=True)
    with ThreadPoolExecutor(2) as pool:
        def both(seconds: int) -> list[loadgen.Measurement]:
            running = [pool.submit(bench.load, url, body, script, concurrency, seconds)
                       for url in urls]
            return [done.result() for done in running]

        if bench.warmup:
            both(bench.warmup)
        rounds = [both(bench.duration) for _ in range(bench.rounds)]
    return tuple(loadgen.Measurement.merged(list(r)) for r in zip(*rounds, strict=True))


def run_pairs(bench: run.Bench, targets: dict[str, servers.Server], sizes: list[int],
              levels: list[int]) -> list[dict]:
    rows = []
    for size in sizes:
        for concurrency in levels:
            for name, server in targets.items():
                if name == "bare":
                    continue
                mine, bare = measure_pair(bench, server, targets["bare"], size, concurrency)
                rows.append({"size": size, "concurrency": concurrency, "target": name,
                             name: mine, "bare": bare})
    return rows


def render(rows: list[dict]) -> str:
    head = (f"{'size B':>8} {'conc':>5}  {'target':<10} {'req/s':>9} {'bare req/s':>11} "
            f"{'ratio':>7} {'p50 ratio':>10} {'bad':>5}")
    lines = [head, "-" * len(head)]
    for row in rows:
        mine, bare = row[row["target"]], row["bare"]
        bad = sum(m.bad + m.socket_errors for m in (mine, bare))
        lines.append(f"{row['size']:>8} {row['concurrency']:>5}  {row['target']:<10} "
                     f"{mine.rps:>9.1f} {bare.rps:>11.1f} "
                     f"{run.fmt_ratio(run.ratio(mine.rps, bare.rps)):>7} "
                     f"{run.fmt_ratio(run.ratio(mine.p50_ms, bare.p50_ms)):>10} {bad:>5}")
    return "\n".join(lines)


def to_json(rows: list[dict], bench: run.Bench) -> dict:
    points = []
    for row in rows:
        mine, bare = row[row["target"]], row["bare"]
        points.append({"size": row["size"], "concurrency": row["concurrency"],
                       "target": row["target"], "rps": mine.rps, "bare_rps": bare.rps,
                       "p50_ms": mine.p50_ms, "bare_p50_ms": bare.p50_ms,
                       "ratio": {"rps": run.ratio(mine.rps, bare.rps),
                                 "p50": run.ratio(mine.p50_ms, bare.p50_ms)}})
    return {"meta": {"pinning": bench.pinning.describe(), "duration_s": bench.duration,
                     "rounds": bench.rounds, "warmup_s": bench.warmup,
                     "mode": "paired: target and bare loaded at once on one core"},
            "points": points}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    run.add_target_args(p)
    p.add_argument("--sizes", type=run.int_list, default=[100])
    p.add_argument("--concurrency", type=run.int_list, default=[1, 8, 64])
    p.add_argument("--duration", type=int, default=5, help="seconds per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--instances", type=int, help="aiges --instances (default: aiges's own)")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    args = p.parse_args(argv)
    if args.duration < 1 or args.rounds < 1 or args.warmup < 0:
        p.error("--duration and --rounds must be >= 1, --warmup >= 0")
    run.check_target_args(p, args)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    run.choose_tool("wrk")  # two Python clients at once would measure each other
    pinning = servers.choose_pinning(True)
    if not pinning.server:
        sys.exit("paired runs need 2 CPUs: one for both servers, the rest for wrk")
    with tempfile.TemporaryDirectory(prefix="aiges-paired-") as tmp, \
            contextlib.ExitStack() as stack:
        bench = run.Bench("wrk", pinning, args.duration, args.warmup, Path(tmp), args.rounds)
        targets = run.start_targets(stack, bench, args)
        rows = run_pairs(bench, targets, args.sizes, args.concurrency)
    print(f"paired: each target loaded at the same time as bare, both on "
          f"{pinning.describe()}; {args.rounds} x {args.duration}s")
    print(render(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(to_json(rows, bench), indent=2) + "\n")
    bad = sum(m.bad + m.socket_errors for row in rows for m in (row[row["target"]], row["bare"]))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
