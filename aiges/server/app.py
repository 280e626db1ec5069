"""create_app(config, engine): the aiohttp application and the engine's lifecycle."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from functools import partial
from time import perf_counter

from aiohttp import WSCloseCode, web

from aiges import errors, protocol
from aiges.config import Config
from aiges.engine import Engine
from aiges.errors import AigesError
from aiges.pool import InstancePool
from aiges.runner import Runner
from aiges.server import openapi, ops, resources, session_api
from aiges.server.responses import CORS, error, json_body, read_body
from aiges.server.state import STATE, State
from aiges.server.ws import websocket
from aiges.sessions import SessionRegistry

log = logging.getLogger(__name__)


def create_app(config: Config, engine: Engine) -> web.Application:
    app = web.Application(client_max_size=config.max_body)
    app[STATE] = State(config, engine)
    app.cleanup_ctx.append(_engine_lifecycle)
    app.on_shutdown.append(_end_sessions)
    base = f"/v1/{config.service}"
    app.router.add_post(base, once)
    app.router.add_get(base, websocket)
    app.router.add_post(f"{base}/sessions", session_api.create)
    app.router.add_post(f"{base}/sessions/{{sid}}", session_api.write)
    app.router.add_get(f"{base}/sessions/{{sid}}", session_api.poll)
    app.router.add_delete(f"{base}/sessions/{{sid}}", session_api.delete)
    resources.add_routes(app, base)
    app.router.add_get("/health", health)
    ops.add_routes(app)  # /ready, /metrics
    openapi.add_routes(app)  # /openapi.json, /docs: keep after every other route
    app.router.add_route("OPTIONS", "/{tail:.*}", preflight)
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app


async def _engine_lifecycle(app: web.Application):
    state = app[STATE]
    config, engine = state.config, state.engine
    pool = InstancePool(config.instances, config.queue_limit, config.wait_ms / 1000)
    runner = Runner(engine, pool, config.once_timeout_ms / 1000, config.async_mode,
                    state.metrics, config.inline_max_us)
    await runner.call(engine.set_ctrl, *ops.engine_callbacks(state))
    await runner.call(engine.init, config.wrapper)
    log.info("engine initialised", extra={"engine": engine.path, "version": engine.version(),
                                          "instances": pool.size})
    state.runner, state.ready = runner, True
    state.sessions = SessionRegistry(engine, runner, pool, config.session_ttl_ms / 1000,
                                     config.realtime_rlt, pushed=config.async_mode,
                                     on_end=partial(ops.session_end, state),
                                     max_sessions=config.max_sessions)
    state.metrics.watch(pool, state.sessions)
    try:
        yield
    finally:
        state.ready = False
        await state.sessions.close_all(AigesError(errors.INVALID_OPERATION, "service stopped"))
        try:
            # Calls that outlived their request still hold instances: fini only after them.
            await asyncio.wait_for(pool.wait_idle(), config.drain_timeout_ms / 1000)
        except TimeoutError:
            log.error("engine calls still running at shutdown", extra={"in_use": pool.in_use})
        try:
            await runner.call_aside(engine.fini)
            log.info("engine finished (wrapperFini)")
        except AigesError as exc:
            log.error("wrapperFini failed", extra={"code": exc.code, "error": exc.message})
        if pool.in_use:
            # Calls that only fini could end (a hang) return now: let them hand back.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pool.wait_idle(), 1.0)
        runner.close()


async def drain(app: web.Application, runner: web.AppRunner) -> None:
    """SIGTERM, before ``runner.cleanup()``: stop accepting connections, then give open
    sessions the drain time, then close their sockets (1001). Done here because
    cleanup stops reading every connection (WebSocket frames too) before its
    on_shutdown hooks run, and a session may need its client's last frames.
    In-flight once requests go on meanwhile; cleanup waits for them."""
    for site in list(runner.sites):
        await site.stop()
    await _end_sessions(app)


async def _end_sessions(app: web.Application) -> None:
    """Shutdown: open sessions get the drain time to finish, then their sockets close (1001)."""
    state = app[STATE]
    state.ready, state.draining = False, True
    if state.sessions is None or state.drained:
        return  # drain() already gave them their time
    state.drained = True
    try:
        await asyncio.wait_for(state.sessions.wait_empty(), state.config.drain_timeout_ms / 1000)
    except TimeoutError:
        log.warning("sessions still open at the end of the drain time",
                    extra={"sessions": len(state.sessions.live)})
    for ws in list(state.websockets):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"service stopping")


async def once(request: web.Request) -> web.Response:
    state = request.app[STATE]
    started = perf_counter()
    sid = protocol.new_sid()
    failure = None
    try:
        body = await read_body(request)
        req = protocol.parse(protocol.loads(body), state.config.service,
                             state.config.header_pass, sid)
        items = await state.runner.once(req)
        response = json_body(protocol.success(sid, items, req.outputs))
    except AigesError as exc:
        _log_failure(request, sid, exc, state.config.access_log)
        response, failure = error(exc, sid), exc
    ops.once_done(state, request.path, sid, started, failure)
    return response


def _log_failure(request: web.Request, sid: str, exc: AigesError, access_log: bool) -> None:
    level = logging.ERROR if exc.http_status >= 500 else logging.INFO
    if access_log and level < logging.ERROR:
        return  # the access line of the request carries the code and message
    log.log(level, "request failed", extra={"sid": sid, "route": request.path,
                                            "code": exc.code, "error": exc.message})


async def health(request: web.Request) -> web.Response:
    """Liveness: 200 while the process serves (readiness is /ready)."""
    return json_body(b'{"status":"ok"}')


async def preflight(request: web.Request) -> web.Response:
    return web.Response(status=204, headers=CORS)


async def not_found(request: web.Request) -> web.Response:
    service = request.app[STATE].config.service
    return error(AigesError(errors.INVALID_OPERATION,
                            f"no route {request.method} {request.path}; "
                            f"one-shot requests go to POST /v1/{service}", http_status=404))
