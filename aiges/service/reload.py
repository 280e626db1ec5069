"""Hot reload: SIGHUP or ``POST /admin/reload`` (aiges/server/reload.py) replaces the
engine without downtime. Also how generation 1 starts (aiges.service.lifecycle).

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

from aiges import errors
from aiges.errors import AigesError
from aiges.generation import Generation, open_engine
from aiges.service.accounting import engine_callbacks, session_end
from aiges.service.core import Service

log = logging.getLogger(__name__)


def new_generation(service: Service, engine, number: int) -> Generation:
    return Generation(number, engine, service.config, service.metrics,
                      partial(session_end, service), service.board)


async def start(service: Service, gen: Generation) -> None:
    """wrapperSetCtrl and wrapperInit of a new generation (closed again if init fails)."""
    await gen.start(service.config.wrapper, engine_callbacks(service))


def install(service: Service, gen: Generation) -> Generation | None:
    """``gen`` serves new work from now on; returns the generation it replaced."""
    generations = service.generations
    old = generations.swap(gen)
    metrics = service.metrics
    metrics.watch(gen.pool, generations)  # sessions: every generation's open ones
    if service.tracing is not None:
        service.tracing.watch(gen.runner)  # after metrics.watch: both see the queue waits
    metrics.engines_retiring.set_function(lambda: len(generations.retiring))
    metrics.engine(gen.version, gen.engine.path, gen.number)
    engine = gen.engine.path if service.config.health_detail else os.path.basename(gen.engine.path)
    service.health = orjson.dumps({"status": "ok", "engine": engine,
                                   "version": gen.version, "generation": gen.number,
                                   "reloads": generations.reloads})
    return old


async def reload(service: Service, path: str | None = None, trigger: str = "admin") -> dict:
    """Replace the current engine with ``path`` (default: the current engine's path,
    opened again). The answer describes the new generation; AigesError when refused
    (409 busy, 503 not ready) or failed (422 load, 500 init: the old one serves on)."""
    if not service.lifecycle.accepting:
        raise AigesError(errors.INVALID_OPERATION,
                         "service is not ready (starting or draining): no reload", 503)
    if service.reload_lock.locked():
        raise AigesError(errors.INVALID_OPERATION, "a reload is already running", 409)
    async with service.reload_lock:
        try:
            result = await _replace(service, path or service.engine.path, trigger)
        except AigesError as exc:
            service.metrics.reload(False)
            _report(service, {"ok": False, "trigger": trigger, "code": exc.code,
                            "error": exc.message})
            raise
    service.metrics.reload(True)
    _report(service, {"ok": True, **result})
    return result


async def _replace(service: Service, path: str, trigger: str) -> dict:
    old = service.generation
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
    gen = new_generation(service, engine, number)
    try:
        await start(service, gen)
    except Exception as exc:  # noqa: BLE001 (the engine is closed again; the old one serves)
        why = exc.message if isinstance(exc, AigesError) else f"{type(exc).__name__}: {exc}"
        raise _failed(old, path, f"wrapperInit failed: {why}", 500) from None
    dropped = old.resources.loaded()
    install(service, gen)
    task = asyncio.get_running_loop().create_task(retire(service, old))
    service.tasks.add(task)
    task.add_done_callback(service.tasks.discard)
    result = {"engine": path, "version": gen.version, "generation": gen.number,
              "reloads": service.generations.reloads, "trigger": trigger,
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


async def retire(service: Service, old: Generation) -> None:
    """The replaced generation finishes its work, then wrapperFini and close."""
    drain_s = service.config.drain_timeout_ms / 1000
    if not await old.drain(drain_s):
        log.warning("replaced engine still busy at the end of the drain time: closing its "
                    "sessions", extra={"generation": old.number,
                                       "sessions": len(old.sessions.live),
                                       "in_use": old.pool.in_use})
    await old.finish(AigesError(errors.INVALID_OPERATION, "the engine was reloaded and this "
                                "session outlived the drain time"), drain_s)
    service.generations.retired(old)
    log.info("replaced engine closed", extra={"generation": old.number,
                                              "version": old.version,
                                              "engine": old.engine.path})


def _report(service: Service, result: dict) -> None:
    if service.on_reload is not None:
        service.on_reload(result)


def on_signal(service: Service) -> None:
    """SIGHUP: reload the engine from its path (a file replaced there is picked up)."""
    task = asyncio.get_running_loop().create_task(_signalled(service))
    service.tasks.add(task)
    task.add_done_callback(service.tasks.discard)


async def _signalled(service: Service) -> None:
    try:
        await reload(service, None, "signal")
    except AigesError as exc:
        if exc.http_status in (409, 503):  # refused: nothing was tried
            log.warning(f"SIGHUP ignored: {exc.message}")
        # A failure was logged by reload.
