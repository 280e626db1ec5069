"""ModelStreamInfer as an aiges session (SPEC 4): one stream of requests is one session.

The first request opens it (its parameters are the session's params). Each request
is one frame; its tensors' status is their ``status`` parameter (0..3) when given,
else follows the sequence flags: the first request (or ``sequence_start``) Begin,
``sequence_end`` End, both Once, neither Continue. Every result frame goes out as a
ModelInferResponse (parameters: sid, status) with the ``id`` of the latest request
(clients that wait for each answer, as perf_analyzer, match them by it); an error as one ``error_message``
response, then the call ends with the error's gRPC status. A client that cancels
ends the session at once; results after its last request are still sent.
The session's life belongs to aiges.sessions; this module only moves messages.
"""
from __future__ import annotations

import asyncio
import logging

from aiges import errors, protocol
from aiges.engine import DataStatus
from aiges.errors import AigesError
from aiges.oip.grpc_spec import decode, parameters, response, set_parameter, tensors
from aiges.oip.model import Model, check_model
from aiges.oip.proto import grpc_service_pb2 as pb
from aiges.oip.spec import request
from aiges.service import sessions
from aiges.sessions import Session

log = logging.getLogger(__name__)
MODE = "session_grpc"  # label of these sessions in metrics and the access log
WAIT_S = 60.0          # a bound on one wait for results (they wake it as they come)
SETTLE_S = 1.0         # an ended session: how long its last results may take to queue


def frame_status(params: dict, first: bool) -> int:
    start = first or params.get("sequence_start") is True
    end = params.get("sequence_end") is True
    if start and end:
        return DataStatus.ONCE
    return DataStatus.BEGIN if start else DataStatus.END if end else DataStatus.CONTINUE


async def serve(state, model: Model, requests, context) -> AigesError | None:
    """Run one stream; the error it ended with (already sent as a message), or None."""
    sid = protocol.new_sid()
    session: Session | None = None
    sender: asyncio.Task | None = None
    reason = "client left"
    latest = _Latest()
    try:
        async for body in requests:
            msg = decode(body)
            check_model(model, msg.model_name, msg.model_version)
            latest.id = msg.id
            params = parameters(msg.parameters)
            status = frame_status(params, session is None)
            if session is None:
                try:
                    req = request(state, model, sid, tensors(msg), params, status)
                except AigesError as exc:
                    sessions.refuse(state, sid, MODE, exc)
                    raise
                session = await sessions.open_request(state, req, MODE,
                                                      carrier=context.invocation_metadata())
                sender = asyncio.create_task(_send(session, model, context, latest))
            else:
                req = request(state, model, sid, tensors(msg), params, status)
                await session.write(req.data)
            if session.ended:
                break
        if session is None:
            return None
        if not session.inputs_ended and not session.ended:
            await session.end("stream closed", AigesError(
                errors.INVALID_INPUT, "the request stream closed before sequence_end"))
        await sender
        reason = f"error {session.error.code}" if session.error else "finished"
        return session.error
    except AigesError as exc:
        reason = f"error {exc.code}"
        if session is None:
            await context.write(_error_message(model, exc, sid))
            return exc
        await session.end(reason, exc)
        await sender
        return session.error
    finally:
        if sender is not None and not sender.done():
            sender.cancel()
        if session is not None:
            await session.end(reason, AigesError(errors.INVALID_OPERATION, "client left"))


class _Latest:
    id = ""


async def _send(session: Session, model: Model, context, latest: _Latest) -> None:
    """Every result frame, as it comes; after the session's end, its error if any."""
    while True:
        await _write(session, model, context, latest.id, await session.results(WAIT_S))
        if session.ended:
            await session.settle(SETTLE_S)
            await _write(session, model, context, latest.id, session.take())
            break
    if session.error is not None:
        await context.write(_error_message(model, session.error, session.sid))


async def _write(session: Session, model: Model, context, request_id: str, taken) -> None:
    for _seqs, items in taken:
        if items:
            msg = response(model, session.sid, items, None, request_id,
                           {"status": int(items[-1].status)})
            await context.write(pb.ModelStreamInferResponse(infer_response=msg))


def _error_message(model: Model, exc: AigesError, sid: str) -> pb.ModelStreamInferResponse:
    answer = pb.ModelInferResponse(model_name=model.name)
    set_parameter(answer.parameters, "sid", sid)
    set_parameter(answer.parameters, "code", exc.code)
    log.info("stream ended with an error", extra={"sid": sid, "code": exc.code})
    return pb.ModelStreamInferResponse(error_message=exc.message, infer_response=answer)
