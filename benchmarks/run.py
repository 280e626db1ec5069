"""aiges against the bare aiohttp echo and the ceiling echo, same requests, side by side.

    .venv/bin/python benchmarks/run.py [--sizes 100,65536] [--concurrency 1,64]
                                       [--duration 10] [--warmup 2] [--json out.json]

Starts both servers itself, probes each for a correct echo, then measures every
(size, concurrency) point on both targets back to back and prints one table.
See benchmarks/README.md for what the numbers mean.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
import loadgen
import servers

# aiges serving the C echo engine and the Python one, then the reference echoes: the
# ceiling (ceiling_echo.py: uvloop + httptools + orjson, nothing else) and the bare
# aiohttp echo (always last). Every other target's ratio is against bare, and aiges's
# also against the ceiling. "protocol" (protocol_echo.py, the echo without aiohttp's
# web layer) only when asked for.
TARGETS = ("aiges", "aiges-py", "protocol", "ceiling", "bare")
DEFAULT_TARGETS = ["aiges", "aiges-py", "ceiling", "bare"]
REFERENCES = ("protocol", "ceiling", "bare")
WRK_MISSING = ("wrk not found: install it with `apt-get install -y wrk` (Debian/Ubuntu). "
               "Falling back to the built-in Python load generator.")
PYTHON_NOTE = ("note: Python load generator (aiohttp) in use. It needs about as much CPU "
               "per request as the servers, and on a 2-core box it competes for the same "
               "cores, so these numbers are client-bound and understate the gap.")


@dataclass(frozen=True)
class Bench:
    tool: str  # "wrk" or "python"
    pinning: servers.Pinning
    duration: int  # seconds per round
    warmup: int
    workdir: Path
    rounds: int = 1  # measurements per target and point, the targets taking turns

    def load(self, url: str, body: bytes, script: Path, concurrency: int,
             seconds: int) -> loadgen.Measurement:
        if self.tool == "wrk":
            prefix = self.pinning.prefix(self.pinning.client)
            return loadgen.run_wrk(url, script, concurrency, seconds, prefix)
        return loadgen.run_python(url, body, concurrency, seconds, self.pinning.client)


def int_list(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"want positive integers, got {text!r}")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_target_args(p)
    p.add_argument("--sizes", type=int_list, default=[100],
                   help="payload text sizes in bytes, before base64 (default 100)")
    p.add_argument("--concurrency", type=int_list, default=[1, 64],
                   help="open connections (default 1,64)")
    p.add_argument("--duration", type=int, default=10,
                   help="seconds measured per round (default 10)")
    p.add_argument("--rounds", type=int, default=1,
                   help="rounds per target and point, the targets taking turns (default 1)")
    p.add_argument("--warmup", type=int, default=2, help="seconds discarded before each")
    p.add_argument("--instances", type=int, help="aiges --instances (default: aiges's own)")
    p.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    p.add_argument("--no-pin", action="store_true",
                   help="do not pin server and load generator to separate CPUs")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    args = p.parse_args(argv)
    if args.duration < 1 or args.warmup < 0 or args.rounds < 1:
        p.error("--duration and --rounds must be >= 1 and --warmup >= 0 (whole seconds: "
                "wrk's unit)")
    check_target_args(p, args)
    return args


def add_target_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", type=Path,
                   default=servers.REPO / "build" / "native_examples" / "libecho.so",
                   help="C echo engine for aiges (default: build/native_examples/libecho.so)")
    p.add_argument("--py-engine", type=Path,
                   default=servers.REPO / "python_examples" / "echo" / "wrapper.py",
                   help="Python echo engine for aiges-py (default: python_examples/echo)")
    p.add_argument("--targets", type=target_list, default=DEFAULT_TARGETS,
                   help="comma list of " + ", ".join(TARGETS) + " (bare is always added)")
    p.add_argument("--tree", type=Path, default=servers.REPO,
                   help="the checkout whose aiges the aiges targets run, to measure another "
                        "build with these scripts (default: this one)")


def target_list(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = set(names) - set(TARGETS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown targets {sorted(unknown)}; have {TARGETS}")
    return [t for t in TARGETS if t in names or t == "bare"]


def check_target_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not args.engine.is_file():
        p.error(f"engine not found: {args.engine}\n  build it with `cmake -S . -B build && "
                "cmake --build build`, or pass --engine PATH")
    if "aiges-py" in args.targets and not args.py_engine.is_file():
        p.error(f"Python engine not found: {args.py_engine}")


def choose_tool(wanted: str) -> str:
    have_wrk = shutil.which("wrk") is not None
    if wanted == "wrk" and not have_wrk:
        sys.exit("wrk not found: install it with `apt-get install -y wrk`")
    if wanted == "auto" and not have_wrk:
        print(WRK_MISSING, file=sys.stderr)
    return "wrk" if have_wrk and wanted != "python" else "python"


def url_of(server: servers.Server) -> str:
    return server.base + "/v1/svcName"


def request_for(bench: Bench, size: int) -> tuple[str, bytes, Path]:
    """A point's payload text, the request body, and wrk's script sending it."""
    text = loadgen.payload_text(size)
    body = loadgen.request_body(text)
    return text, body, loadgen.write_wrk_script(bench.workdir / f"post-{size}.lua", body)


def run_points(bench: Bench, targets: dict[str, servers.Server],
               sizes: list[int], levels: list[int]) -> list[dict]:
    """Each point: every target probed and warmed up, then measured ``bench.rounds``
    times, the targets taking turns, and who goes first swapping every round and point,
    so that slow spells (thermal, neighbours on a shared box) land on every target
    alike instead of on whichever had the one window they came in."""
    points = []
    names = list(targets)
    turn = 0
    for size, concurrency in ((s, c) for s in sizes for c in levels):
        text, body, script = request_for(bench, size)
        rounds: dict[str, list[loadgen.Measurement]] = {name: [] for name in names}
        for name in names:
            url = url_of(targets[name])
            loadgen.probe(url, body, text)
            if bench.warmup:
                bench.load(url, body, script, concurrency, bench.warmup)
        print(f"  size={size} c={concurrency}: {bench.warmup}s warm-up each, then "
              f"{bench.rounds} x {bench.duration}s per target, taking turns",
              file=sys.stderr, flush=True)
        for _ in range(bench.rounds):
            for name in names if turn % 2 == 0 else names[::-1]:
                rounds[name].append(bench.load(url_of(targets[name]), body, script,
                                               concurrency, bench.duration))
            turn += 1
        points.append({"size": size, "concurrency": concurrency,
                       "rss_mb": {name: servers.peak_rss_mb(targets[name].pid)
                                  for name in names},
                       **{name: loadgen.Measurement.merged(rounds[name]) for name in names}})
    return points


def names_of(points: list[dict]) -> list[str]:
    return [n for n in points[0] if n not in ("size", "concurrency", "rss_mb")] if points else []


def ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def render(points: list[dict]) -> str:
    head = (f"{'size B':>8} {'conc':>5}  {'target':<14} {'req/s':>10} {'p50 ms':>9} "
            f"{'p99 ms':>9} {'bad':>6} {'sock err':>8} {'peak MB':>8}")
    lines = [head, "-" * len(head)]
    names = names_of(points)
    for pt in points:
        for name in names:
            m: loadgen.Measurement = pt[name]
            lines.append(f"{pt['size']:>8} {pt['concurrency']:>5}  {name:<14} {m.rps:>10.1f} "
                         f"{m.p50_ms:>9.3f} {m.p99_ms:>9.3f} {m.bad:>6} {m.socket_errors:>8} "
                         f"{pt['rss_mb'][name]:>8.0f}")
        for name, ref in ratio_pairs(names):
            a, b = pt[name], pt[ref]
            lines.append(f"{'':>8} {'':>5}  {name + '/' + ref:<14} "
                         f"{fmt_ratio(ratio(a.rps, b.rps)):>10} "
                         f"{fmt_ratio(ratio(a.p50_ms, b.p50_ms)):>9}")
        lines.append("")
    return "\n".join(lines)


def ratio_pairs(names: list[str]) -> list[tuple[str, str]]:
    """(target, reference) of every ratio shown: each target against bare, and aiges's
    targets against the ceiling too when it ran."""
    pairs = [(name, "bare") for name in names if name != "bare"]
    if "ceiling" in names:
        pairs += [(name, "ceiling") for name in names if name not in REFERENCES]
    return pairs


def to_json(points: list[dict], bench: Bench, args: argparse.Namespace) -> dict:
    rows = []
    names = names_of(points)
    for pt in points:
        ratios: dict = {"ratio": {}, "ratio_ceiling": {}}
        for name, ref in ratio_pairs(names):
            ratios["ratio" if ref == "bare" else "ratio_ceiling"][name] = {
                "rps": ratio(pt[name].rps, pt[ref].rps),
                "p50": ratio(pt[name].p50_ms, pt[ref].p50_ms)}
        rows.append({"size": pt["size"], "concurrency": pt["concurrency"],
                     **{name: {**asdict(pt[name]), "rps": pt[name].rps,
                               "peak_rss_mb": pt["rss_mb"][name]} for name in names},
                     **ratios})
    meta = {"loadgen": bench.tool, "pinning": bench.pinning.describe(),
            "duration_s": bench.duration, "rounds": bench.rounds, "warmup_s": bench.warmup,
            "engine": str(args.engine), "instances": args.instances,
            "python": platform.python_version(), "aiohttp": aiohttp.__version__,
            "machine": platform.machine(), "cpus": len(os.sched_getaffinity(0))}
    return {"meta": meta, "points": rows}


def start_targets(stack: contextlib.ExitStack, bench: Bench,
                  args: argparse.Namespace) -> dict[str, servers.Server]:
    engines = {"aiges": args.engine, "aiges-py": args.py_engine}
    started = {}
    for name in args.targets:
        port = servers.free_port()
        if name in REFERENCES:
            cmd = servers.echo_command(name, port)
        else:
            cmd = servers.aiges_command(engines[name].resolve(), port, args.instances)
        tree = servers.REPO if name in REFERENCES else args.tree.resolve()
        started[name] = stack.enter_context(servers.running(name, cmd, port, bench.pinning,
                                                            bench.workdir, tree))
    return started


def _exit_on_term(_signum, _frame) -> None:
    # SystemExit unwinds through the ExitStack, so the servers are stopped.
    raise SystemExit(128 + signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_term)
    tool = choose_tool(args.loadgen)
    pinning = servers.choose_pinning(not args.no_pin)
    with tempfile.TemporaryDirectory(prefix="aiges-bench-") as tmp, \
            contextlib.ExitStack() as stack:
        bench = Bench(tool, pinning, args.duration, args.warmup, Path(tmp), args.rounds)
        try:
            targets = start_targets(stack, bench, args)
            points = run_points(bench, targets, args.sizes, args.concurrency)
        except KeyboardInterrupt:
            print("interrupted; stopping the servers", file=sys.stderr)
            return 130
    print(f"aiges vs bare echo: {tool}, {args.rounds} x {args.duration}s per target and "
          f"point, taking turns, after {args.warmup}s warm-up; pinning: {pinning.describe()}")
    if tool == "python":
        print(PYTHON_NOTE)
    print(render(points))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(to_json(points, bench, args), indent=2) + "\n")
    failed = sum(pt[n].bad + pt[n].socket_errors for pt in points for n in names_of(points))
    if failed:
        print(f"FAILED: {failed} requests were not 200 with code 0, or hit socket errors",
              file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
