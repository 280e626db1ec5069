"""create_app(config, engine): the aiohttp application, a transport over the service
core (aiges.service): its routes come from the one route table, its handlers turn
requests into the core's calls and answers into responses."""
from __future__ import annotations

import asyncio
import logging
from time import perf_counter

from aiohttp import WSCloseCode, web

from aiges import errors, protocol, tracing
from aiges.config import Config
from aiges.engine import Engine
from aiges.errors import AigesError
from aiges.server import docs, gone, oip, openapi, ops, reload, resources, session_api
from aiges.server.listen import Listener
from aiges.server.responses import SERVER, CORS, answer_response, error, json_body, read_body
from aiges.server.state import STATE, WEBSOCKETS
from aiges.server.ws import ping, websocket
from aiges.service import NATIVE, Pending, Service, once, routes

log = logging.getLogger(__name__)


def create_app(config: Config, engine: Engine) -> web.Application:
    app = web.Application(client_max_size=config.max_body)
    app[STATE] = service = Service.create(config, engine,
                                          aliases=service_aliases(config, engine),
                                          tracing=tracing.from_env(config.service))
    app[WEBSOCKETS] = set()
    app.cleanup_ctx.append(_engine_lifecycle)
    app.on_cleanup.append(_close_tracing)  # after the engine's end: its last spans too
    app.on_shutdown.append(_end_sessions)
    app.on_response_prepare.append(_server_header)
    openapi.setup(app)  # /openapi.json is built once the engine is up
    oip.setup(app)  # /v2's models, and the gRPC server's life (after the engine's)
    for route in routes.table(config.service, service.aliases):
        handler = HANDLERS[route.name]
        if route.method == "GET":
            app.router.add_get(route.path, handler)  # HEAD too, as aiohttp does
        else:
            app.router.add_route(route.method, route.path, handler)
    app.router.add_route("OPTIONS", "/{tail:.*}", preflight)
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app


def service_aliases(config: Config, engine: Engine) -> list[str]:
    """The engine's declared routes that serve besides /v1/{service} (routes.aliases);
    the others are logged."""
    served, refused = routes.aliases(config.service, engine.routes)
    for route in refused:
        log.warning("the engine's declared route is not served", extra={
            "route": route, "why": "taken, or not a plain path (letters, digits, "
                                   "- _ . / only)"})
    return served


async def _engine_lifecycle(app: web.Application):
    lifecycle = app[STATE].lifecycle
    await lifecycle.start()
    try:
        yield
    finally:
        await lifecycle.close()


async def _close_tracing(app: web.Application) -> None:
    if app[STATE].tracing is not None:
        await app[STATE].tracing.close()


async def drain(app: web.Application, listener: Listener) -> None:
    """SIGTERM, before ``runner.cleanup()``: stop accepting connections, then give open
    sessions and the fast path's requests the drain time, then close their sockets
    (sessions with 1001). Done here because cleanup stops reading every aiohttp
    connection (WebSocket frames too) before its on_shutdown hooks run, and a session
    may need its client's last frames. aiohttp's in-flight once requests go on
    meanwhile; cleanup waits for them."""
    await asyncio.gather(listener.stop(app[STATE].config.drain_timeout_ms / 1000),
                         _end_sessions(app), oip.drain(app))


async def _end_sessions(app: web.Application) -> None:
    """Shutdown: open sessions get the drain time to finish (the lifecycle's drain),
    then their sockets close (1001)."""
    if not await app[STATE].lifecycle.drain():
        return  # drain() already gave them their time
    for ws in list(app[WEBSOCKETS]):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"service stopping")


async def post_once(request: web.Request) -> web.Response:
    service = request.app[STATE]
    started = perf_counter()
    try:
        body = await read_body(request)
    except AigesError as exc:
        return answer_response(once.failed(service, request.path, started, protocol.new_sid(),
                                           exc))
    answer = once.begin(service, NATIVE, body, request.path, started,
                        carrier=request.headers)
    if isinstance(answer, Pending):
        answer = await gone.finish(request, service, answer)  # given up if the client leaves
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


# Every route of the table, by name: what serves it here.
HANDLERS = {
    "once": post_once, "websocket": websocket,
    "createSession": session_api.create, "writeSession": session_api.write,
    "pollSession": session_api.poll, "deleteSession": session_api.delete,
    "loadResource": resources.load, "listResources": resources.listing,
    "unloadResource": resources.unload,
    "health": health, "ping": ping, "ready": ops.ready, "metrics": ops.metrics,
    "reloadEngine": reload.admin_reload, "openapi": openapi.serve,
    "docs": docs.page, "docsAsset": docs.asset,
    **oip.HANDLERS,  # /v2/... (the Open Inference Protocol)
}
