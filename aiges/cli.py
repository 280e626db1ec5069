"""aiges-load: load an engine and serve it (SPEC 7)."""
from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import re
import sys
from pathlib import Path

from aiohttp import web

from aiges import config as configuration
from aiges import logs
from aiges.errors import AigesError, EngineLoadError
from aiges.ray import options as ray_options

log = logging.getLogger("aiges")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="aiges-load",
        description="Serve an AIGES engine (a wrapper ABI .so or a wrapper.py) over HTTP.")
    p.add_argument("engine", nargs="?", help="engine: path to lib<name>.so or to a wrapper.py")
    p.add_argument("-c", "--config", help="aiges.toml (default: ./aiges.toml when present)")
    p.add_argument("-s", "--service", default="svcName", help="service name in /v1/{service}")
    p.add_argument("--host", help="listen address (default from http_listen, 0.0.0.0)")
    p.add_argument("--port", type=int, help="listen port (default from http_listen, 1888)")
    p.add_argument("--instances", type=int, help="engine instances, [fc] max")
    p.add_argument("--async-mode", action="store_const", const=True, default=None,
                   help="one-shot requests through wrapperExecAsync ([aiges] asyncMode)")
    p.add_argument("--once-timeout-ms", type=int, help="one-shot time limit ([aiges] onceTimeout)")
    p.add_argument("--log-level", help="debug, info, warning, error ([log] level)")
    p.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=None,
                   help="one log line per request and per session ([aiges] accessLog, "
                        "default on)")
    p.add_argument("-m", "--mode", type=int, default=0,
                   help="accepted for upstream scripts; only 0 (native) exists")
    p.add_argument("--workers", type=int, metavar="N",
                   help="worker processes serving one port, each with its own engine, "
                        "restarted when they die ([aiges] workers, default 1)")
    p.add_argument("--gpus", metavar="IDS",
                   help="GPU ids, e.g. 0,1: each worker gets one as CUDA_VISIBLE_DEVICES, "
                        "round-robin ([aiges] gpus)")
    p.add_argument("--admin-reload", action=argparse.BooleanOptionalAction, default=None,
                   help="allow POST /admin/reload to replace the engine ([aiges] adminReload, "
                        "default off; SIGHUP always reloads)")
    ray_options.add_arguments(p)  # --ray, --address, --replicas, --gpus-per-replica, ...
    p.add_argument("--worker-of", type=int, metavar="PID", help=argparse.SUPPRESS)
    p.add_argument("--init", nargs="?", const="aiges.toml", metavar="PATH",
                   help="write a commented default aiges.toml and exit")
    return p


def upstream_argv(argv: list[str]) -> list[str]:
    """Go-style '-c=aiges.toml' becomes '-c aiges.toml' (argparse would keep the '=')."""
    out = []
    for arg in argv:
        match = re.fullmatch(r"-([a-zA-Z])=(.*)", arg)
        out += [f"-{match[1]}", match[2]] if match else [arg]
    return out


