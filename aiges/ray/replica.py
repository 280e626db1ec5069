"""One Ray Serve replica: the engine, its instance pool and runner, behind the HTTP
once protocol (SPEC 3), as an ASGI ingress (FastAPI, Serve's own way) that Serve's
proxy hands requests and WebSocket handshakes to. Streaming sessions are refused:
501 with aiges' JSON, before any upgrade.

Serve places the replicas, gives each its GPUs (CUDA_VISIBLE_DEVICES), restarts the
ones that die or fail ``check_health``, and balances requests over them. A replica
is a transport over the service core (aiges.service), exactly as aiges-load's own
server is: the same once pipeline, accounting, readiness and lifecycle, routes from
the same table, so the same JSON, codes and HTTP statuses. It imports neither the
aiohttp server nor the CLI.
"""
from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import replace
from time import perf_counter

from fastapi import FastAPI
from ray import serve
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from aiges import errors, logs, protocol
from aiges.config import Config
from aiges.errors import AigesError, EngineLoadError
from aiges.loading import load_engine
from aiges.metrics import Metrics
from aiges.service import NATIVE, Answer, Pending, Phase, Service, once, readiness, routes
from aiges.service.routes import CORS, Route

log = logging.getLogger(__name__)

# Which replica answered, on every response: Serve's replica id, the Ray node it runs
# on and its pid (the header aiges-load --workers uses for the process).
REPLICA_HEADER = "X-Aiges-Replica"
NODE_HEADER = "X-Aiges-Node"
WORKER_HEADER = "X-Aiges-Worker"

OK = b'{"status":"ok"}'
# The session API's routes: refused (501) whatever the method, not unknown (404).
SESSION_API = ("createSession", "writeSession", "pollSession", "deleteSession")


class FullPaths:
    """Serve mounts the app at its route prefix (root_path), where /v1/{service} itself
    would be the path "" and match no route (FastAPI takes none such): route on the full
    path instead. Starlette versions differ in whether scope["path"] keeps the prefix."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            path, root = scope.get("path", ""), scope.get("root_path", "")
            scope = {**scope, "path": path if path.startswith(root) else root + path,
                     "root_path": ""}
        await self.app(scope, receive, send)


# Serve hands a plain deployment class only HTTP requests: a WebSocket handshake failed
# inside Serve with a bare 500 before any code of ours ran. An ASGI ingress sees both;
# every path and method goes to one handler each, and aiges routes as before.
ROUTES = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
ROUTES.add_middleware(FullPaths)
ANY_PATH = "/{tail:path}"
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
NOT_HERE = ("streaming sessions (WebSocket and /sessions) are not served through Ray Serve, "
            "which balances each request on its own while a session lives in one process: "
            "run aiges-load --workers N on each machine, behind a sticky load balancer")


class EngineReplica:
    """The deployment class (``aiges.ray.application`` wraps it with serve.deployment)."""

    async def __init__(self, engine_path: str, config: Config):
        # A replica is a process of Ray's: nothing else sets up the aiges loggers here.
        logs.configure(config.log_level)
        self.config = config
        self.route = routes.service_base(config.service)
        self.routes = replica_routes(config.service)
        self.service: Service | None = None
        self.headers = {**CORS, **_identity()}
        self.service = await _start(engine_path, config)

    @ROUTES.api_route(ANY_PATH, methods=METHODS)
    async def http(self, request: Request) -> Response:
        path, method = request.scope["path"], request.method
        name = route_name(self.routes, method, path)
        if name == "once":
            return await self.once(request)
        if name in SESSION_API:
            return self._error(AigesError(errors.INVALID_OPERATION, NOT_HERE, http_status=501))
        if method == "OPTIONS":
            return Response(status_code=204, headers=self.headers)
        if name == "health":
            return self._json(OK)
        if name == "ready":
            status, body = readiness(self.service)
            return self._json(body, status)
        return self._error(AigesError(
            errors.INVALID_OPERATION,
            f"no route {method} {path}; one-shot requests go to POST {self.route} "
            f"(streaming sessions are not served through Ray Serve)", http_status=404))

    @ROUTES.websocket(ANY_PATH)
    async def websocket(self, ws: WebSocket) -> None:
        """Refused before the upgrade, with the JSON and status of an HTTP error when the
        proxy's server can send one (uvicorn does), else a close with the text."""
        refusal = AigesError(errors.INVALID_OPERATION, NOT_HERE, http_status=501)
        if "websocket.http.response" in ws.scope.get("extensions", {}):
            await ws.send_denial_response(self._error(refusal))
        else:
            await ws.close(code=1008, reason="streaming sessions are not served through Ray")

    async def once(self, request: Request) -> Response:
        """The core's once pipeline; only the body's size limit is this transport's."""
        started = perf_counter()
        path = request.scope["path"]
        try:
            body = await self._body(request)
        except AigesError as exc:
            return self._answer(once.failed(self.service, path, started, protocol.new_sid(),
                                            exc))
        answer = once.begin(self.service, NATIVE, body, path, started)
        if isinstance(answer, Pending):
            answer = await answer.finish()
        return self._answer(answer)

    async def check_health(self) -> None:
        """Ray Serve calls this periodically; raising makes Serve replace the replica.
        Unhealthy (the core's readiness): the engine is not up, its own health check
        fails, or every instance is stuck in a call that outlived its request (a hung
        engine: only a new process brings it back). Not while it stops."""
        status, body = readiness(self.service)
        if status != 200 and self.service.lifecycle.phase not in (Phase.DRAINING,
                                                                  Phase.STOPPED):
            raise RuntimeError(f"engine not serving: {body.decode()}")

    async def __del__(self):
        """Serve's graceful shutdown: after in-flight requests (graceful_shutdown_timeout_s),
        the service closes (wrapperFini). The ingress wrapper's own __del__ awaits this one."""
        service = getattr(self, "service", None)
        if service is None or service.lifecycle.phase is Phase.STOPPED:
            return
        await service.lifecycle.close()

    # --- helpers -------------------------------------------------------------------

    async def _body(self, request: Request) -> bytes:
        limit = self.config.max_body
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        body = await request.body()
        if len(body) > limit:
            raise _too_large(limit)
        return body

    def _json(self, body: bytes, status: int = 200, extra: dict | None = None) -> Response:
        headers = {**self.headers, **extra} if extra else self.headers
        return Response(body, status_code=status, headers=headers,
                        media_type="application/json")

    def _answer(self, answer: Answer) -> Response:
        return self._json(answer.body, answer.status, answer.headers)

    def _error(self, exc: AigesError, sid: str = "") -> Response:
        return self._answer(once.error_answer(exc, sid))


