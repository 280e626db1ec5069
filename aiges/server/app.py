"""create_app(config, engine): the aiohttp application and the engine's lifecycle."""
from __future__ import annotations

import asyncio
import logging
import re
from time import perf_counter

from aiohttp import WSCloseCode, web

from aiges import errors, protocol
from aiges import schema as engine_schema
from aiges.config import Config
from aiges.engine import Engine
from aiges.errors import AigesError
from aiges.server import gone, once, openapi, ops, reload, resources, session_api
from aiges.server.listen import Listener
from aiges.server.responses import SERVER, CORS, answer_response, error, json_body, read_body
from aiges.server.state import STATE, State
from aiges.server.ws import ping, websocket

log = logging.getLogger(__name__)
ROUTE = re.compile(r"(/[A-Za-z0-9._-]+)+")


def create_app(config: Config, engine: Engine) -> web.Application:
    app = web.Application(client_max_size=config.max_body)
    # Enums of [schema] only: upstream never checked a wrapper's declared ones, and
    # its clients may send other values.
    app[STATE] = State(config, engine, aliases=service_aliases(config, engine),
                       enums=engine_schema.enums(config.schema))
    app.cleanup_ctx.append(_engine_lifecycle)
    app.on_shutdown.append(_end_sessions)
    app.on_response_prepare.append(_server_header)
    base = f"/v1/{config.service}"
    _service_routes(app, base)
    resources.add_routes(app, base)
    app.router.add_get("/health", health)
    app.router.add_get("/ping", ping)  # upstream's WebSocket echo
    ops.add_routes(app)  # /ready, /metrics
    reload.add_routes(app)  # /admin/reload
    openapi.add_routes(app)  # /openapi.json, /docs: keep after every other route
    for alias in app[STATE].aliases:  # after every fixed route: those win a clash
        _service_routes(app, alias)
    app.router.add_route("OPTIONS", "/{tail:.*}", preflight)
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app


def _service_routes(app: web.Application, base: str) -> None:
    """One-shot requests, WebSocket and HTTP sessions under ``base``."""
    app.router.add_post(base, post_once)
    app.router.add_get(base, websocket)
    app.router.add_post(f"{base}/sessions", session_api.create)
    app.router.add_post(f"{base}/sessions/{{sid}}", session_api.write)
    app.router.add_get(f"{base}/sessions/{{sid}}", session_api.poll)
    app.router.add_delete(f"{base}/sessions/{{sid}}", session_api.delete)


def service_aliases(config: Config, engine: Engine) -> list[str]:
    """The routes the engine declares for itself (a Python wrapper's, upstream's
    ``/{version}/private/{serviceId}``) that can serve besides /v1/{service}: plain
    paths that take no route of ours."""
    ours = {f"/v1/{config.service}", "/health", "/ready", "/metrics", "/ping", "/docs",
            "/openapi.json", reload.PATH}
    aliases = []
    for route in engine.routes:
        path = "/" + route.strip("/")
        if path in ours or path in aliases or path.startswith("/docs/") or \
                not ROUTE.fullmatch(path) or path.startswith(f"/v1/{config.service}/"):
            log.warning("the engine's declared route is not served", extra={
                "route": route, "why": "taken, or not a plain path (letters, digits, "
                                       "- _ . / only)"})
            continue
        aliases.append(path)
    return aliases


async def _engine_lifecycle(app: web.Application):
    state = app[STATE]
    gen = reload.new_generation(state, state.first_engine, 1)
    await reload.start(state, gen)
    log.info("engine initialised", extra={"engine": gen.engine.path, "version": gen.version,
                                          "instances": gen.pool.size})
    reload.install(state, gen)
    state.ready = True
    health = app[ops.HEALTH]
    health.start()  # [aiges] healthIntervalS: wrapperHealth polls, off the loop
    try:
        yield
    finally:
        state.ready = False
        await health.stop()
        async with state.reload_lock:  # a reload under way completes (init cannot be cut short)
            generations = state.generations.all()
        # Each generation once: the current one and any replaced one still retiring.
        stopped = AigesError(errors.INVALID_OPERATION, "service stopped")
        # Within what is left of the drain time (sessions had it already), at least a
        # moment for sessions to be destroyed.
        await asyncio.gather(*(g.finish(stopped, max(state.drain_left(), 0.5))
                               for g in generations))
        state.clean = all(g.clean for g in generations) and not state.generations.left_running
        if state.tasks:
            await asyncio.gather(*state.tasks, return_exceptions=True)


async def drain(app: web.Application, listener: Listener) -> None:
    """SIGTERM, before ``runner.cleanup()``: stop accepting connections, then give open
    sessions and the fast path's requests the drain time, then close their sockets
    (sessions with 1001). Done here because cleanup stops reading every aiohttp
    connection (WebSocket frames too) before its on_shutdown hooks run, and a session
    may need its client's last frames. aiohttp's in-flight once requests go on
    meanwhile; cleanup waits for them."""
    await asyncio.gather(listener.stop(app[STATE].config.drain_timeout_ms / 1000),
                         _end_sessions(app))


async def _end_sessions(app: web.Application) -> None:
    """Shutdown: open sessions get the drain time to finish, then their sockets close (1001)."""
    state = app[STATE]
    state.ready, state.draining = False, True
    if state.generation is None or state.drained:
        return  # drain() already gave them their time
    state.drained = True
    try:
        await asyncio.wait_for(state.generations.wait_sessions_ended(),
                               state.config.drain_timeout_ms / 1000)
    except TimeoutError:
        log.warning("sessions still open at the end of the drain time",
                    extra={"sessions": len(state.generations.live)})
    for ws in list(state.websockets):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"service stopping")


async def post_once(request: web.Request) -> web.Response:
    state = request.app[STATE]
    started = perf_counter()
    try:
        body = await read_body(request)
    except AigesError as exc:
        return answer_response(once.failed(state, request.path, started, protocol.new_sid(),
                                           exc))
    answer = once.begin(state, body, request.path, started)
    if isinstance(answer, once.Pending):
        answer = await gone.finish(request, state, answer)  # given up if the client leaves
    return answer_response(answer)


async def health(request: web.Request) -> web.Response:
    """Liveness: 200 while the process serves (readiness is /ready), with the engine's
    path, wrapperVersion, generation and reload count."""
    return json_body(request.app[STATE].health)


async def preflight(request: web.Request) -> web.Response:
    if request.path.startswith("/admin"):
        return web.Response(status=204)  # no CORS: other origins may not call admin routes
    return web.Response(status=204, headers=CORS)


async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = SERVER  # not aiohttp's, with Python's and its versions


async def not_found(request: web.Request) -> web.Response:
    service = request.app[STATE].config.service
    return error(AigesError(errors.INVALID_OPERATION,
                            f"no route {request.method} {request.path}; "
                            f"one-shot requests go to POST /v1/{service}; every route is "
                            f"described at /docs", http_status=404))
