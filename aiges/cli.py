"""aiges-load: load an engine and serve it (SPEC 7)."""
from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import re
import socket
import sys
from pathlib import Path

from aiohttp import web

import aiges
from aiges import config as configuration
from aiges import logs
from aiges.errors import AigesError, EngineLoadError
from aiges.loading import load_engine
from aiges.ray import options as ray_options

log = logging.getLogger("aiges")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="aiges-load",
        description="Serve an AIGES engine (a wrapper ABI .so or a wrapper.py) over HTTP.")
    p.add_argument("engine", nargs="?",
                   help="engine: path to lib<name>.so or to a wrapper.py (default, as upstream: "
                        "libwrapper.so in the current folder or on LD_LIBRARY_PATH, or "
                        "wrapper.py when AIGES_PLUGIN_MODE=python)")
    p.add_argument("-c", "--config", help="aiges.toml (default: ./aiges.toml when present)")
    p.add_argument("-s", "--service", default="svcName",
                   help="service name in /v1/{service}, and the aiges.toml section that may "
                        "hold its http_listen")
    p.add_argument("--host", help="listen address (default from http_listen, 0.0.0.0)")
    p.add_argument("--port", type=int, help="listen port (default from http_listen, 1888)")
    p.add_argument("--instances", type=int, help="engine instances, [fc] max")
    p.add_argument("--grpc-port", type=int, metavar="PORT",
                   help="serve the Open Inference Protocol over gRPC on PORT ([grpc] port; "
                        "0 = off)")
    p.add_argument("--async-mode", action="store_const", const=True, default=None,
                   help="one-shot requests through wrapperExecAsync ([aiges] asyncMode)")
    p.add_argument("--once-timeout-ms", type=int, help="one-shot time limit ([aiges] onceTimeout)")
    p.add_argument("--log-level", help="debug, info, warning, error ([log] level)")
    p.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=None,
                   help="one log line per request and per session ([aiges] accessLog, "
                        "default on)")
    p.add_argument("-m", "--mode", type=int,
                   help="upstream's config mode: 0 (native, a local file) is what runs here; "
                        "-m=0 without aiges.toml serves the built-in defaults")
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
    p.add_argument("--version", action="store_true",
                   help="print the versions of aiges, Python, aiohttp and cffi, and exit")
    _upstream_arguments(p)
    return p


# -- upstream's command line ------------------------------------------------------------------
# Upstream's loader (Go `flag`) takes one dash, -k=v or -k v (two dashes too). Its flags
# with no meaning here, and what they did there: each one given gets one warning line.
UPSTREAM_IGNORED = {
    "dc": "xsf's default config name",
    "p": "the config centre's project",
    "g": "the config centre's group",
    "u": "the config centre's companion URL",
    "plugin": "a plugin mode upstream never read (AIGES_PLUGIN_MODE or the engine argument "
              "chooses)",
}
BVT_FLAGS = {**dict.fromkeys(("bvtProject", "bvtGroup", "bvtService", "bvtVersion",
                              "bvtCfgFile", "bvtCompanionUrl", "bvtPlatform", "bvtId",
                              "bvtEngIp", "bvtCb", "bvtServiceAddress"), str),
             "bvtTimeout": int, "bvtAsync": int, "bvtAble": int}
# Allocations between two collections of the young generation while serving.
GC_YOUNG = 20_000
UPSTREAM_BOOL = frozenset({"v", "init", "mnist"})
UPSTREAM_NAMES = UPSTREAM_BOOL | {"m", "c", "s", *UPSTREAM_IGNORED, *BVT_FLAGS}
GO_TRUE, GO_FALSE = {"1", "t", "T", "true", "TRUE", "True"}, {"0", "f", "F", "false", "FALSE",
                                                              "False"}


def _upstream_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "upstream AIGES flags", "accepted so that upstream's command lines run unchanged; "
        "also -bvt* (xsf's BVT self-check), ignored with a warning")
    g.add_argument("-v", dest="upstream_version", action="store_true",
                   help="print the version and exit")
    g.add_argument("-init", dest="upstream_init", action="store_true",
                   help="write ./aiges.toml (an existing one is kept) and exit")
    g.add_argument("-mnist", action="store_true",
                   help="upstream downloads a demo project; here: see `aiges create`")
    for name, why in UPSTREAM_IGNORED.items():
        g.add_argument(f"-{name}", metavar="VALUE", help=f"upstream: {why}; ignored")
    for name, kind in BVT_FLAGS.items():
        g.add_argument(f"-{name}", type=kind, help=argparse.SUPPRESS)


