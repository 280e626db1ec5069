"""The Open Inference Protocol over HTTP, on the service's own port (docs/OIP.md):

GET  /v2                              server metadata
GET  /v2/health/live, /v2/health/ready
GET  /v2/models/{model}               model metadata (from the schema /openapi.json shows)
GET  /v2/models/{model}/ready
GET  /v2/models/{model}/config        Triton's model configuration (perf_analyzer reads it)
POST /v2/models/{model}/infer         JSON tensors, or the binary tensor extension
and the model routes again under /v2/models/{model}/versions/1/.

Thin: bytes to the once pipeline (aiges.service.once with an OipSpec) and back. Errors
are {"error": text, "code": aiges code, "sid": S} with the native route's HTTP status.
"""
from __future__ import annotations

import contextlib
from time import perf_counter

from aiohttp import web

from aiges import errors, protocol
from aiges.errors import AigesError
from aiges.oip import model as oip_model
from aiges.oip.model import check_model
from aiges.oip.spec import HEADER_LENGTH, OipSpec, error_doc
from aiges.server.responses import answer_response, json_body, read_body
from aiges.server.state import STATE
from aiges.service import Pending, Service, once
from aiges.service.health import readiness as service_readiness

MODELS = web.AppKey("oip_models", oip_model.Models)


def setup(app: web.Application) -> None:
    """What the /v2 handlers share, and the gRPC server's life (after the engine's:
    registered later)."""
    app[MODELS] = oip_model.Models()
    app.cleanup_ctx.append(_grpc)


async def _grpc(app: web.Application):
    if not app[STATE].config.grpc_port:
        yield
        return
    from aiges.oip.grpc_server import lifecycle  # grpc loads only where it serves
    async with contextlib.asynccontextmanager(lifecycle)(app):
        yield


def grpc_port(app: web.Application) -> int:
    """The port gRPC listens on; 0 when off."""
    if not app[STATE].config.grpc_port:
        return 0
    from aiges.oip.grpc_server import GRPC
    server = app.get(GRPC)
    return server.port if server is not None else 0


async def drain(app: web.Application) -> None:
    """SIGTERM: gRPC takes no new calls; running ones get the drain time."""
    if app[STATE].config.grpc_port:
        from aiges.oip.grpc_server import drain as grpc_drain
        await grpc_drain(app)


def readiness(app: web.Application) -> tuple[int, bytes]:
    """(HTTP status, body) of /ready: the core's, the same for every transport."""
    return service_readiness(app[STATE])


def current_model(app: web.Application) -> oip_model.Model:
    state = app[STATE]
    return app[MODELS].get(state.config, state.engine)


def _model(request: web.Request) -> oip_model.Model:
    """The model a route names: this service's, else 404."""
    model = current_model(request.app)
    name = request.match_info["model"]
    check_model(model, name, request.match_info.get("version", ""))
    return model


def _error(exc: AigesError, sid: str = "") -> web.Response:
    return json_body(protocol.dumps(error_doc(exc, sid)), exc.http_status)


async def server_metadata(request: web.Request) -> web.Response:
    return json_body(protocol.dumps(oip_model.server_metadata()))


async def live(request: web.Request) -> web.Response:
    return json_body(b'{"live":true}')


async def server_ready(request: web.Request) -> web.Response:
    status, body = readiness(request.app)
    return json_body(body, status)


async def model_metadata(request: web.Request) -> web.Response:
    return _described(request, oip_model.Model.metadata)


async def model_ready(request: web.Request) -> web.Response:
    try:
        _model(request)
    except AigesError as exc:
        return _error(exc)
    status, body = readiness(request.app)
    return json_body(body, status)


async def model_config(request: web.Request) -> web.Response:
    return _described(request, oip_model.Model.config)


def _described(request: web.Request, describe) -> web.Response:
    """The addressed model's ``describe(model)`` (metadata, config), or its error."""
    try:
        return json_body(protocol.dumps(describe(_model(request))))
    except AigesError as exc:
        return _error(exc)


async def infer(request: web.Request) -> web.Response:
    state: Service = request.app[STATE]
    started = perf_counter()
    spec = None
    try:
        spec = OipSpec(_model(request), _header_length(request))
        body = await read_body(request)
    except AigesError as exc:
        return answer_response(once.failed(state, request.path, started, protocol.new_sid(),
                                           exc, spec or _ERRORS))
    answer = once.begin(state, spec, body, request.path, started, carrier=request.headers)
    if isinstance(answer, Pending):
        answer = await answer.finish()
    return answer_response(answer)


class _ErrorSpec:
    """Answers a request refused before its spec could be made (unknown model)."""

    headers = None

    @staticmethod
    def failure(exc: AigesError, sid: str) -> bytes:
        return protocol.dumps(error_doc(exc, sid))


_ERRORS = _ErrorSpec()


def _header_length(request: web.Request) -> int | None:
    value = request.headers.get(HEADER_LENGTH)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise AigesError(errors.BAD_JSON, f"{HEADER_LENGTH} must be a number, "
                                          f"got {value!r}") from None


# Route names (aiges.service.routes.oip_routes) -> handlers; the versioned routes share them.
HANDLERS = {"oipServerMetadata": server_metadata, "oipLive": live,
            "oipServerReady": server_ready}
for _suffix in ("", "Version"):
    HANDLERS.update({f"oipModelMetadata{_suffix}": model_metadata,
                     f"oipModelReady{_suffix}": model_ready,
                     f"oipModelConfig{_suffix}": model_config,
                     f"oipInfer{_suffix}": infer})
