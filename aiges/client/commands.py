"""The `aiges call` and `aiges bench` parsers and what they run (registered by aiges.tool).

aiohttp and friends are imported only when a command runs, so `aiges create`
stays quick.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

BENCH_TEXT = ("abcdefghijklmnopqrstuvwxyz0123456789" * 3)[:100]
BENCH_EPILOG = """\
Compared with wrk on the same server (aiges-load, echo engine, 100 B text, client
and server each pinned to one core of a busy 2-core box):
  c=16, delay_ms=20 (server-bound): wrk 460 req/s p50 35.9 ms, aiges bench 459 req/s
    p50 35.3 ms: they agree while the server is the bottleneck;
  c=1: wrk 1543 req/s, aiges bench 574; c=16: wrk 2247, aiges bench 975.
A Python aiohttp client saturates one core of such a box at about 600-1300 req/s
(~0.5 ms of client CPU per request); near that its rate is its own limit and its
latencies include its own time. For a server's peak rate use wrk (make bench).
Exit status: 0 when any request succeeded, 1 when none did, 2 on bad flags."""


def _inputs(p: argparse.ArgumentParser, default_text: str | None = None) -> None:
    p.add_argument("url", metavar="URL", help="the service, e.g. http://127.0.0.1:1888/v1/svcName")
    p.add_argument("--text", default=default_text,
                   help="a text input" + (f" (default: {len(default_text)} B of ASCII)"
                                          if default_text else ""))
    p.add_argument("--key", default="input", help="the input key of --text (default input)")
    p.add_argument("--file", action="append", metavar="KEY=PATH[:TYPE]",
                   help="an input from a file (repeatable); TYPE text|audio|image|video, else "
                        "from the extension: .wav/.pcm/.mp3 audio, .png/.jpg/.jpeg/.bmp image, "
                        ".mp4/.avi video, anything else text")
    p.add_argument("--param", action="append", metavar="K=V", help="an engine parameter "
                   "(parameter.<service>.K; repeatable)")
    p.add_argument("--header", action="append", metavar="K=V", help="a header field (repeatable)")
    p.add_argument("--res-id", metavar="N", help="personalization resource id(s), comma list")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="per request, or per frame awaited (default 30)")
    p.add_argument("--chunk-bytes", type=_positive_int, default=4096, metavar="N",
                   help="streaming: input bytes per frame (default 4096)")
    p.add_argument("--interval-ms", type=float, default=0.0, metavar="MS",
                   help="streaming: pause between frames (default 0)")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_call(commands) -> None:
    p = commands.add_parser(
        "call", help="send one request (or stream a file) to a running service",
        description="Send one once request built from the flags and print the response: "
                    "text outputs as text, binary outputs saved as <out-dir>/<key>.<ext>. "
                    "With --stream, stream the input over a WebSocket session in chunks and "
                    "print each result frame as it arrives. A non-zero header.code is "
                    "printed on stderr and the exit status is 1.")
    _inputs(p)
    p.add_argument("--stream", action="store_true",
                   help="stream the one input over a WebSocket session")
    p.add_argument("--out-dir", default=".", help="where binary outputs go (default: .)")
    p.add_argument("--json", action="store_true", help="print the raw response JSON "
                   "(one line per frame with --stream)")
    p.set_defaults(run=run_call)


def run_call(args) -> int:
    from aiges.client import call
    return call.run(args)


def add_bench(commands) -> None:
    p = commands.add_parser(
        "bench", help="load-test a running service (once or session mode)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Send requests (or WebSocket sessions) from C concurrent workers and report "
                    "throughput, latency percentiles (successes and failures apart), the "
                    "first-result latency of sessions and every (HTTP status, header.code) seen.",
        epilog=BENCH_EPILOG)
    _inputs(p, BENCH_TEXT)
    p.add_argument("--session", action="store_true",
                   help="session mode: each unit is a WebSocket session streaming the input")
    p.add_argument("--frames", type=_positive_int, metavar="N",
                   help="session mode: frames per session (default: as many chunks as the "
                        "input has; chunks repeat to make N)")
    p.add_argument("-c", "--concurrency", type=_positive_int, default=1, metavar="C",
                   help="concurrent workers and connections (default 1)")
    p.add_argument("--ramp-up", type=float, default=0.0, metavar="SECONDS",
                   help="start the workers evenly over this time (default 0)")
    limit = p.add_mutually_exclusive_group()
    limit.add_argument("-d", "--duration", type=float, metavar="SECONDS",
                       help="run this long (default 10 unless --requests)")
    limit.add_argument("-n", "--requests", type=_positive_int, metavar="N",
                       help="send N requests (sessions) in all")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout "
                   "instead of the table")
    p.add_argument("--json-out", metavar="PATH", help="also write the result as JSON to PATH")
    p.add_argument("--plot", metavar="PNG", help="draw a latency histogram and throughput over "
                   "time (needs matplotlib, the [plot] extra)")
    p.set_defaults(run=run_bench)


def run_bench(args) -> int:
    import orjson

    from aiges.client import bench, plot, request, stats

    if args.plot and not plot.available():
        print(f"aiges bench: error: {plot.MISSING}", file=sys.stderr)
        return 2
    try:
        plan = _plan(args, request, bench)
    except request.UsageError as exc:
        print(f"aiges bench: error: {exc}", file=sys.stderr)
        return 2
    outcomes, elapsed = bench.event_loop_run(
        bench.measure(plan, bench.progress_stream(args.quiet)))
    mode = "session" if plan.session else "once"
    rep = stats.report(outcomes, elapsed, mode, args.url, args.concurrency)
    doc = orjson.dumps(rep, option=orjson.OPT_INDENT_2).decode()
    if args.json_out:
        Path(args.json_out).write_text(doc + "\n")
    if args.plot:
        plot.draw(Path(args.plot), rep, [o.latency * 1e3 for o in outcomes if o.ok],
                  [o.latency * 1e3 for o in outcomes if not o.ok])
    print(doc if args.json else stats.format_table(rep))
    return 0 if rep["ok"] else 1


def _plan(args, request, bench):
    import orjson

    # The default text is only the payload when no --file is given.
    text = None if args.file and args.text == BENCH_TEXT else args.text
    spec = request.build_spec(args.url, text, args.key, args.file, args.param, args.header,
                              args.res_id)
    duration = args.duration if args.duration or args.requests else 10.0
    common = dict(url=args.url, concurrency=args.concurrency, duration=duration,
                  requests=args.requests, ramp_up=args.ramp_up, timeout=args.timeout)
    if args.session:
        docs = request.session_docs(spec, args.chunk_bytes, args.frames)
        return bench.Plan(**common, frames=tuple(orjson.dumps(d).decode() for d in docs),
                          interval=args.interval_ms / 1000)
    return bench.Plan(**common, body=orjson.dumps(request.once_doc(spec)))