def upstream_argv(argv: list[str]) -> list[str]:
    """Go's flag syntax as argparse reads it: '-c=x' and '--c=x' become '-c x' (argparse
    would keep the '='); a bool flag stands alone ('-v=true' is '-v', '-v=false' nothing)."""
    out = []
    for arg in argv:
        match = re.fullmatch(r"(--?)([A-Za-z]\w*)(?:=(.*))?", arg, re.S)
        if not match or match[2] not in UPSTREAM_NAMES or (match[1], match[2]) == ("--", "init"):
            out.append(arg)  # ours (--init PATH) or not a flag
        elif match[2] not in UPSTREAM_BOOL:
            out += [f"-{match[2]}"] + ([] if match[3] is None else [match[3]])
        elif match[3] is None or match[3] in GO_TRUE:
            out.append(f"-{match[2]}")
        elif match[3] not in GO_FALSE:
            out.append(arg)  # argparse says what is wrong with it
    return out


def upstream_notes(args) -> list[str]:
    """One warning line for each upstream flag given that means nothing here."""
    notes = []
    if args.mode not in (None, -1, 0):
        notes.append(f"-m={args.mode} ignored: upstream's config centre (1) and custom (2) "
                     f"modes do not exist here; the config is read from local disk")
    for name, why in UPSTREAM_IGNORED.items():
        if getattr(args, name) is not None:
            notes.append(f"upstream flag -{name}={getattr(args, name)} ignored: {why}")
    for name in BVT_FLAGS:
        if getattr(args, name) is not None:
            notes.append(f"upstream flag -{name}={getattr(args, name)} ignored: xsf's BVT "
                         f"self-check does not exist here")
    return notes


class NoEngine(Exception):
    """No engine on the command line, and none where upstream's loader looks."""


def find_engine(environ, cwd: Path) -> tuple[str, list[str]]:
    """The engine upstream's loader would run here, and warnings about the choice.
    AIGES_PLUGIN_MODE=c (the default): libwrapper.so in ``cwd``, then in the
    LD_LIBRARY_PATH folders; =python: wrapper.py in ``cwd``, then on PYTHONPATH."""
    mode = environ.get("AIGES_PLUGIN_MODE") or "c"
    if mode not in ("c", "python"):
        raise NoEngine(f"AIGES_PLUGIN_MODE={mode}: must be c or python (unset: c)")
    python_path = [cwd, *_folders(cwd, environ.get("PYTHONPATH"))]
    if mode == "python":
        wrapper = _first(python_path, "wrapper.py")
        if wrapper is None:
            raise NoEngine(
                f"no engine given, and AIGES_PLUGIN_MODE=python: no wrapper.py in "
                f"{_listing(python_path)} (the current folder, then PYTHONPATH). "
                f"Give it: aiges-load path/to/wrapper.py")
        return str(wrapper), []
    library_path = [cwd, *_folders(cwd, environ.get("LD_LIBRARY_PATH"))]
    library = _first(library_path, "libwrapper.so")
    if library is None:
        raise NoEngine(
            f"no engine given, and no libwrapper.so in {_listing(library_path)} (the current "
            f"folder, then LD_LIBRARY_PATH). Give it: aiges-load path/to/libengine.so (or "
            f"wrapper.py), or set AIGES_PLUGIN_MODE=python to serve ./wrapper.py")
    from aiges.native.embedded import embeds_python
    reason = embeds_python(library)
    wrapper = _first(python_path, "wrapper.py") if reason else None
    if wrapper is None:
        return str(library), []  # an embedding one alone is refused by the loader, saying why
    # Upstream's aiges_c_python_wrapper: all it does is run this wrapper.py.
    return str(wrapper), [f"{library} embeds CPython ({reason}), like upstream's "
                          f"aiges_c_python_wrapper, which runs wrapper.py: serving {wrapper} "
                          f"directly"]


def _folders(cwd: Path, value: str | None) -> list[Path]:
    return [cwd / entry for entry in (value or "").split(os.pathsep) if entry]


def _first(folders: list[Path], name: str) -> Path | None:
    return next((folder / name for folder in folders if (folder / name).is_file()), None)


def _listing(folders: list[Path]) -> str:
    return ", ".join(dict.fromkeys(str(folder) for folder in folders))


def version_text() -> str:
    import platform

    import aiohttp
    import cffi
    return (f"aiges-load {aiges.__version__} (Python {platform.python_version()}, "
            f"aiohttp {aiohttp.__version__}, cffi {cffi.__version__})")


