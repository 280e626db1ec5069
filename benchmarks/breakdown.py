"""Where a once request's CPU goes, stage by stage, timed in process.

    .venv/bin/python benchmarks/breakdown.py [--size 100] [--engine PATH] [--json out.json]

py-spy (profile.py) shows the shares under real load, but a sampler cannot see
inside a cffi call and blurs short frames. This runs each stage of the once path
on its own, many times, against the real app built by create_app with the C echo
engine and the Python one (warmed up until the engine call runs inline), and
prints the median microseconds of CPU time (this thread's) per call of each: the fast path's head parsing,
JSON parsing and validation, the engine call and its cffi marshalling, the
inline-call bookkeeping and metrics, rendering, accounting, and the whole of
``once.begin``. No socket is involved: what is left of a request's CPU time under
load is the kernel's send and receive and the event loop.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
import timeit
from pathlib import Path

import loadgen
import servers
from aiohttp import web

from aiges import protocol
from aiges.config import Config
from aiges.generation import open_engine
from aiges.native.library import CEngine
from aiges.server import create_app, fast
from aiges.server.head import read_head
from aiges.service import NATIVE, once
from aiges.service.accounting import once_done
from aiges.server.state import STATE

ROUTE = "/v1/svcName"


def timed(calls: dict, number: int, repeat: int) -> dict:
    """Median microseconds per call of each, in this thread's CPU time (time.thread_time:
    time spent descheduled on a busy machine is not counted); the repeats go round every
    call in turn, so that a slow spell of a shared machine lands on all of them alike."""
    runs: dict = {name: [] for name in calls}
    for _ in range(repeat):
        for name, fn in calls.items():
            runs[name].append(timeit.Timer(fn, timer=time.thread_time).timeit(number)
                              / number * 1e6)
    return {name: round(statistics.median(times), 2) for name, times in runs.items()}


def stages(state, body: bytes, head: bytes, server: fast.FastHTTP, cleanup: list) -> dict:
    config, runner, engine = state.config, state.runner, state.engine
    req = protocol.parse(protocol.loads(body), config.service, config.header_pass, "sid")
    items = engine.exec(req.sid, req.params, req.data, req.psr_ids)
    answer = once.begin(state, NATIVE, body, ROUTE, 0.0)
    calls = {
        "fast path: read_head": lambda: read_head(head, server.line),
        "parse: JSON, validation, base64": lambda: protocol.parse(
            protocol.loads(body), config.service, config.header_pass, "sid"),
        "engine call (exec, marshalling included)": lambda: engine.exec(
            req.sid, req.params, req.data, req.psr_ids),
        "engine call inline (+ placement, metric)": lambda: runner.once_now(req),
        "render: protocol.success": lambda: protocol.success("sid", items, req.outputs),
        "account: metrics (once_done)": lambda: once_done(state, ROUTE, "sid", 0.0, None),
        "fast path: response head": lambda: server.head(answer, False),
        "once.begin (all of the above but the head)": lambda: once.begin(
            state, NATIVE, body, ROUTE, 0.0),
        "a whole request through the fast path's connection": _through(server, head + body),
    }
    if isinstance(engine, CEngine):  # what the marshalling costs around the C call
        calls.update(c_parts(engine, req, cleanup))
    return calls


class _Sink:
    """A transport that takes the answers and drops them."""

    def write(self, data) -> None:
        pass

    def writelines(self, parts) -> None:
        pass

    def close(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:  # a request that waits (the engine back on threads)
        pass

    def resume_reading(self) -> None:
        pass


def _through(server, request: bytes):
    conn = server()
    conn.connection_made(_Sink())
    return lambda: conn.data_received(request)


def c_parts(engine, req, cleanup: list) -> dict:
    from aiges.native import lists
    from aiges.native.cdef import ffi

    keep: list = []
    tag = ffi.new("char[]", b"sid")
    params, data = lists.param_list(req.params, keep), lists.data_list(req.data, keep)
    out = ffi.new("pDataList*")
    run, free = engine._fn["wrapperExec"], engine._fn["wrapperExecFree"]

    def bare_call():
        run(tag, params, data, out, ffi.NULL, 0)
        free(tag, out)

    held = ffi.new("pDataList*")  # an answer to copy, freed by the caller's cleanup
    run(tag, params, data, held, ffi.NULL, 0)
    cleanup.append(lambda: (free(tag, held), keep))
    return {
        "  C: exec, marshalling in Python (ABI mode)": lambda: engine._exec_abi(
            req.sid, req.params, req.data, req.psr_ids),
        "  C: wrapperExec + ExecFree alone (meter callback in)": bare_call,
        "  C: building ParamList + DataList": lambda: (lists.param_list(req.params, []),
                                                        lists.data_list(req.data, [])),
        "  C: copying the outputs (read_data)": lambda: lists.read_data(held[0]),
    }


@contextlib.asynccontextmanager
async def app_state(engine_path: Path, body: bytes):
    """An app's State with its engine started and its exec already inline."""
    config = Config()
    config.access_log = False
    app = create_app(config, open_engine(str(engine_path)))
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        state = app[STATE]
        for _ in range(200):  # until exec is measured fast and runs inline
            result = once.begin(state, NATIVE, body, ROUTE, 0.0)
            if type(result) is once.Pending:
                await result.finish()
        yield state
    finally:
        await runner.cleanup()


