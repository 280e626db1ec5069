"""WebSocket sessions on GET /v1/{service} (SPEC 4), and upstream's /ping echo.

Frame 1 creates the session; every text frame is a request document whose
payload statuses drive it. A first frame that yields no result is acknowledged
with an empty frame (status 0), as upstream does. Results go out as they come,
also after the client's last frame; the server closes normally after the final
one. Errors: one error frame, then close. A client that leaves gets its session
destroyed at once. Opening, writing and ending a session are the core's
(aiges.service.sessions); this module only moves frames.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Callable

from aiohttp import WSCloseCode, WSMsgType, web

from aiges import errors, protocol
from aiges.errors import AigesError
from aiges.server import gone
from aiges.server.state import STATE, WEBSOCKETS
from aiges.server.ws_frames import TEXT, SessionSocket, Taken
from aiges.service import sessions
from aiges.service.core import Service
from aiges.sessions import Session

log = logging.getLogger(__name__)
MODE = "session_ws"  # label of these sessions in metrics and the access log
# Results sent while frames of one burst are still being written inline, every this
# many: the client reads the first while the server works on the rest.
SEND_EVERY = 64
DONE, LEFT = -1, -2  # _read_burst: nothing more to read; the client left


async def websocket(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    websockets = request.app[WEBSOCKETS]
    # aiohttp's own cap (close 1009, no error frame) is the body limit; frames over
    # [ws] maxFrame but under it get an error frame first (_decode).
    ws = SessionSocket(max_msg_size=max(state.config.max_body, state.config.ws_max_frame))
    await ws.prepare(request)
    websockets.add(ws)
    session: Session | None = None
    reason = "websocket closed"
    clock = _ReadClock(state.config.ws_read_timeout_s)
    watch = gone.SessionWatch(request, state)  # the client leaves mid-call: wrapperCancel
    try:
        session = await _open(ws, state, clock, watch, request.headers)
        if session is not None:
            await _converse(ws, state, session, clock)
    except AigesError as exc:
        reason = f"error {exc.code}"
        if session is not None:
            await sessions.end(session, reason, exc)
        await _send_error(ws, exc, session.sid if session else "")
    finally:
        clock.stop()
        watch.close()
        websockets.discard(ws)
        if session is not None:
            session.listener = None
            if not session.ended:
                log.info("client left mid-session", extra={"sid": session.sid})
                reason = "client left"
            await sessions.end(session, reason,
                               AigesError(errors.INVALID_OPERATION, "client left"))
        if not ws.closed:
            await ws.close()
    return ws


async def _open(ws: web.WebSocketResponse, state: Service, clock: _ReadClock,
                watch: gone.SessionWatch, carrier=None) -> Session | None:
    """The session of the first frame, that frame written; None if the client left.
    ``carrier``: the upgrade request's headers (the caller's traceparent)."""
    try:
        doc = _decode(await clock.receive(ws), state.config.ws_max_frame)
    except AigesError as exc:
        sessions.refuse(state, None, MODE, exc)
        raise
    if doc is None:
        return None
    return await sessions.open_session(state, doc, MODE, ack=True, carrier=carrier,
                                       opened=watch.watch)


async def _converse(ws: web.WebSocketResponse, state: Service, session: Session,
                    clock: _ReadClock) -> None:
    sender = _Sender(ws, session, clock.interrupt)
    sender.wake()  # what the first frame gave
    try:
        left = await _frames(ws, state, session, clock, sender)
    finally:
        sender.release()  # results that came while an error was raised still go out
    if left:
        return  # the client left: the caller ends the session
    if not await sender.finished():
        return  # the client is gone; the caller ends the session
    if session.error is not None:
        await _send_error(ws, session.error, session.sid)
    await ws.close()


async def _frames(ws: web.WebSocketResponse, state: Service, session: Session,
                  clock: _ReadClock, sender: _Sender) -> bool:
    """Reads the client's frames and writes them, until the session ends (False) or
    the client leaves (True); raises the AigesError of a bad frame, once the frames
    before it are written."""
    flow = sender.protocol
    max_frame = state.config.ws_max_frame
    frames = getattr(ws, "frames", None)
    on_frames = None if frames is None else _write_taken(state, session, sender, clock,
                                                         frames)
    buffered = _buffered(ws)  # frames aiohttp has read that wait for us
    try:
        while not session.ended:
            # Backpressure: a client that does not read gets no more frames read, so
            # its results cannot pile up in memory.
            if flow._paused:
                await flow._drain_helper()
                if session.ended:
                    break
            # After the last input the client only waits for results: no read timeout.
            if session.inputs_ended:
                clock.limit_s = 0.0
            if on_frames is not None and not frames._buffer:
                # Nothing read waits: while this task waits, frames are written as they
                # are parsed (aiges.server.ws_frames).
                frames.take(on_frames)
            buffered = await _read_burst(ws, state, session, sender, clock, buffered,
                                         max_frame, frames)
            if buffered == LEFT:
                return True
            if buffered < 0:
                break
    finally:
        if frames is not None:
            frames.stop()
    return False


async def _read_burst(ws: web.WebSocketResponse, state: Service, session: Session,
                      sender: _Sender, clock: _ReadClock, buffered: int,
                      max_frame: int, frames) -> int:
    """Reads a frame, and those aiohttp has read after it, and writes them: how many
    frames read wait now; DONE when nothing more is to be read (every result is out,
    or the session ended), LEFT when the client left."""
    # A frame aiohttp has already read needs no read timeout.
    msg = await (ws.receive() if buffered else clock.receive(ws))
    if frames is not None:
        frames.stop()  # awake: frames are this task's again
        if frames.failed is not None:
            raise frames.failed
    if msg is None or session.ended:
        # Every result is out, or the session ended meanwhile (its last frame taken as
        # it was parsed): frames after its end are not read.
        return DONE
    # The frames aiohttp has read already are written together (a burst costs one
    # check and one await for them all), up to SEND_EVERY.
    docs: list[dict] = []
    doc: dict | None = None
    bad: AigesError | None = None
    try:
        while (doc := _decode(msg, max_frame)) is not None:
            docs.append(doc)
            if len(docs) >= SEND_EVERY or not _buffered(ws):
                break
            msg = await ws.receive()
    except AigesError as exc:
        bad = exc
    if len(docs) == 1 and bad is None:  # one frame (ping-pong): no burst to wrap
        # Its results are sent below, not from a callback at the loop's next turn
        # (a turn of the loop, and a poll of the socket, for nothing).
        sender.holding = True
        later = sessions.write_soon(state, session, doc)
        if later is not None:
            sender.release()
            await later
    else:
        await sessions.write_many(state, session, docs)
    if bad is not None:
        if session.ended:
            return DONE  # one read at a time would not have read it: the end goes out
        raise bad  # once the frames before it are written
    if doc is None:
        return LEFT  # the client left: the caller ends the session
    sender.holding = True
    session.collect(len(docs))  # what an engine pushed meanwhile goes out with these
    buffered = _buffered(ws)
    _send_now(session, sender, buffered)
    return buffered


def _send_now(session: Session, sender: _Sender, buffered: int) -> None:
    """After frames are written: their results go out now when no frame read waits to
    be written, or many are ready (frames of one burst share one send), not at the
    loop's next turn; else with the next frames'."""
    queued = session.queued
    if queued and (queued >= SEND_EVERY or not buffered):
        sender.send()
    else:
        sender.release()


def _write_taken(state: Service, session: Session, sender: _Sender,
                 clock: _ReadClock, frames) -> Callable[[Taken], Taken]:
    """``on_frames`` of aiges.server.ws_frames: writes the text frames taken from a
    chunk, up to SEND_EVERY at a time, as ``_read_burst`` writes those of a burst,
    while they can be written there and then; gives back (returns) the first frame
    that cannot, or is not a valid text frame, and every one after it, for the task.
    """
    max_frame = state.config.ws_max_frame
    flow = sender.protocol
    loop = asyncio.get_running_loop()

    def on_frames(taken: Taken) -> Taken:
        if clock._since:  # the read timeout counts from this frame
            clock._since = loop.time()
        docs = []
        for msg, _size in taken:
            if msg.type is not TEXT:
                break
            try:
                docs.append(_decode(msg, max_frame))
            except AigesError:
                break  # the task answers it, after the frames before it
        count = len(docs)
        written = 0
        while written < count and not (session.ended or flow._paused):
            batch = docs[written:written + SEND_EVERY] if count > SEND_EVERY else docs
            sender.holding = True
            done = sessions.write_now(state, session, batch)
            if done:
                written += done
                session.collect(done)
            _send_now(session, sender, 0)
            if done < len(batch) or flow._paused:
                break
        if session.inputs_ended:
            clock.limit_s = 0.0
        if session.ended or flow._paused:
            frames.stop()  # the task's turn: it drains, or sees the end
        return taken[written:]

    return on_frames


def _buffered(ws: web.WebSocketResponse) -> int:
    """Frames aiohttp has read and not yet handed out (its reader's queue, private:
    0, "send now", where it is not found)."""
    try:
        return len(ws._reader._buffer)
    except (AttributeError, TypeError):
        return 0


class _ReadClock:
    """[ws] readTimeout without a timer per frame: one timer, moved on lazily when it
    fires, that cancels a receive() waiting longer than the limit (0: none; a frame
    taken as it is parsed moves ``_since`` on). Also ends a receive() that waits when
    the session has sent its last result (``interrupt``): it returns None."""

    def __init__(self, limit_s: float):
        self.limit_s = limit_s
        self._loop = asyncio.get_running_loop()
        self._since = 0.0            # when the receive waiting now began; 0: none waits
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task | None = None
        self._fired = False
        self._waiting = False
        self._interrupted = False

    async def receive(self, ws: web.WebSocketResponse):
        limit = self.limit_s
        if self._task is None:
            self._task = asyncio.current_task()  # one task reads a connection's frames
        if limit > 0:
            self._since = self._loop.time()
            if self._timer is None:
                self._timer = self._loop.call_at(self._since + limit, self._check)
        self._waiting = True
        try:
            return await ws.receive()
        except asyncio.CancelledError:
            if self._fired or self._interrupted:
                self._task.uncancel()
                if self._interrupted:
                    self._interrupted = False
                    return None
                self._fired = False
                raise AigesError(errors.SESSION_TIMEOUT,
                                 f"no frame from the client for {limit:g}s") from None
            raise
        finally:
            self._since = 0.0
            self._waiting = False

    def interrupt(self) -> None:
        if self._waiting and not (self._fired or self._interrupted):
            self._interrupted = True
            self._task.cancel()

    def _check(self) -> None:
        self._timer = None
        if self.limit_s <= 0:
            return
        now = self._loop.time()
        since = self._since or now
        due = since + self.limit_s
        if self._since and now >= due:
            if self._interrupted:
                return
            self._fired = True
            self._task.cancel()
            return
        self._timer = self._loop.call_at(due, self._check)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _Sender:
    """Sends a session's result frames from a callback, not a task: the session calls
    ``wake`` when results or its end come, and every frame ready at that turn of the
    loop goes out in one write. While the client does not read (the transport paused)
    results stay with the session, whose reads pause at MAX_QUEUED."""

    def __init__(self, ws: web.WebSocketResponse, session: Session,
                 on_done: Callable[[], None]):
        writer = ws._writer  # aiohttp's frame writer: its transport and flow control
        self.transport = writer.transport
        self.protocol = writer.protocol
        self.session = session
        self._loop = asyncio.get_running_loop()
        # True once every result is out, False when the client left first.
        self._done: asyncio.Future[bool] = self._loop.create_future()
        self._done.add_done_callback(lambda _: on_done())
        self._scheduled = False
        self._drainer: asyncio.Task | None = None
        # While the reader holds the results (it sends them itself once its frames are
        # written), a wake is only noted; ``release`` acts on it.
        self.holding = False
        self._missed = False
        session.listener = self.wake

    def wake(self, at_once: bool = False) -> None:
        if self.holding:
            self._missed = True
        elif at_once:
            # Pushed results, handed over together (a take of the engine's queue, or
            # what its threads pushed since the last hand-over): nothing else is to
            # come this turn, so they go out here, without a turn of the loop.
            self._flush()
        elif not self._scheduled and not self._done.done():
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def release(self) -> None:
        """The reader holds the results no more: what came meanwhile is sent at the
        loop's next turn."""
        self.holding = False
        if self._missed:
            self._missed = False
            self.wake()

    def send(self) -> None:
        """Send what is ready now, not at the next turn of the loop (the reader's hold
        ends)."""
        self.holding = self._missed = False
        if not self._done.done():
            self._flush()

    async def finished(self) -> bool:
        """True once every result is out, False if the client went first."""
        try:
            return await self._done
        finally:
            if self._drainer is not None:
                self._drainer.cancel()

    def _flush(self) -> None:
        self._scheduled = False
        session = self.session
        if self._done.done():
            return
        if self.transport is None or self.transport.is_closing():
            self._done.set_result(False)
            return
        if self.protocol._paused:
            if self._drainer is None:
                self._drainer = self._loop.create_task(self._drain())
            return
        taken = session.take()
        if taken:
            self.transport.write(render(session, taken))
        if session.drained:
            self._done.set_result(True)

    async def _drain(self) -> None:
        try:
            await self.protocol._drain_helper()
        except ConnectionError:
            pass
        self._drainer = None
        self.wake()


