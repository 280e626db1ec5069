"""Hot reload: SIGHUP or ``POST /admin/reload`` replaces the engine without downtime.

1. The new engine is opened from a private copy of the library (deleted once mapped;
   a wrapper.py is imported as a module of its own), given the service callbacks and initialised, on threads, while
   the current engine serves on.
2. It becomes the current generation in one synchronous step: every once request and
   session that starts from then on goes to it.
3. The old generation retires in the background: its in-flight once requests finish,
   its open sessions get ``[aiges] drainTimeout`` ms to end (then they are closed with
   an error, as at shutdown), then wrapperFini and close.

A new engine that fails to load or to initialise is closed again and the failure
reported (log, the admin answer, ``aiges_engine_reloads_total{result="failed"}``); the
old one never stopped serving. One reload at a time: a request meanwhile gets 409, a
SIGHUP is logged and ignored. Personalization resources are not carried over: the new
engine starts with none (the answer lists the ids dropped).
"""
from __future__ import annotations

import asyncio
import logging
import os
from functools import partial
from time import perf_counter

import orjson
from aiohttp import web

from aiges import errors
from aiges.errors import AigesError
from aiges.generation import Generation, open_engine
from aiges.resources import same_secret
from aiges.server import ops
from aiges.server.responses import error, json_body, read_body
from aiges.server.state import STATE, State

ADMIN_TOKEN_HEADER = "X-Aiges-Admin-Token"
log = logging.getLogger(__name__)
PATH = "/admin/reload"


def add_routes(app: web.Application) -> None:
    app.router.add_post(PATH, admin_reload)


def new_generation(state: State, engine, number: int) -> Generation:
    return Generation(number, engine, state.config, state.metrics,
                      partial(ops.session_end, state), state.board)


async def start(state: State, gen: Generation) -> None:
    """wrapperSetCtrl and wrapperInit of a new generation (closed again if init fails)."""
    await gen.start(state.config.wrapper, ops.engine_callbacks(state))


def install(state: State, gen: Generation) -> Generation | None:
    """``gen`` serves new work from now on; returns the generation it replaced."""
    generations = state.generations
    old = generations.swap(gen)
    metrics = state.metrics
    metrics.watch(gen.pool, generations)  # sessions: every generation's open ones
    if state.tracing is not None:
        state.tracing.watch(gen.runner)  # after metrics.watch: both see the queue waits
    metrics.engines_retiring.set_function(lambda: len(generations.retiring))
    metrics.engine(gen.version, gen.engine.path, gen.number)
    engine = gen.engine.path if state.config.health_detail else os.path.basename(gen.engine.path)
    state.health = orjson.dumps({"status": "ok", "engine": engine,
                                 "version": gen.version, "generation": gen.number,
                                 "reloads": generations.reloads})
    return old


async def reload(state: State, path: str | None = None, trigger: str = "admin") -> dict:
    """Replace the current engine with ``path`` (default: the current engine's path,
    opened again). The answer describes the new generation; AigesError when refused
    (409 busy, 503 not ready) or failed (422 load, 500 init: the old one serves on)."""
    if not state.ready or state.draining:
        raise AigesError(errors.INVALID_OPERATION,
                         "service is not ready (starting or draining): no reload", 503)
    if state.reload_lock.locked():
        raise AigesError(errors.INVALID_OPERATION, "a reload is already running", 409)
    async with state.reload_lock:
        try:
            result = await _replace(state, path or state.engine.path, trigger)
        except AigesError as exc:
            state.metrics.reload(False)
            _report(state, {"ok": False, "trigger": trigger, "code": exc.code,
                            "error": exc.message})
            raise
    state.metrics.reload(True)
    _report(state, {"ok": True, **result})
    return result


async def _replace(state: State, path: str, trigger: str) -> dict:
    old = state.generation
    number = old.number + 1
    log.info("reloading the engine", extra={"engine": path, "trigger": trigger,
                                            "generation": number})
    started = perf_counter()
    try:
        # Blocking (file copy, dlopen and the library's constructors, or the module's
        # top level): off the event loop.
        engine = await asyncio.to_thread(open_engine, path, True)
    except Exception as exc:  # noqa: BLE001 (whatever the new engine does, the old one serves)
        raise _failed(old, path, str(exc) or type(exc).__name__, 422) from None
    gen = new_generation(state, engine, number)
    try:
        await start(state, gen)
    except Exception as exc:  # noqa: BLE001 (the engine is closed again; the old one serves)
        why = exc.message if isinstance(exc, AigesError) else f"{type(exc).__name__}: {exc}"
        raise _failed(old, path, f"wrapperInit failed: {why}", 500) from None
    dropped = old.resources.loaded()
    install(state, gen)
    task = asyncio.get_running_loop().create_task(retire(state, old))
    state.tasks.add(task)
    task.add_done_callback(state.tasks.discard)
    result = {"engine": path, "version": gen.version, "generation": gen.number,
              "reloads": state.generations.reloads, "trigger": trigger,
              "previous": {"engine": old.engine.path, "version": old.version,
                           "generation": old.number},
              "seconds": round(perf_counter() - started, 3)}
    if dropped:
        result["resources_dropped"] = dropped
        log.warning("personalization resources are not carried over to the new engine: "
                    "load them again", extra={"res_ids": dropped})
    log.info("engine reloaded", extra=result)
    return result


