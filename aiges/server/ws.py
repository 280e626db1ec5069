"""WebSocket sessions on GET /v1/{service} (SPEC 4), and upstream's /ping echo.

Frame 1 creates the session; every text frame is a request document whose
payload statuses drive it. A first frame that yields no result is acknowledged
with an empty frame (status 0), as upstream does. Results go out as they come,
also after the client's last frame; the server closes normally after the final
one. Errors: one error frame, then close. A client that leaves gets its session
destroyed at once. The session's life (time limits, reads, destroy) belongs to
aiges.sessions; this module only moves frames.
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
    session: Session | None = None
    reason = "websocket closed"
    try:
        session = await _open(ws, state)
        if session is not None:
            await _converse(ws, state, session)
    except AigesError as exc:
        reason = f"error {exc.code}"
        if session is not None:
            await session.end(reason, exc)
        await _send_error(ws, exc, session.sid if session else "")
    finally:
        state.websockets.discard(ws)
        if session is not None:
            if not session.ended:
                log.info("client left mid-session", extra={"sid": session.sid})
                reason = "client left"
            await session.end(reason, AigesError(errors.INVALID_OPERATION, "client left"))
        if not ws.closed:
            await ws.close()
    return ws


async def _open(ws: web.WebSocketResponse, state: State) -> Session | None:
    """The session of the first frame, that frame written; None if the client left."""
    try:
        req = _parse(await _receive(ws, state.config.ws_read_timeout_s), state, None)
    except AigesError as exc:
        state.sessions.reject("-", MODE, exc)
        raise
    if req is None:
        return None
    session = await state.sessions.open(req.sid, req.params, req.psr_ids, req.outputs, MODE,
                                        ack=True)
    if req.data:
        await session.write(req.data)
    return session


async def _converse(ws: web.WebSocketResponse, state: State, session: Session) -> None:
    config = state.config
    sent = asyncio.Event()  # set while the pump holds no unsent result
    sent.set()
    pump = asyncio.create_task(_pump(ws, session, sent))
    try:
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
                return  # the client left: the caller ends the session
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
        try:
            doc = protocol.loads(msg.data)
        except AigesError as exc:
            # Upstream answers a frame it cannot parse with 10163.
            raise AigesError(errors.WS_BAD_JSON, exc.message) from None
        return state.parse(doc, sid, need_payload=sid is not None)
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
            for seqs, items in batch:
                await ws.send_str(protocol.session_frame(session.sid, items, session.outputs,
                                                         seqs).decode())
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


async def ping(request: web.Request) -> web.StreamResponse:
    """Upstream's GET /ping: a WebSocket that echoes every message, "ping" as "pong"."""
    ws = web.WebSocketResponse(max_msg_size=64 * 1024)
    await ws.prepare(request)
    state = request.app[STATE]
    state.websockets.add(ws)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_str("pong" if msg.data == "ping" else msg.data)
            elif msg.type == WSMsgType.BINARY:
                await ws.send_bytes(b"pong" if msg.data == b"ping" else msg.data)
    finally:
        state.websockets.discard(ws)
    return ws