def _one_shot(args) -> int | None:
    """The exit status of a flag that does its work and exits; None: serve."""
    if args.version or args.upstream_version:
        print(version_text() if args.version else aiges.__version__)
        return 0
    if args.mnist:
        print("aiges-load: -mnist (upstream downloads the aiges_demo mnist project) is not "
              "available here; `aiges create -n NAME --lang python` writes a Python wrapper "
              "project that runs and tests out of the box", file=sys.stderr)
        return 1
    if args.init or args.upstream_init:
        return write_default(Path(args.init or "aiges.toml"), keep=args.upstream_init)
    return None


# -- serving ------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    argv = upstream_argv(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    done = _one_shot(args)
    if done is not None:
        return done
    notes = upstream_notes(args)
    try:
        if not args.engine:
            args.engine, found = find_engine(os.environ, Path.cwd())
            notes += found
            argv = [args.engine, *argv]  # workers load the file found here
        config = load_config(args)
    except (NoEngine, configuration.ConfigError) as exc:
        print(f"aiges-load: {exc}", file=sys.stderr)
        return 2
    try:
        logs.configure(config.log_level, config.log_file)
    except OSError as exc:
        print(f"aiges-load: cannot write the log file {config.log_file} ([log] file): "
              f"{exc.strerror}", file=sys.stderr)
        return 2
    if config.python_plugin_cmd and args.engine.endswith(".py"):
        notes.append(f"[aiges] pythonPluginCmd is not run ({config.python_plugin_cmd}): "
                     f"aiges-load serves {args.engine} in its own process")
    for warning in [*config.warnings, *notes] if args.worker_of is None else ():
        log.warning(warning)
    return run(config, args, argv)


def run(config: configuration.Config, args, argv: list[str]) -> int:
    """Serve ``args.engine``: here, on Ray, or in supervised workers started with ``argv``."""
    if args.ray:  # Ray Serve's replicas load the engine, not this process
        from aiges.ray.run import main as run_on_ray
        return run_on_ray(config, args)
    if args.worker_of is None and config.workers > 1:
        from aiges import supervisor
        return supervisor.run(config, argv)
    if args.worker_of is not None:
        from aiges import supervised
        if not supervised.attach_to_supervisor(args.worker_of):
            return 1
    elif config.gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = config.gpus[0]
        log.info("gpu", extra={"CUDA_VISIBLE_DEVICES": config.gpus[0]})
    from aiges.server import listen
    worker = args.worker_of is not None
    try:
        sock = listen.bind(config.host, config.port, reuse_port=worker)
    except OSError as exc:
        log.error("cannot listen", extra={"host": config.host, "port": config.port,
                                          "error": str(exc)})
        return 1
    if config.grpc_port and not worker:  # a busy gRPC port fails now too, not after init
        try:
            listen.bind(config.host, config.grpc_port).close()
        except OSError as exc:
            sock.close()
            log.error("cannot listen (gRPC)", extra={"host": config.host,
                                                     "port": config.grpc_port,
                                                     "error": str(exc)})
            return 1
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
        asyncio.run(serve(config, engine, sock, worker=worker))
    except AigesError as exc:
        log.error("engine start-up failed", extra={"code": exc.code, "error": exc.message})
        return 1
    except OSError as exc:  # the gRPC port, taken between the check and the engine's init
        log.error("cannot listen", extra={"error": str(exc)})
        return 1
    return 0


def load_config(args) -> configuration.Config:
    path, note = _config_path(args)
    config = configuration.load(path, args.service)
    if note:
        config.warnings.append(note)
    if args.grpc_port is not None and not 0 <= args.grpc_port <= 65535:
        raise configuration.ConfigError(f"--grpc-port must be 0..65535, got {args.grpc_port}")
    if args.workers is not None and args.workers < 1:
        raise configuration.ConfigError(f"--workers must be 1 or more, got {args.workers}")
    try:
        level = None if args.log_level is None else configuration.log_level(args.log_level)
    except ValueError:
        raise configuration.ConfigError(
            f"--log-level {args.log_level}: one of debug, info, warning, error") from None
    return configuration.override(
        config, host=args.host, port=args.port, instances=args.instances,
        async_mode=args.async_mode, once_timeout_ms=args.once_timeout_ms,
        log_level=level, access_log=args.access_log, workers=args.workers,
        admin_reload=args.admin_reload, grpc_port=args.grpc_port,
        gpus=None if args.gpus is None else configuration.gpu_list(args.gpus))