def render(session: Session, taken: list) -> bytes:
    """Result frames as WebSocket text frames, in one buffer: one send for them all."""
    sid, outputs = session.sid, session.outputs
    parts = []
    for seqs, items in taken:
        body = protocol.session_frame(sid, items, outputs, seqs)
        parts.append(_text_head(len(body)))
        parts.append(body)
    return b"".join(parts)


def _text_head(length: int) -> bytes:
    """The head of an unmasked final text frame (RFC 6455 5.2)."""
    if length < 126:
        return bytes((0x81, length))
    if length < 65536:
        return b"\x81\x7e" + length.to_bytes(2, "big")
    return bytes((0x81, 127)) + length.to_bytes(8, "big")


def _decode(msg, max_frame: int) -> dict | None:
    """The request document of a text frame; None when the client closed or went away."""
    if msg.type == WSMsgType.TEXT:
        text = msg.data
        # A character is 1..4 bytes: encode only when the length alone cannot decide.
        if len(text) * 4 > max_frame and (len(text) > max_frame
                                          or len(text.encode()) > max_frame):
            raise FrameTooBig(errors.INVALID_INPUT,
                              f"frame larger than [ws] maxFrame = {max_frame} bytes")
        try:
            return protocol.loads(text)
        except AigesError as exc:
            # Upstream answers a frame it cannot parse with 10163.
            raise AigesError(errors.WS_BAD_JSON, exc.message) from None
    if msg.type == WSMsgType.BINARY:
        raise AigesError(errors.INVALID_INPUT, "frames must be JSON text, not binary")
    return None


class FrameTooBig(AigesError):
    """A frame over [ws] maxFrame: 10009, then close 1009 (message too big)."""

    close_code = WSCloseCode.MESSAGE_TOO_BIG



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
    websockets = request.app[WEBSOCKETS]
    websockets.add(ws)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_str("pong" if msg.data == "ping" else msg.data)
            elif msg.type == WSMsgType.BINARY:
                await ws.send_bytes(b"pong" if msg.data == b"ping" else msg.data)
    finally:
        websockets.discard(ws)
    return ws
