"""One Ray Serve replica: the engine, its instance pool and runner, behind the HTTP
once protocol (SPEC 3), as an ASGI ingress (FastAPI, Serve's own way) that Serve's
proxy hands requests and WebSocket handshakes to. Streaming sessions are refused:
501 with aiges' JSON, before any upgrade.

Serve places the replicas, gives each its GPUs (CUDA_VISIBLE_DEVICES), restarts the
ones that die or fail ``check_health``, and balances requests over them. A replica
holds one engine generation (aiges.generation) exactly as aiges-load's own server
does, and answers with the same JSON, codes and HTTP statuses.
"""
from __future__ import annotations

import asyncio
import logging
import os
from time import perf_counter

from fastapi import FastAPI
from ray import serve
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from aiges import errors, logs, protocol
from aiges.config import Config
from aiges.errors import AigesError
from aiges.generation import Generation
from aiges.metrics import Metrics
from aiges.pool import NoInstance
from aiges.server.ops import account_once, trace
from aiges.server.responses import CORS

log = logging.getLogger(__name__)

# Which replica answered, on every response: Serve's replica id, the Ray node it runs
# on and its pid (the header aiges-load --workers uses for the process).
REPLICA_HEADER = "X-Aiges-Replica"
NODE_HEADER = "X-Aiges-Node"
WORKER_HEADER = "X-Aiges-Worker"

OK = b'{"status":"ok"}'
STARTING = b'{"status":"starting"}'
DRAINING = b'{"status":"draining"}'
READY = b'{"status":"ready"}'
STUCK = b'{"status":"stuck"}'


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
        self.route = f"/v1/{config.service}"
        self.metrics = Metrics(process=False)
        self.generation: Generation | None = None
        self.stopping = False
        self.headers = {**CORS, **_identity()}
        self.generation = await _start(engine_path, config, self.metrics)

    @ROUTES.api_route(ANY_PATH, methods=METHODS)
    async def http(self, request: Request) -> Response:
        path, method = request.scope["path"], request.method
        if path == self.route and method == "POST":
            return await self.once(request)
        if path.startswith(f"{self.route}/sessions"):
            return self._error(AigesError(errors.INVALID_OPERATION, NOT_HERE, http_status=501))
        if method == "OPTIONS":
            return Response(status_code=204, headers=self.headers)
        if method == "GET" and path == f"{self.route}/health":
            return self._json(OK)
        if method == "GET" and path == f"{self.route}/ready":
            status, body = self._readiness()
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
        started = perf_counter()
        sid = protocol.new_sid()
        failure = None
        try:
            gen = self.generation
            if gen is None or self.stopping:
                raise AigesError(errors.INVALID_OPERATION, "replica stopping", http_status=503)
            body = await self._body(request)
            req = protocol.parse(protocol.loads(body), self.config.service,
                                 self.config.header_pass, sid)
            items = await gen.runner.once(req)
            response = self._json(protocol.success(sid, items, req.outputs))
        except AigesError as exc:
            response, failure = self._error(exc, sid), exc
        self._account(request, sid, started, failure)
        return response

    async def check_health(self) -> None:
        """Ray Serve calls this periodically; raising makes Serve replace the replica.
        Unhealthy: the engine is not up, or every instance is stuck in a call that
        outlived its request (a hung engine: only a new process brings it back)."""
        status, body = self._readiness()
        if status != 200 and not self.stopping:
            raise RuntimeError(f"engine not serving: {body.decode()}")

    async def __del__(self):
        """Serve's graceful shutdown: after in-flight requests (graceful_shutdown_timeout_s),
        wrapperFini. The ingress wrapper's own __del__ awaits this one."""
        gen, self.generation = getattr(self, "generation", None), None
        if gen is None:
            return
        self.stopping = True
        stopped = AigesError(errors.INVALID_OPERATION, "service stopped")
        await gen.finish(stopped, self.config.drain_timeout_ms / 1000)

    # --- helpers -------------------------------------------------------------------

    def _readiness(self) -> tuple[int, bytes]:
        if self.stopping:
            return 503, DRAINING
        if self.generation is None:
            return 503, STARTING
        if not self.generation.pool.usable:
            return 503, STUCK
        return 200, READY

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

    def _error(self, exc: AigesError, sid: str = "") -> Response:
        extra = {"Retry-After": str(exc.retry_after)} if isinstance(exc, NoInstance) else None
        return self._json(protocol.failure(exc.code, exc.message, sid), exc.http_status, extra)

    def _account(self, request: Request, sid: str, started: float,
                 failure: AigesError | None) -> None:
        """The request in the metrics and the logs, as aiges-load's server does."""
        account_once(self.metrics, self.config.access_log, request.scope["path"], sid, started,
                     failure)


async def _start(engine_path: str, config: Config, metrics: Metrics) -> Generation:
    """The engine loaded and initialised; a failure becomes a RuntimeError with the
    loader's text, which Serve reports as the replica's (and deployment's) error."""
    from aiges.cli import load_engine
    from aiges.errors import EngineLoadError

    try:
        engine = await asyncio.to_thread(load_engine, engine_path)
    except EngineLoadError as exc:
        raise RuntimeError(f"cannot load the engine: {exc}") from None
    gen = Generation(1, engine, config, metrics, on_session_end=lambda end: None)

    def meter(sid: str, key: str, count: int) -> None:
        metrics.meter(key, count)

    try:
        await gen.start(config.wrapper, (meter, trace))
    except AigesError as exc:
        raise RuntimeError(f"engine start-up failed: {exc.message} (code {exc.code})") from None
    log.info("engine initialised", extra={"engine": engine.path, "version": gen.version,
                                          "instances": gen.pool.size})
    return gen


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