def replica_routes(service: str) -> list[Route]:
    """What a replica answers, from the route table: once requests at their path; health
    and readiness under the route prefix (Serve's proxy only sends a replica the paths
    under it); the session API, to refuse it."""
    base = routes.service_base(service)
    served = []
    for route in routes.table(service):
        if route.name == "once" or route.name in SESSION_API:
            served.append(route)
        elif route.name in ("health", "ready"):
            served.append(replace(route, path=base + route.path))
    return served


def route_name(table: list[Route], method: str, path: str) -> str | None:
    for route in table:
        if route.matches(path) and (route.method == method or route.name in SESSION_API):
            return route.name
    return None


async def _start(engine_path: str, config: Config) -> Service:
    """The engine loaded and the service started; a failure becomes a RuntimeError with
    the loader's text, which Serve reports as the replica's (and deployment's) error."""
    try:
        engine = await asyncio.to_thread(load_engine, engine_path)
    except EngineLoadError as exc:
        raise RuntimeError(f"cannot load the engine: {exc}") from None
    service = Service.create(config, engine, metrics=Metrics(process=False))
    try:
        await service.lifecycle.start()
    except AigesError as exc:
        raise RuntimeError(f"engine start-up failed: {exc.message} (code {exc.code})") from None
    return service


def _identity() -> dict[str, str]:
    import ray

    return {REPLICA_HEADER: serve.get_replica_context().replica_tag,
            NODE_HEADER: ray.get_runtime_context().get_node_id(),
            WORKER_HEADER: str(os.getpid())}


def _too_large(limit: int) -> AigesError:
    return AigesError(errors.INVALID_INPUT, f"request body larger than {limit} bytes",
                      http_status=413)


# Last: serve.ingress pickles the routes, and with them what of this module they use,
# which must all be defined by then.
EngineReplica = serve.ingress(ROUTES)(EngineReplica)