def main(argv: list[str] | None = None) -> int:
    argv = upstream_argv(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    if args.init:
        return write_default(Path(args.init))
    if not args.engine:
        parser().error("the engine path is required (or --init)")
    try:
        config = load_config(args)
    except configuration.ConfigError as exc:
        print(f"aiges-load: {exc}", file=sys.stderr)
        return 2
    logs.configure(config.log_level, config.log_file)
    for warning in config.warnings if args.worker_of is None else ():
        log.warning(warning)
    if args.ray:  # Ray Serve's replicas load the engine, not this process
        from aiges.ray.run import main as run_on_ray
        return run_on_ray(config, args)
    if args.worker_of is None and config.workers > 1:
        from aiges import supervisor
        return supervisor.run(config, argv)
    if args.worker_of is not None:
        from aiges import supervisor
        if not supervisor.attach_to_supervisor(args.worker_of):
            return 1
    elif config.gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = config.gpus[0]
        log.info("gpu", extra={"CUDA_VISIBLE_DEVICES": config.gpus[0]})
    try:
        engine = load_engine(args.engine)
    except EngineLoadError as exc:
        log.error(str(exc))
        return 1
    if config.async_mode and engine.modes.once_sync and not engine.modes.once_async:
        log.warning("asyncMode is on but the engine has no wrapperExecAsync: one-shot requests "
                    "use wrapperExec; sessions still get the callback")
    try:
        _event_loop_policy()
        asyncio.run(serve(config, engine, worker=args.worker_of is not None))
    except AigesError as exc:
        log.error("engine start-up failed", extra={"code": exc.code, "error": exc.message})
        return 1
    except OSError as exc:
        log.error("cannot listen", extra={"host": config.host, "port": config.port,
                                          "error": str(exc)})
        return 1
    return 0


def load_config(args) -> configuration.Config:
    path = args.config or ("aiges.toml" if Path("aiges.toml").is_file() else None)
    config = configuration.load(path, args.service)
    if args.workers is not None and args.workers < 1:
        raise configuration.ConfigError(f"--workers must be 1 or more, got {args.workers}")
    return configuration.override(
        config, host=args.host, port=args.port, instances=args.instances,
        async_mode=args.async_mode, once_timeout_ms=args.once_timeout_ms,
        log_level=args.log_level, access_log=args.access_log, workers=args.workers,
        admin_reload=args.admin_reload,
        gpus=None if args.gpus is None else configuration.gpu_list(args.gpus))


def load_engine(path: str):
    """A wrapper.py is a Python engine; anything else is a shared library."""
    from aiges.generation import open_engine
    return open_engine(path)


def write_default(path: Path) -> int:
    if path.exists():
        print(f"aiges-load: {path} exists; not overwritten", file=sys.stderr)
        return 1
    path.write_text(configuration.DEFAULT_TOML)
    print(f"wrote {path}")
    return 0


def _event_loop_policy() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def serve(config: configuration.Config, engine, worker: bool = False) -> None:
    """Serve until SIGTERM/SIGINT. ``worker``: one of a supervisor's workers, sharing the
    port (SO_REUSEPORT) and naming itself in every response. Exits the process with 1
    when an engine call is still running at the end (it would hold the exit forever)."""
    from aiges.server import create_app
    from aiges.server.app import drain
    from aiges.server.listen import Listener
    from aiges.server.ops import begin_drain
    from aiges.server.relay import ServerLog
    from aiges.server.reload import on_sighup
    from aiges.server.state import STATE
    from aiges.shutdown import StopSignals

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    app = create_app(config, engine)
    state = app[STATE]
    signals = StopSignals(loop, stop.set, lambda: on_sighup(app),
                          config.drain_timeout_ms / 1000, state.stuck_calls)
    signals.install()
    if worker:
        from aiges import supervisor
        supervisor.mark_responses(app)
        state.board = supervisor.attach_board()
        if state.board is not None:
            state.metrics.supervised(state.board)
    # keepalive_timeout: aiohttp's default is an hour; idle connections close alike on
    # both paths ([http] keepAlive).
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=config.http_keepalive_s,
                           logger=ServerLog(logging.getLogger("aiohttp.server")),
                           shutdown_timeout=config.drain_timeout_ms / 1000)
    await runner.setup()
    try:
        listener = Listener(app, runner)
        await listener.start(config.host, config.port, reuse_port=worker)
        # What start-up built (modules, the engine, the app) lives as long as the process:
        # out of the collector's sight, a full collection does not walk it per request.
        gc.freeze()
        # A worker's line is debug: its supervisor says "ready on" once all are.
        log.log(logging.DEBUG if worker else logging.INFO,
                f"ready on http://{_display_host(config.host)}:{config.port}/v1/{config.service}",
                extra={"engine": engine.path, "pid": os.getpid()})
        if worker:
            state.on_reload = supervisor.report_ready()
            if state.board is not None:
                supervisor.keep_beating(state.board)
        await stop.wait()
        begin_drain(app)  # not ready from the first moment, before connections drain
        log.info("shutting down: not ready, draining in-flight requests")
        await drain(app, listener)  # stop accepting; open sessions may still finish
        # What is left of the drain time bounds aiohttp's wait for its handlers too
        # (aiohttp itself sets this attribute from its sites).
        runner._shutdown_timeout = max(state.drain_left(), 0.1)
    finally:
        await runner.cleanup()
        if state.clean:
            engine.close()
    if not state.clean:
        log.error("stopped with engine calls still running: exiting without waiting for them",
                  extra={"calls": state.stuck_calls()})
        signals.exit_now(1)
    log.info("stopped")
    signals.uninstall()


def _display_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host


if __name__ == "__main__":
    sys.exit(main())
