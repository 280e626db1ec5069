"""create_app(config, engine): the aiohttp application and the engine's lifecycle."""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiohttp import web

from aiges import errors, protocol
from aiges.config import Config
from aiges.engine import Engine
from aiges.errors import AigesError
from aiges.pool import InstancePool
from aiges.runner import Runner
from aiges.server.responses import CORS, error, json_body

log = logging.getLogger(__name__)


@dataclass
class State:
    config: Config
    engine: Engine
    runner: Runner | None = None
    ready: bool = False


STATE = web.AppKey("state", State)


def create_app(config: Config, engine: Engine) -> web.Application:
    app = web.Application(client_max_size=config.max_body)
    app[STATE] = State(config, engine)
    app.cleanup_ctx.append(_engine_lifecycle)
    base = f"/v1/{config.service}"
    app.router.add_post(base, once)
    app.router.add_get("/health", health)
    app.router.add_route("OPTIONS", "/{tail:.*}", preflight)
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app


async def _engine_lifecycle(app: web.Application):
    state = app[STATE]
    config, engine = state.config, state.engine
    pool = InstancePool(config.instances, config.queue_limit, config.wait_ms / 1000)
    runner = Runner(engine, pool, config.once_timeout_ms / 1000, config.async_mode)
    await runner.call(engine.init, config.wrapper)
    log.info("engine initialised", extra={"engine": engine.path, "version": engine.version(),
                                          "instances": pool.size})
    state.runner, state.ready = runner, True
    try:
        yield
    finally:
        state.ready = False
        try:
            # Calls that outlived their request still hold instances: fini only after them.
            await asyncio.wait_for(pool.wait_idle(), config.drain_timeout_ms / 1000)
        except TimeoutError:
            log.error("engine calls still running at shutdown", extra={"in_use": pool.in_use})
        try:
            await runner.call(engine.fini)
            log.info("engine finished (wrapperFini)")
        except AigesError as exc:
            log.error("wrapperFini failed", extra={"code": exc.code, "error": exc.message})
        runner.close()


async def once(request: web.Request) -> web.Response:
    state = request.app[STATE]
    sid = protocol.new_sid()
    try:
        body = await request.read()
        req = protocol.parse(protocol.loads(body), state.config.service,
                             state.config.header_pass, sid)
        items = await state.runner.once(req)
        return json_body(protocol.success(sid, items, req.outputs))
    except AigesError as exc:
        _log_failure(request, sid, exc)
        return error(exc, sid)
    except web.HTTPRequestEntityTooLarge as exc:
        return error(AigesError(errors.INVALID_INPUT, exc.text or "request body too large",
                                http_status=413), sid)


def _log_failure(request: web.Request, sid: str, exc: AigesError) -> None:
    level = logging.ERROR if exc.http_status >= 500 else logging.INFO
    log.log(level, "request failed", extra={"sid": sid, "route": request.path,
                                            "code": exc.code, "error": exc.message})


async def health(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if not state.ready:
        return json_body(b'{"status":"starting"}', 503)
    return json_body(b'{"status":"ok"}')


async def preflight(request: web.Request) -> web.Response:
    return web.Response(status=204, headers=CORS)


async def not_found(request: web.Request) -> web.Response:
    service = request.app[STATE].config.service
    return error(AigesError(errors.INVALID_OPERATION,
                            f"no route {request.method} {request.path}; "
                            f"one-shot requests go to POST /v1/{service}", http_status=404))