def _failed(old: Generation, path: str, why: str, status: int) -> AigesError:
    log.error("engine reload failed; the old engine keeps serving",
              extra={"engine": path, "error": why, "generation": old.number,
                     "version": old.version})
    return AigesError(errors.ENGINE_INIT,
                      f"reload of {path} failed: {why} (generation {old.number}, "
                      f"{old.version or 'no version'}, keeps serving)", status)


async def retire(state: State, old: Generation) -> None:
    """The replaced generation finishes its work, then wrapperFini and close."""
    drain_s = state.config.drain_timeout_ms / 1000
    if not await old.drain(drain_s):
        log.warning("replaced engine still busy at the end of the drain time: closing its "
                    "sessions", extra={"generation": old.number,
                                       "sessions": len(old.sessions.live),
                                       "in_use": old.pool.in_use})
    await old.finish(AigesError(errors.INVALID_OPERATION, "the engine was reloaded and this "
                                "session outlived the drain time"), drain_s)
    state.generations.retired(old)
    log.info("replaced engine closed", extra={"generation": old.number,
                                              "version": old.version,
                                              "engine": old.engine.path})


def _report(state: State, result: dict) -> None:
    if state.on_reload is not None:
        state.on_reload(result)


def on_sighup(app: web.Application) -> None:
    """SIGHUP: reload the engine from its path (a file replaced there is picked up)."""
    state = app[STATE]
    task = asyncio.get_running_loop().create_task(_signalled(state))
    state.tasks.add(task)
    task.add_done_callback(state.tasks.discard)


async def _signalled(state: State) -> None:
    try:
        await reload(state, None, "signal")
    except AigesError as exc:
        if exc.http_status in (409, 503):  # refused: nothing was tried
            log.warning(f"SIGHUP ignored: {exc.message}")
        # A failure was logged by reload.


async def admin_reload(request: web.Request) -> web.Response:
    """POST /admin/reload, body optional: {"engine": "/path/to/lib.so"}."""
    state = request.app[STATE]
    try:
        if not state.config.admin_reload:
            raise AigesError(errors.FORBIDDEN, "reload by request is off: set [aiges] "
                             "adminReload = true (or --admin-reload)")
        check_admin(request, state.config.admin_token)
        path = _engine_path(await read_body(request))
        # A client that goes away does not cut a reload short: it always completes.
        task = asyncio.ensure_future(reload(state, path, "admin"))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        result = await asyncio.shield(task)
    except AigesError as exc:
        return error(exc, cors=False)
    return json_body(orjson.dumps({"header": {"code": 0, "message": "success"}, **result}),
                     cors=False)


def check_admin(request: web.Request, token: str) -> None:
    """What an admin request needs: JSON (a cross-origin page cannot send it without a
    preflight, which is refused) and, when set, the shared secret."""
    if request.content_type != "application/json":
        raise AigesError(errors.INVALID_OPERATION, "admin requests must be "
                         "Content-Type: application/json", 415)
    given = request.headers.get(ADMIN_TOKEN_HEADER, "")
    if token and not same_secret(given, token):
        raise AigesError(errors.FORBIDDEN, f"admin requests need the {ADMIN_TOKEN_HEADER} "
                         "header ([aiges] adminToken)")


def _engine_path(body: bytes) -> str | None:
    if not body.strip():
        return None
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise AigesError(errors.BAD_JSON, "the body is not JSON") from None
    engine = doc.get("engine") if isinstance(doc, dict) else None
    if engine is None:
        if isinstance(doc, dict):
            return None
        raise AigesError(errors.INVALID_PARAM, 'the body must be a JSON object: '
                         '{"engine": "/path/to/libengine.so"} or {}')
    if not isinstance(engine, str) or not engine.strip():
        raise AigesError(errors.INVALID_PARAM, "engine must be a path (a non-empty string)")
    return engine