async def measure(engines: dict[str, Path], body: bytes, number: int, repeat: int) -> dict:
    head = (f"POST {ROUTE} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
            f"\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    cleanup: list = []
    async with contextlib.AsyncExitStack() as stack:
        calls = {}
        for kind, path in engines.items():
            state = await stack.enter_async_context(app_state(path, body))
            server = fast.FastHTTP(state, lambda: None)
            stack.callback(server._sweep.cancel)
            stack.callback(lambda: [step() for step in cleanup])
            for name, fn in stages(state, body, head, server, cleanup).items():
                calls[kind, name] = fn
        times = timed(calls, number, repeat)
    results: dict = {kind: {} for kind in engines}
    for (kind, name), us in times.items():
        results[kind][name] = us
    return results


def stage_parser(description: str, number: int, repeat: int) -> argparse.ArgumentParser:
    """The options of a stage breakdown: the two echo engines, the payload size, how many
    calls per timing and timings per stage, where to write JSON."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--engine", type=Path,
                   default=servers.REPO / "build" / "native_examples" / "libecho.so")
    p.add_argument("--py-engine", type=Path,
                   default=servers.REPO / "python_examples" / "echo" / "wrapper.py")
    p.add_argument("--size", type=int, default=100, help="payload bytes (default 100)")
    p.add_argument("--number", type=int, default=number, help="calls per timing")
    p.add_argument("--repeat", type=int, default=repeat, help="timings per stage (median)")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    return p


def main(argv: list[str] | None = None) -> int:
    args = stage_parser(__doc__.split("\n\n")[0], 5000, 21).parse_args(argv)
    body = loadgen.request_body(loadgen.payload_text(args.size))
    engines = {"C echo": args.engine.resolve(), "Python echo": args.py_engine.resolve()}
    results = asyncio.run(measure(engines, body, args.number, args.repeat))
    report(results, f"{args.size} B once request, median us per call", args.size, args.json)
    return 0


def report(results: dict[str, dict[str, float]], title: str, size: int,
           json_path: Path | None, width: int = 56) -> None:
    """The stages as a table (one column per engine), and as JSON when asked."""
    names = list(dict.fromkeys(k for r in results.values() for k in r))
    print(title)
    print(f"{'stage':<{width}}" + "".join(f"{t:>13}" for t in results))
    for name in names:
        print(f"{name:<{width}}" + "".join(
            f"{r[name]:>13.2f}" if name in r else f"{'-':>13}" for r in results.values()))
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps({"size": size, "us": results}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
