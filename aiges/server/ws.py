"""WebSocket sessions on GET /v1/{service} (SPEC 4).

Frame 1 creates the session; every text frame is a request document whose
payload statuses drive it. Results go out as they come, also after the client's
last frame; the server closes normally after the final one. Errors: one error
frame, then close. A client that leaves gets its session destroyed at once.
"""
from __future__ import annotations

import asyncio
import logging

from aiohttp import WSCloseCode, WSMsgType, web

from aiges import errors, protocol
from aiges.errors import AigesError
from aiges.server.state import STATE, State
from aiges.sessions import Session

log = logging.getLogger(__name__)
MODE = "session_ws"  # label of these sessions in metrics and the access log


async def websocket(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    # aiohttp's own cap (close 1009, no error frame) is the body limit; frames over
    # [ws] maxFrame but under it get an error frame first (_parse).
    ws = web.WebSocketResponse(max_msg_size=max(state.config.max_body,
                                                state.config.ws_max_frame))
    await ws.prepare(request)
    state.websockets.add(ws)
    holder: list[Session] = []
    try:
        async with asyncio.timeout(state.config.ws_session_timeout_s):
            await _converse(ws, state, holder)
    except AigesError as exc:
        if holder:
            holder[0].set_error(exc)
        await _send_error(ws, exc, holder[0].sid if holder else "")
    except TimeoutError:
        exc = AigesError(errors.SESSION_TIMEOUT, "session lasted longer than "
                         f"{state.config.ws_session_timeout_s:g}s")
        if holder:
            holder[0].set_error(exc)
        await _send_error(ws, exc, holder[0].sid if holder else "")
    finally:
        state.websockets.discard(ws)
        if holder:
            await _finish(state, holder[0])
        if not ws.closed:
            await ws.close()
    return ws


async def _converse(ws: web.WebSocketResponse, state: State, holder: list[Session]) -> None:
    config = state.config
    try:
        req = _parse(await _receive(ws, config.ws_read_timeout_s), state, None)
    except AigesError as exc:
        state.sessions.reject("-", MODE, exc)
        raise
    if req is None:
        return
    session = await state.sessions.open(req.sid, req.params, req.psr_ids, req.outputs, MODE)
    holder.append(session)
    sent = asyncio.Event()  # set while the pump holds no unsent result
    sent.set()
    pump = asyncio.create_task(_pump(ws, session, sent))
    try:
        if req.data:
            await session.write(req.data)
        while not session.ended:
            # Backpressure: a client that does not read gets no more frames read, so its
            # results cannot pile up in memory (the send blocks on its full socket).
            await sent.wait()
            if session.ended:
                break
            # After the last input the client only waits for results: no read timeout.
            silence = None if session.inputs_ended else config.ws_read_timeout_s
            req = _parse(await _receive(ws, silence), state, session.sid)
            if req is None:
                await session.close(AigesError(errors.INVALID_OPERATION, "client left"))
                break
            await session.write(req.data)
        await pump
    finally:
        pump.cancel()


async def _receive(ws: web.WebSocketResponse, timeout: float | None):
    try:
        return await ws.receive(timeout=timeout)
    except TimeoutError:
        raise AigesError(errors.SESSION_TIMEOUT, f"no frame from the client for {timeout:g}s") \
            from None


def _parse(msg, state: State, sid: str | None):
    """The request of a text frame; None when the client closed or went away."""
    if msg.type == WSMsgType.TEXT:
        _check_size(msg.data, state.config.ws_max_frame)
        return protocol.parse(protocol.loads(msg.data), state.config.service,
                              state.config.header_pass, sid, need_payload=sid is not None)
    if msg.type == WSMsgType.BINARY:
        raise AigesError(errors.INVALID_INPUT, "frames must be JSON text, not binary")
    return None


class FrameTooBig(AigesError):
    """A frame over [ws] maxFrame: 10009, then close 1009 (message too big)."""

    close_code = WSCloseCode.MESSAGE_TOO_BIG


def _check_size(text: str, limit: int) -> None:
    # A character is 1..4 bytes: encode only when the length alone cannot decide.
    if len(text) > limit or (len(text) * 4 > limit and len(text.encode()) > limit):
        raise FrameTooBig(errors.INVALID_INPUT,
                          f"frame larger than [ws] maxFrame = {limit} bytes")


async def _pump(ws: web.WebSocketResponse, session: Session, sent: asyncio.Event) -> None:
    """Sends results as they come; after the last one, the error or a normal close."""
    try:
        while not session.drained:
            batch = await session.results(wait_s=3600)
            sent.clear()
            for seq, items in batch:
                await ws.send_str(protocol.success(session.sid, items, session.outputs,
                                                   "success", seq).decode())
            sent.set()
    except ConnectionError:
        return  # the client is gone; the reader side ends the session
    finally:
        sent.set()
    if session.error is not None:
        await _send_error(ws, session.error, session.sid)
    await ws.close()


async def _send_error(ws: web.WebSocketResponse, exc: AigesError, sid: str) -> None:
    if not ws.closed:
        try:
            await ws.send_str(protocol.failure(exc.code, exc.message, sid).decode())
        except ConnectionError:
            pass
        await ws.close(code=getattr(exc, "close_code", WSCloseCode.OK))


async def _finish(state: State, session: Session) -> None:
    if not session.ended:
        log.info("client left mid-session", extra={"sid": session.sid})
        await session.close(AigesError(errors.INVALID_OPERATION, "client left"))
    session.registry.forget(session, ended_by="websocket closed")  # its generation's
