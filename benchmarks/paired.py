"""aiges and the reference echoes loaded at the same moment, sharing one core.

    .venv/bin/python benchmarks/paired.py [--sizes 100] [--concurrency 1,8,64]
                                          [--duration 5] [--rounds 3] [--json out.json]

run.py measures the targets one after the other; on a shared box whose speed moves
from one second to the next (a VM's neighbours), two windows a few seconds apart
can differ by 30% for the same server, and so can a ratio. Here each aiges target,
the bare aiohttp echo and the ceiling echo (ceiling_echo.py, uvloop + httptools;
left out with --targets aiges,bare) run at once, all pinned to the server CPU, each
driven by its own wrk on the client CPUs: the scheduler gives every loaded server
equal time, so the ratio of their req/s is the ratio of what a request costs each,
and a slow spell slows all alike. Absolute req/s are a half or a third of run.py's
(each server has that share of a core); only the ratios are the result.
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


REFERENCES = ("bare", "ceiling")


def measure_group(bench: run.Bench, group: list[servers.Server], size: int,
                  concurrency: int) -> tuple[loadgen.Measurement, ...]:
    """One measurement per server, each merged over the rounds; all loaded at once
    every round."""
    text, body, script = run.request_for(bench, size)
    urls = [run.url_of(s) for s in group]
    for url in urls:
        loadgen.probe(url, body, text)
    print(f"  {' with '.join(s.name for s in group)}, size={size} c={concurrency}: "
          f"{bench.warmup}s warm-up, {bench.rounds} x {bench.duration}s",
          file=sys.stderr, flush=True)
    with ThreadPoolExecutor(len(urls)) as pool:
        def together(seconds: int) -> list[loadgen.Measurement]:
            running = [pool.submit(bench.load, url, body, script, concurrency, seconds)
                       for url in urls]
            return [done.result() for done in running]

        if bench.warmup:
            together(bench.warmup)
        rounds = [together(bench.duration) for _ in range(bench.rounds)]
    return tuple(loadgen.Measurement.merged(list(r)) for r in zip(*rounds, strict=True))


def run_pairs(bench: run.Bench, targets: dict[str, servers.Server], sizes: list[int],
              levels: list[int]) -> list[dict]:
    refs = [name for name in REFERENCES if name in targets]
    rows = []
    for size in sizes:
        for concurrency in levels:
            for name, server in targets.items():
                if name in refs:
                    continue
                measured = measure_group(bench, [server, *(targets[r] for r in refs)],
                                         size, concurrency)
                rows.append({"size": size, "concurrency": concurrency, "target": name,
                             **dict(zip([name, *refs], measured, strict=True))})
    return rows


def render(rows: list[dict]) -> str:
    head = (f"{'size B':>8} {'conc':>5}  {'target':<10} {'req/s':>9} {'reference':<9} "
            f"{'ref req/s':>10} {'ratio':>7} {'p50 ratio':>10} {'bad':>5}")
    lines = [head, "-" * len(head)]
    for row in rows:
        mine = row[row["target"]]
        for ref in (r for r in REFERENCES if r in row):
            other = row[ref]
            bad = sum(m.bad + m.socket_errors for m in (mine, other))
            lines.append(f"{row['size']:>8} {row['concurrency']:>5}  {row['target']:<10} "
                         f"{mine.rps:>9.1f} {ref:<9} {other.rps:>10.1f} "
                         f"{run.fmt_ratio(run.ratio(mine.rps, other.rps)):>7} "
                         f"{run.fmt_ratio(run.ratio(mine.p50_ms, other.p50_ms)):>10} {bad:>5}")
    return "\n".join(lines)


def to_json(rows: list[dict], bench: run.Bench) -> dict:
    points = []
    for row in rows:
        mine = row[row["target"]]
        point = {"size": row["size"], "concurrency": row["concurrency"],
                 "target": row["target"], "rps": mine.rps, "p50_ms": mine.p50_ms}
        for ref in (r for r in REFERENCES if r in row):
            other, key = row[ref], "" if ref == "bare" else "_" + ref
            point.update({f"{ref}_rps": other.rps, f"{ref}_p50_ms": other.p50_ms,
                          f"ratio{key}": {"rps": run.ratio(mine.rps, other.rps),
                                          "p50": run.ratio(mine.p50_ms, other.p50_ms)}})
        points.append(point)
    return {"meta": {"pinning": bench.pinning.describe(), "duration_s": bench.duration,
                     "rounds": bench.rounds, "warmup_s": bench.warmup,
                     "mode": "paired: each target and the references loaded at once on "
                             "one core"},
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
    print(f"paired: each target loaded at the same time as the references, all on "
          f"{pinning.describe()}; {args.rounds} x {args.duration}s")
    print(render(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(to_json(rows, bench), indent=2) + "\n")
    bad = sum(m.bad + m.socket_errors for row in rows
              for m in (row[n] for n in (row["target"], *REFERENCES) if n in row))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