def _config_path(args) -> tuple[Path | None, str]:
    """The file to read (None: built-in defaults), and a note on the choice."""
    default = Path("aiges.toml")
    path = Path(args.config) if args.config else default
    if path.exists() or (args.config and path.resolve() != default.resolve()):
        return path, ""  # a missing file named by -c is an error
    if args.mode != 0:
        return (path if args.config else None), ""
    # Upstream's -m=0 writes its default ./aiges.toml first; nothing is written here.
    return None, ("-m=0: no aiges.toml here, serving with the built-in defaults (upstream "
                  "writes its default file first; `aiges-load --init` writes ours)")


def write_default(path: Path, keep: bool = False) -> int:
    """``keep``: an existing file is no error (upstream's -init)."""
    if path.exists():
        print(f"aiges-load: {path} exists; not overwritten", file=sys.stderr)
        return 0 if keep else 1
    path.write_text(configuration.DEFAULT_TOML)
    print(f"wrote {path}")
    return 0


def _event_loop_policy() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def serve(config: configuration.Config, engine, sock: socket.socket,
                worker: bool = False) -> None:
    """Serve on ``sock`` (bound, not yet listening) until SIGTERM/SIGINT. ``worker``: one
    of a supervisor's workers, sharing the port (SO_REUSEPORT) and naming itself in
    every response. Exits the process with 1
    when an engine call is still running at the end (it would hold the exit forever)."""
    from aiges.server import create_app
    from aiges.server.app import drain
    from aiges.server.listen import Listener
    from aiges.server.relay import ServerLog
    from aiges.server.state import STATE
    from aiges.service.reload import on_signal
    from aiges.shutdown import StopSignals

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    app = create_app(config, engine)
    service = app[STATE]
    signals = StopSignals(loop, stop.set, lambda: on_signal(service),
                          config.drain_timeout_ms / 1000, service.stuck_calls)
    signals.install()
    if worker:
        from aiges import supervised
        supervised.mark_responses(app)
        service.board = supervised.attach_board()
        if service.board is not None:
            service.metrics.supervised(service.board)
    # keepalive_timeout: aiohttp's default is an hour; idle connections close alike on
    # both paths ([http] keepAlive).
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=config.http_keepalive_s,
                           logger=ServerLog(logging.getLogger("aiohttp.server")),
                           shutdown_timeout=config.drain_timeout_ms / 1000)
    await runner.setup()
    try:
        listener = Listener(app, runner)
        await listener.start(sock)
        # What start-up built (modules, the engine, the app) lives as long as the process:
        # out of the collector's sight, a full collection does not walk it per request.
        gc.freeze()
        # Requests and frames allocate a few dicts and lists each, freed at once: with
        # the default threshold (700) the young generation is collected every few dozen
        # frames, a few percent of a streaming session's time (benchmarks/sessions.py).
        gc.set_threshold(GC_YOUNG, *gc.get_threshold()[1:])
        # A worker's line is debug: its supervisor says "ready on" once all are.
        log.log(logging.DEBUG if worker else logging.INFO,
                f"ready on http://{_display_host(config.host)}:{config.port}/v1/{config.service}"
                f" (API docs: /docs)" + _grpc_note(app),
                extra={"engine": engine.path, "pid": os.getpid()})
        if worker:
            service.on_reload = supervised.report_ready()
            if service.board is not None:
                supervised.keep_beating(service.board)
        await stop.wait()
        service.lifecycle.begin_drain()  # not ready from the first moment, before connections drain
        log.info("shutting down: not ready, draining in-flight requests")
        await drain(app, listener)  # stop accepting; open sessions may still finish
        # What is left of the drain time bounds aiohttp's wait for its handlers too
        # (aiohttp itself sets this attribute from its sites).
        runner._shutdown_timeout = max(service.lifecycle.drain_left(), 0.1)
    finally:
        await runner.cleanup()
        if service.clean:
            engine.close()
    if not service.clean:
        log.error("stopped with engine calls still running: exiting without waiting for them",
                  extra={"calls": service.stuck_calls()})
        signals.exit_now(1)
    log.info("stopped")
    signals.uninstall()


def _grpc_note(app) -> str:
    """The ready line's mention of the gRPC port ("" when gRPC is off)."""
    from aiges.server.oip import grpc_port
    port = grpc_port(app)
    return f"; gRPC (Open Inference Protocol) on port {port}" if port else ""


def _display_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host


if __name__ == "__main__":
    sys.exit(main())
