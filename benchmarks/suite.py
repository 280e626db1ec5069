"""The benchmark suite: every figure of the README in one run (`make bench`).

    .venv/bin/python benchmarks/suite.py [--quick] [--json benchmarks/results/suite.json]

1. once requests (run.py): aiges with the C echo engine, aiges with the Python echo
   engine, the ceiling echo (uvloop + httptools + orjson) and the bare aiohttp echo,
   side by side with wrk, every aiges point as a ratio to both references, payloads of 100 B, 64 KB,
   1 MB and 16 MB at concurrency 1, 8 and 64, with the servers' peak memory (3 rounds
   of 3 s per target, taking turns; 16 MB in one 10 s window each);
2. --workers scaling: aiges with 1 and with 2 workers (unpinned, all cores), 100 B at
   concurrency 64, against bare;
3. streaming sessions (sessions.py): frames/s over WebSocket, sync and async modes;
4. footprint (footprint.py): start-up time and memory per idle session;
5. where the time goes (breakdown.py, stream_breakdown.py): each stage of a 100 B once
   request, and of a 100 B session frame, timed in process, for the C and the Python
   echo engine;
6. paired (paired.py): 100 B at concurrency 1, 8 and 64, each aiges target loaded at
   the same moment as the bare echo and the ceiling echo on one shared core, the
   ratios that a slow spell of the box cannot move.

Each part prints its table as it ends; --json writes them all in one file.
See benchmarks/README.md for how to read them.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
from pathlib import Path

import breakdown
import footprint
import paired
import servers
import sessions
import stream_breakdown

import run

SIZES = [100, 64 * 1024, 1024 * 1024, 16 * 1024 * 1024]
LEVELS = [1, 8, 64]


# A 16 MB request takes a tenth of a second to seconds: short rounds would count a
# handful, and each round's cut-off requests would load the next target's round.
BIG = 16 * 1024 * 1024
BIG_DURATION = 10


def once(args: argparse.Namespace) -> dict:
    levels = ",".join(map(str, args.concurrency))
    small = [s for s in args.sizes if s < BIG]
    argv = ["--sizes", ",".join(map(str, small)), "--concurrency", levels,
            "--duration", str(args.duration), "--rounds", str(args.rounds),
            "--warmup", str(args.warmup)]
    result = _part("once requests", run, argv)
    if BIG in args.sizes:
        argv = ["--sizes", str(BIG), "--concurrency", levels, "--duration",
                str(BIG_DURATION), "--rounds", "1", "--warmup", str(args.warmup)]
        result["big"] = big = _part(f"once requests, 16 MB (one {BIG_DURATION} s window "
                                    "each)", run, argv)
        result["exit_status"] = result["exit_status"] or big["exit_status"]
    return result


def workers(args: argparse.Namespace) -> dict:
    """aiges --workers 1 and 2 against bare, every process free to use every core."""
    tool = run.choose_tool("auto")
    bench = run.Bench(tool, servers.Pinning(), args.duration, args.warmup, Path(args.tmp),
                      args.rounds)
    with contextlib.ExitStack() as stack:
        targets = {}
        for count in (1, 2):
            port = servers.free_port()
            cmd = servers.aiges_command(args.engine.resolve(), port, None,
                                        ("--workers", str(count)))
            targets[f"aiges-w{count}"] = stack.enter_context(
                servers.running(f"aiges-w{count}", cmd, port, bench.pinning, bench.workdir))
        port = servers.free_port()
        targets["bare"] = stack.enter_context(servers.running(
            "bare", servers.bare_command(port), port, bench.pinning, bench.workdir))
        points = run.run_points(bench, targets, [100], [64])
    print("\n== --workers scaling (unpinned: servers and wrk share all cores) ==")
    print(run.render(points))
    return run.to_json(points, bench, args)


def streaming(args: argparse.Namespace) -> dict:
    argv = ["--quick"] if args.quick else ["--repeat", "1"]
    return _part("streaming sessions", sessions, argv)


def resources(args: argparse.Namespace) -> dict:
    argv = ["--sessions", "50" if args.quick else "200"]
    return _part("start-up and idle sessions", footprint, argv)


def stages(args: argparse.Namespace) -> dict:
    argv = ["--repeat", "5"] if args.quick else []
    return _part("where a once request's time goes (in process)", breakdown, argv)


def frame_stages(args: argparse.Namespace) -> dict:
    argv = ["--repeat", "5"] if args.quick else []
    return _part("where a session frame's time goes (in process)", stream_breakdown, argv)


def pairs(args: argparse.Namespace) -> dict:
    argv = ["--duration", "1", "--rounds", "1", "--warmup", "0"] if args.quick else \
        ["--duration", "5", "--rounds", "3"]
    return _part("paired: aiges and the references loaded at once on one core", paired,
                 argv)


def _part(title: str, module, argv: list[str]) -> dict:
    print(f"\n== {title} ==", flush=True)
    out = Path(tempfile.mkstemp(suffix=".json")[1])
    try:
        status = module.main([*argv, "--json", str(out)])
        result = json.loads(out.read_text()) if out.stat().st_size else {}
    finally:
        out.unlink(missing_ok=True)
    sys.stdout.flush()
    return {"exit_status": status, **({"result": result} if result else {})}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: 100 B and 64 KB, 1 s per point, short sessions")
    p.add_argument("--duration", type=int, default=3, help="seconds per round")
    p.add_argument("--rounds", type=int, default=3,
                   help="rounds per target and point, the targets taking turns")
    p.add_argument("--warmup", type=int, default=2, help="seconds discarded before each")
    p.add_argument("--engine", type=Path,
                   default=servers.REPO / "build" / "native_examples" / "libecho.so")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write all results here")
    args = p.parse_args(argv)
    args.sizes, args.concurrency = (SIZES[:2], LEVELS) if args.quick else (SIZES, LEVELS)
    args.instances = None  # aiges's own default
    if args.quick:
        args.duration, args.warmup, args.rounds = 1, 0, 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    with tempfile.TemporaryDirectory(prefix="aiges-suite-") as tmp:
        args.tmp = tmp
        results = {"once": once(args), "workers": workers(args),
                   "sessions": streaming(args), "footprint": resources(args),
                   "breakdown": stages(args), "frame_breakdown": frame_stages(args),
                   "paired": pairs(args)}
    results["meta"] = {"cpus": len(os.sched_getaffinity(0)), "quick": args.quick}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    failed = [name for name, part in results.items()
              if isinstance(part, dict) and part.get("exit_status")]
    if failed:
        print(f"FAILED parts: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
