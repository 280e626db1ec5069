"""aiges WebSocket sessions against the bare aiohttp echo, side by side.

    .venv/bin/python benchmarks/sessions.py [--quick] [--json out.json]

Starts aiges (sync, and again with --async-mode; the C echo engine, and with
--engines c,py the Python one too) and the bare echo server, probes each for a
correct echo session, then measures frames/s through one session (ping-pong and
pipelined), through many concurrent sessions (ping-pong and pipelined), the rate of
short sessions, and the HTTP session API's frames/s, on every target in turns.
``--issue20`` runs the scenarios of issue 20; ``--baseline DIR`` adds the aiges of
another checkout (target "before"), measured in the same turns. See
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import sys
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import aiohttp
import servers
import sessionapi
import wsload
from run import fmt_ratio, int_list, ratio

MODES = ("sync", "async")
ENGINES = ("c", "py")
SCENARIOS = ("pingpong", "pipelined", "sessions", "sessions-pipelined", "short", "http")
# The references: the bare echo, and in asyncMode's WebSocket rows the bare echo whose
# results come back through a thread (handoff_echo.py), as an asyncMode engine's do.
REFERENCES = ("handoff", "bare")
CLIENT_NOTE = ("client: Python (aiohttp on uvloop, one event loop) on CPU {cpus}, where no "
               "other part of the benchmark runs; it is itself a limit: 'cli cpu' near 100% "
               "means a number is client-bound (most likely for bare), which understates "
               "the gap.")


@dataclass(frozen=True)
class Point:
    """One row group of the table: a scenario at one concurrency, in one mode."""
    mode: str
    scenario: str
    plan: wsload.Plan
    http: bool = False   # the HTTP session API (bare: once requests of the same frames)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--engine", type=Path,
                   default=servers.REPO / "build" / "native_examples" / "libecho.so",
                   help="echo engine for aiges (default: build/native_examples/libecho.so)")
    p.add_argument("--py-engine", type=Path,
                   default=servers.REPO / "python_examples" / "echo" / "wrapper.py",
                   help="the Python echo engine (target aiges-py, with --engines c,py)")
    p.add_argument("--engines", default="c",
                   help="c (the --engine), py (the --py-engine), or c,py (default c)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS),
                   help=f"which to run, of {','.join(SCENARIOS)} (default all)")
    p.add_argument("--baseline", type=Path, metavar="DIR",
                   help="also run the aiges of this checkout (C engine), target 'before'")
    p.add_argument("--burst-concurrency", type=int_list, default=[16],
                   help="concurrent pipelined sessions (default 16)")
    p.add_argument("--burst-frames", type=int, default=500,
                   help="frames per pipelined session with many sessions (default 500)")
    p.add_argument("--http-frames", type=int, default=1000,
                   help="frames of the HTTP session API's one session (default 1000)")
    p.add_argument("--issue20", action="store_true",
                   help="issue 20's points: 1 session x10000 ping-pong and pipelined, "
                        "16 x 500 pipelined, HTTP session API; both engines")
    p.add_argument("--frames", type=int, default=2000,
                   help="frames in the one-session scenarios (default 2000)")
    p.add_argument("--size", type=int, default=100,
                   help="payload text bytes per frame, before base64 (default 100)")
    p.add_argument("--concurrency", type=int_list, default=[1, 16, 64],
                   help="concurrent sessions (default 1,16,64)")
    p.add_argument("--session-frames", type=int, default=200,
                   help="frames per session with many sessions (default 200)")
    p.add_argument("--short-frames", type=int, default=3,
                   help="frames per short session (default 3)")
    p.add_argument("--short-sessions", type=int, default=600,
                   help="short sessions per point, shared among the workers (default 600)")
    p.add_argument("--modes", default="sync,async",
                   help="aiges modes: sync, async (--async-mode), or both (default)")
    p.add_argument("--instances", type=int,
                   help="aiges --instances (default: the highest --concurrency)")
    p.add_argument("--repeat", type=int, default=3,
                   help="runs per point; the table shows the median (default 3)")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="seconds to wait for any one server frame (default 10)")
    p.add_argument("--no-pin", action="store_true",
                   help="do not pin the servers and the client to separate CPUs")
    p.add_argument("--quick", action="store_true",
                   help="a small configuration, for a smoke check (a few seconds)")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    args = p.parse_args(argv)
    return check_args(p, args)


def _names(text: str) -> list[str]:
    return [m.strip() for m in text.split(",") if m.strip()]


def check_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    if args.issue20:
        args.frames, args.engines = 10000, "c,py"
        args.scenarios = "pingpong,pipelined,sessions-pipelined,http"
        args.concurrency = [1]
    if args.quick:
        args.frames, args.session_frames, args.short_sessions = 200, 20, 40
        args.concurrency, args.repeat = [1, 4], 1
        args.burst_concurrency, args.burst_frames, args.http_frames = [4], 50, 50
    args.modes, args.engines = _names(args.modes), _names(args.engines)
    args.scenarios = _names(args.scenarios)
    if not args.modes or set(args.modes) - set(MODES):
        p.error(f"--modes takes sync, async or both, got {args.modes}")
    if not args.engines or set(args.engines) - set(ENGINES):
        p.error(f"--engines takes c, py or both, got {args.engines}")
    if not args.scenarios or set(args.scenarios) - set(SCENARIOS):
        p.error(f"--scenarios takes some of {','.join(SCENARIOS)}, got {args.scenarios}")
    if min(args.frames, args.size, args.session_frames, args.short_frames,
           args.short_sessions, args.repeat) < 1:
        p.error("--frames, --size, --session-frames, --short-frames, --short-sessions and "
                "--repeat must be >= 1")
    most = max(args.concurrency + args.burst_concurrency)
    if args.instances is not None and args.instances < most:
        # Fewer instances would queue sessions, measuring the wait, not the path.
        p.error(f"--instances must be >= the highest concurrency ({most})")
    args.instances = args.instances or most
    if not args.engine.is_file():
        p.error(f"engine not found: {args.engine}\n  build it with `cmake -S . -B build && "
                "cmake --build build`, or pass --engine PATH")
    return args


def plan_points(args: argparse.Namespace) -> list[Point]:
    base = wsload.Plan(concurrency=1, frames=args.frames, size=args.size, timeout=args.timeout)
    wanted = set(args.scenarios)
    points = []
    for mode in args.modes:
        if "pingpong" in wanted:
            points.append(Point(mode, f"1 session ping-pong x{args.frames}", base))
        if "pipelined" in wanted:
            points.append(Point(mode, f"1 session pipelined x{args.frames}",
                                replace(base, pipelined=True)))
        if "sessions" in wanted:
            for c in args.concurrency:
                points.append(Point(mode, f"sessions ping-pong x{args.session_frames}",
                                    replace(base, concurrency=c, frames=args.session_frames)))
        if "sessions-pipelined" in wanted:
            for c in args.burst_concurrency:
                points.append(Point(mode, f"sessions pipelined x{args.burst_frames}",
                                    replace(base, concurrency=c, frames=args.burst_frames,
                                            pipelined=True)))
        if "short" in wanted:
            for c in args.concurrency:
                rounds = -(-args.short_sessions // c)  # ceil: at least the asked-for total
                points.append(Point(mode, f"short sessions x{args.short_frames}",
                                    replace(base, concurrency=c, frames=args.short_frames,
                                            rounds=rounds)))
        if "http" in wanted:
            points.append(Point(mode, f"HTTP session API x{args.http_frames}",
                                replace(base, frames=args.http_frames), http=True))
    return points


def warm_up(server: servers.Server, plan: wsload.Plan, instances: int) -> None:
    """Discarded runs (one long session, a burst of short ones, a few HTTP session
    frames), also checked for errors."""
    url = server.base + "/v1/svcName"
    wsload.probe(url)
    burst = min(8, instances)
    for warm in (replace(plan, concurrency=1, frames=min(500, plan.frames), rounds=1),
                 replace(plan, concurrency=burst, frames=3, rounds=32 // burst)):
        result = wsload.run(url, warm)
        if result.errors:
            raise RuntimeError(f"{server.name}: {result.errors} errors while warming up: "
                               f"{result.first_error}")
    if server.name == "handoff":
        return  # no HTTP session API (sessions.py runs none against it)
    warm = replace(plan, concurrency=1, frames=200, rounds=1)
    result = sessionapi.run(url, warm, bare=server.name == "bare")
    if result.errors:
        raise RuntimeError(f"{server.name}: {result.errors} errors while warming up the "
                           f"HTTP sessions: {result.first_error}")


@dataclass
class Bench:
    targets: dict[str, servers.Server]
    names: tuple[str, ...]   # the targets of each row: aiges, aiges-py, before, bare
    instances: int
    repeat: int
    warmed: set[str] = field(default_factory=set)

    def names_for(self, point: Point) -> tuple[str, ...]:
        if point.mode == "async" and not point.http and "handoff" in self.targets:
            return (*self.names[:-1], "handoff", self.names[-1])
        return self.names

    def once(self, name: str, point: Point, run: int) -> wsload.Result:
        server = self.targets[name if name in REFERENCES else f"{name}-{point.mode}"]
        if server.name not in self.warmed:
            warm_up(server, point.plan, self.instances)
            self.warmed.add(server.name)
        print(f"  {point.mode:<5} {name:<8} {point.scenario}, {point.plan.concurrency} at "
              f"once, run {run + 1}/{self.repeat}", file=sys.stderr, flush=True)
        url = server.base + "/v1/svcName"
        if point.http:
            return sessionapi.run(url, point.plan, server.pid, bare=name == "bare")
        return wsload.run(url, point.plan, server.pid)


def measure_all(bench: Bench, points: list[Point]) -> list[dict]:
    rows, turn = [], 0
    for point in points:
        names = bench.names_for(point)
        runs: dict[str, list[wsload.Result]] = {name: [] for name in names}
        for run in range(bench.repeat):
            # Rotate who goes first every time so slow drift (thermal, neighbours)
            # lands on every target alike instead of always on one.
            shift = turn % len(names)
            order = names[shift:] + names[:shift]
            turn += 1
            for name in order:
                runs[name].append(bench.once(name, point, run))
        rows.append({"point": point, "names": names,
                     **{name: combine(runs[name]) for name in names},
                     "spread": {name: spread(runs[name]) for name in names},
                     "ratios": {name: pair_ratio(runs[name], runs["bare"])
                                for name in names if name != "bare"},
                     "to_handoff": {name: pair_ratio(runs[name], runs["handoff"])
                                 for name in names if "handoff" in runs
                                 and name not in REFERENCES}})
    return rows


def pair_ratio(runs: list[wsload.Result], bare: list[wsload.Result]) -> float | None:
    """The median of run-by-run ratios: each run and the bare echo's run of the same
    turn, taken seconds apart, so that a slow spell moves both."""
    each = sorted(ratio(a.fps, b.fps) or 0.0 for a, b in zip(runs, bare, strict=True))
    return each[len(each) // 2] if each else None


def combine(runs: list[wsload.Result]) -> wsload.Result:
    """The median run by frames/s, with the errors of every run: none are dropped."""
    middle = sorted(runs, key=lambda r: r.fps)[len(runs) // 2]
    return replace(middle, errors=sum(r.errors for r in runs),
                   first_error=next((r.first_error for r in runs if r.first_error), ""))


def spread(runs: list[wsload.Result]) -> float | None:
    """(max - min) / median of frames/s over the repeats: how noisy the point was."""
    fps = sorted(r.fps for r in runs)
    median = fps[len(fps) // 2]
    return (fps[-1] - fps[0]) / median if len(fps) > 1 and median else None


def _cpu(result: wsload.Result, share: float) -> str:
    # /proc counts the server's CPU time in 10 ms ticks: over a shorter run the
    # share is noise. The client's own (process_time) is exact, so it is always shown.
    return f"{share:.0%}" if result.seconds >= 0.5 else "-"


def measure_pinned(bench: Bench, points: list[Point], pinning: servers.Pinning) -> list[dict]:
    """Runs the points with this process, the client, on the client CPUs."""
    before = os.sched_getaffinity(0)
    if pinning.client:
        # The servers were pinned by taskset, so this changes nothing for them.
        os.sched_setaffinity(0, pinning.client)
    try:
        return measure_all(bench, points)
    finally:
        os.sched_setaffinity(0, before)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def render(rows: list[dict]) -> str:
    head = (f"{'mode':<5} {'scenario':<28} {'sess':>4}  {'target':<14} {'frames/s':>9} "
            f"{'spread':>6} "
            f"{'sess/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'cli cpu':>7} "
            f"{'srv cpu':>7}")
    lines = [head, "-" * len(head)]
    for row in rows:
        pt: Point = row["point"]
        for name in row["names"]:
            r: wsload.Result = row[name]
            lines.append(f"{pt.mode:<5} {pt.scenario:<28} {pt.plan.concurrency:>4}  {name:<14} "
                         f"{r.fps:>9.0f} {_pct(row['spread'][name]):>6} {r.sps:>8.1f} "
                         f"{r.p50_ms:>8.3f} {r.p99_ms:>8.3f} "
                         f"{r.errors:>6} {r.client_cpu:>7.0%} {_cpu(r, r.server_cpu):>7}")
        b = row["bare"]
        for name in row["names"]:
            if name == "bare":
                continue
            a = row[name]
            lines.append(f"{'':<5} {'':<28} {'':>4}  {name + '/bare':<14} "
                         f"{fmt_ratio(row['ratios'][name]):>9} {'':>6} "
                         f"{fmt_ratio(ratio(a.sps, b.sps)):>8} "
                         f"{fmt_ratio(ratio(a.p50_ms, b.p50_ms)):>8} "
                         f"{fmt_ratio(ratio(a.p99_ms, b.p99_ms)):>8}")
        for name, value in row["to_handoff"].items():
            lines.append(f"{'':<5} {'':<28} {'':>4}  {name + '/handoff':<16}"
                         f"{fmt_ratio(value):>8}")
        lines.append("")
    return "\n".join(lines)


def to_json(rows: list[dict], pinning: servers.Pinning, args: argparse.Namespace) -> dict:
    points = []
    for row in rows:
        pt: Point = row["point"]
        b = row["bare"]
        points.append({
            "mode": pt.mode, "scenario": pt.scenario, "http": pt.http, **asdict(pt.plan),
            **{name: {**asdict(row[name]), "fps": row[name].fps, "sps": row[name].sps,
                      "fps_spread": row["spread"][name]} for name in row["names"]},
            "ratio": {name: {"fps": row["ratios"][name],
                             "fps_of_medians": ratio(row[name].fps, b.fps),
                             "sps": ratio(row[name].sps, b.sps),
                             "p50": ratio(row[name].p50_ms, b.p50_ms),
                             "p99": ratio(row[name].p99_ms, b.p99_ms),
                             **({"fps_to_handoff": row["to_handoff"][name]}
                                if name in row["to_handoff"] else {})}
                      for name in row["names"] if name != "bare"}})
    meta = {"client": "python aiohttp ws_connect on uvloop", "pinning": pinning.describe(),
            "engine": str(args.engine), "py_engine": str(args.py_engine),
            "baseline": str(args.baseline or ""), "instances": args.instances,
            "repeat": args.repeat, "python": platform.python_version(),
            "aiohttp": aiohttp.__version__, "machine": platform.machine(),
            "cpus": len(os.sched_getaffinity(0))}
    return {"meta": meta, "points": points}


def target_names(args: argparse.Namespace) -> tuple[str, ...]:
    names = [{"c": "aiges", "py": "aiges-py"}[e] for e in args.engines]
    return (*names, *(("before",) if args.baseline else ()), "bare")


def start_targets(stack: contextlib.ExitStack, args: argparse.Namespace,
                  pinning: servers.Pinning, workdir: Path) -> dict[str, servers.Server]:
    engines = {"aiges": (args.engine, servers.REPO), "aiges-py": (args.py_engine, servers.REPO),
               "before": (args.engine, args.baseline)}
    commands = {}
    for name in target_names(args)[:-1]:
        engine, tree = engines[name]
        for mode in args.modes:
            port = servers.free_port()
            # The loader hands every session a callback: the echo engine pushes through
            # it unless told push=false; --async-mode stops the reads.
            config = workdir / f"{name}-{mode}.toml"
            # maxSessions = 0: sessions may take every instance (no one-shot traffic here).
            config.write_text(f'[fc]\nmaxSessions = 0\n[wrapper]\n'
                              f'push = "{"true" if mode == "async" else "false"}"\n')
            extra = ("-c", str(config)) + (("--async-mode",) if mode == "async" else ())
            commands[f"{name}-{mode}"] = (servers.aiges_command(
                engine.resolve(), port, args.instances, extra), port, tree.resolve())
    if "async" in args.modes and set(args.scenarios) - {"http"}:
        port = servers.free_port()
        commands["handoff"] = (servers.echo_command("handoff", port), port, servers.REPO)
    port = servers.free_port()
    commands["bare"] = (servers.bare_command(port), port, servers.REPO)
    return {name: stack.enter_context(servers.running(name, cmd, port, pinning, workdir, tree))
            for name, (cmd, port, tree) in commands.items()}


def _exit_on_term(_signum, _frame) -> None:
    # SystemExit unwinds through the ExitStack, so the servers are stopped.
    raise SystemExit(128 + signal.SIGTERM)


def report(rows: list[dict], pinning: servers.Pinning, args: argparse.Namespace) -> int:
    cpus = ",".join(map(str, pinning.client)) or "any (unpinned)"
    print(f"aiges WebSocket sessions vs bare echo; {args.size} B per frame, aiges "
          f"--instances {args.instances}; pinning: {pinning.describe()}")
    print("ratios: the median of the run-by-run ratios (each run against the bare echo's "
          "run of the same turn); HTTP session API rows: bare = once requests; asyncMode "
          "rows: handoff = the bare echo, its results handed back through a thread per "
          "session (handoff_echo.py), and x/handoff the ratio to it")
    print(CLIENT_NOTE.format(cpus=cpus))
    print("p50/p99: per result frame, send to receive (pipelined: includes queueing); "
          "sess/s: sessions completed (connect to close) per second\n")
    print(render(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(to_json(rows, pinning, args), indent=2) + "\n")
    failed = [(row["point"], name, row[name]) for row in rows for name in row["names"]
              if row[name].errors]
    for pt, name, r in failed:
        print(f"FAILED: {name} {pt.mode} {pt.scenario} c={pt.plan.concurrency}: "
              f"{r.errors} errors, first: {r.first_error}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_term)
    pinning = servers.choose_pinning(not args.no_pin)
    with tempfile.TemporaryDirectory(prefix="aiges-ws-bench-") as tmp, \
            contextlib.ExitStack() as stack:
        try:
            targets = start_targets(stack, args, pinning, Path(tmp))
            bench = Bench(targets, target_names(args), args.instances, args.repeat)
            rows = measure_pinned(bench, plan_points(args), pinning)
        except KeyboardInterrupt:
            print("interrupted; stopping the servers", file=sys.stderr)
            return 130
    return report(rows, pinning, args)


if __name__ == "__main__":
    sys.exit(main())
