"""The Open Inference Protocol over gRPC (grpc.aio) on ``[grpc] port``, on the service's
event loop: started once the engine is up, stopped at shutdown after a drain (no new
calls, running ones get the drain time). Service ``inference.GRPCInferenceService``
of the vendored grpc_service.proto: ServerLive, ServerReady, ModelReady,
ServerMetadata, ModelMetadata, ModelConfig, ModelInfer and ModelStreamInfer (a
session); the others answer UNIMPLEMENTED.

ModelInfer takes and gives bytes: the once pipeline parses and renders them
(aiges.oip.grpc_spec), exactly as it does the HTTP routes' bodies.
"""
from __future__ import annotations

import logging
from time import perf_counter

import grpc
from aiohttp import web
from google.protobuf import json_format

from aiges import errors
from aiges.errors import AigesError
from aiges.oip import grpc_stream
from aiges.oip.grpc_spec import GrpcSpec
from aiges.server.oip import current_model, readiness
from aiges.oip.model import check_model, server_metadata
from aiges.oip.proto import grpc_service_pb2 as pb
from aiges.oip.proto import model_config_pb2
from aiges.service import Pending, once
from aiges.server.state import STATE

log = logging.getLogger(__name__)
SERVICE = "inference.GRPCInferenceService"

# The error table: an aiges error's HTTP status (aiges.errors.HTTP_STATUS) -> gRPC status.
GRPC_STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    408: grpc.StatusCode.DEADLINE_EXCEEDED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    500: grpc.StatusCode.INTERNAL,
    501: grpc.StatusCode.UNIMPLEMENTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def grpc_status(http_status: int) -> grpc.StatusCode:
    return GRPC_STATUS.get(http_status, grpc.StatusCode.UNKNOWN)


class GrpcServer:
    def __init__(self, app: web.Application):
        self.app = app
        self.state = app[STATE]
        self.server: grpc.aio.Server | None = None
        self.port = 0

    async def start(self) -> int:
        config = self.state.config
        self.server = grpc.aio.server(options=[
            ("grpc.max_receive_message_length", config.max_body),
            ("grpc.max_send_message_length", -1),
            # Workers share the port, as they share the HTTP one.
            ("grpc.so_reuseport", 1 if config.workers > 1 else 0)])
        self.server.add_generic_rpc_handlers((self._handlers(),))
        host = f"[{config.host}]" if ":" in config.host else config.host
        try:
            self.port = self.server.add_insecure_port(f"{host}:{config.grpc_port}")
        except RuntimeError:  # grpcio's "Failed to bind"
            self.port = 0
        if not self.port:
            raise OSError(f"gRPC cannot listen on {host}:{config.grpc_port} (in use?)")
        await self.server.start()
        return self.port

    async def stop(self, grace_s: float) -> None:
        """No new calls from now; running ones get ``grace_s``, then are cancelled."""
        server, self.server = self.server, None
        if server is not None:
            await server.stop(grace_s)

    def _handlers(self):
        def unary(fn, req, resp):
            return grpc.unary_unary_rpc_method_handler(
                fn, request_deserializer=req.FromString,
                response_serializer=resp.SerializeToString)

        return grpc.method_handlers_generic_handler(SERVICE, {
            "ServerLive": unary(self.server_live, pb.ServerLiveRequest, pb.ServerLiveResponse),
            "ServerReady": unary(self.server_ready, pb.ServerReadyRequest,
                                 pb.ServerReadyResponse),
            "ModelReady": unary(self.model_ready, pb.ModelReadyRequest, pb.ModelReadyResponse),
            "ServerMetadata": unary(self.server_metadata, pb.ServerMetadataRequest,
                                    pb.ServerMetadataResponse),
            "ModelMetadata": unary(self.model_metadata, pb.ModelMetadataRequest,
                                   pb.ModelMetadataResponse),
            "ModelConfig": unary(self.model_config, pb.ModelConfigRequest,
                                 pb.ModelConfigResponse),
            # Bytes in, bytes out: the once pipeline parses and renders them.
            "ModelInfer": grpc.unary_unary_rpc_method_handler(self.model_infer),
            "ModelStreamInfer": grpc.stream_stream_rpc_method_handler(
                self.model_stream_infer,
                response_serializer=pb.ModelStreamInferResponse.SerializeToString),
        })

    def _model(self):
        return current_model(self.app)

    async def server_live(self, request, context):
        return pb.ServerLiveResponse(live=True)

    async def server_ready(self, request, context):
        return pb.ServerReadyResponse(ready=readiness(self.app)[0] == 200)

    async def model_ready(self, request, context):
        await self._check(context, request.name, request.version)
        return pb.ModelReadyResponse(ready=readiness(self.app)[0] == 200)

    async def server_metadata(self, request, context):
        return pb.ServerMetadataResponse(**server_metadata())

    async def model_metadata(self, request, context):
        await self._check(context, request.name, request.version)
        return json_format.ParseDict(self._model().metadata(), pb.ModelMetadataResponse())

    async def model_config(self, request, context):
        await self._check(context, request.name, request.version)
        config = json_format.ParseDict(self._model().config(), model_config_pb2.ModelConfig())
        return pb.ModelConfigResponse(config=config)

    async def _check(self, context, name: str, version: str) -> None:
        try:
            check_model(self._model(), name, version)
        except AigesError as exc:
            await abort(context, exc)

    async def model_infer(self, body: bytes, context) -> bytes:
        started = perf_counter()
        spec = GrpcSpec(self._model())
        answer = once.begin(self.state, spec, body, f"/{SERVICE}/ModelInfer", started,
                            carrier=context.invocation_metadata())
        if isinstance(answer, Pending):
            answer = await answer.finish()
        if answer.status == 200:
            return answer.body
        exc = spec.error or AigesError(errors.INVALID_OPERATION, answer.body.decode(),
                                       answer.status)
        await abort(context, exc, int(answer.headers.get("Retry-After", 0)))

    async def model_stream_infer(self, requests, context) -> None:
        exc = await grpc_stream.serve(self.state, self._model(), requests, context)
        if exc is not None:
            await abort(context, exc)


async def abort(context, exc: AigesError, retry_after: int = 0, sid: str = "") -> None:
    """End the call with the error's gRPC status; its aiges code (and Retry-After, with
    429) in the trailing metadata."""
    metadata = [("aiges-code", str(exc.code))]
    if retry_after:
        metadata.append(("retry-after", str(retry_after)))
    await context.abort(grpc_status(exc.http_status), exc.message, tuple(metadata))


GRPC = web.AppKey("oip_grpc", GrpcServer)


async def lifecycle(app: web.Application):
    """cleanup_ctx: serves from start-up (after the engine's own) to shutdown."""
    state = app[STATE]
    if not state.config.grpc_port:
        yield
        return
    server = app[GRPC] = GrpcServer(app)
    port = await server.start()
    log.info("gRPC (Open Inference Protocol) listening",
             extra={"host": state.config.host, "port": port})
    try:
        yield
    finally:
        await server.stop(max(state.lifecycle.drain_left(), 0.1))


async def drain(app: web.Application) -> None:
    """SIGTERM: stop accepting calls; running ones get what is left of the drain time."""
    server = app.get(GRPC)
    if server is not None:
        await server.stop(app[STATE].lifecycle.drain_left())
