"""A session's text frames taken as aiohttp parses them (aiges.server.ws).

aiohttp hands every frame it parses to the connection's task through a queue: for
each chunk read, the task is woken and the loop turns once more before the frame is
looked at. A session whose frames are written inline needs neither. While its task
waits in receive() (``take``), ``Frames`` keeps the frames of a chunk as the parser
yields them, and once the chunk is parsed hands them to the session's ``on_frames``,
there and then, on the loop; the task sleeps on. What ``on_frames`` gives back goes
through aiohttp's queue to the task, in order, as it always did, which wakes it, and
the taking stops until the task waits again: a control frame (close, ping) and what
follows it, the text frames that must wait for the engine or are invalid (the task
answers them). The end of the connection, a parse error and aiohttp's own close()
reach the task as before.

aiohttp's queue and parser are its own (private) classes: with another aiohttp than
the one this was written for, nothing is taken and the task reads every frame.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import WSMessage, WSMsgType, web

try:
    from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
    from aiohttp.helpers import DEFAULT_CHUNK_SIZE
except ImportError:  # pragma: no cover - another aiohttp: the task reads every frame
    WebSocketDataQueue = WebSocketReader = None

log = logging.getLogger(__name__)
TEXT = WSMsgType.TEXT

# (message, its size in aiohttp's accounting): what the parser fed.
Taken = list[tuple[object, int]]
# Given back when on_frames failed: the task reads it as an error (``failed``).
_FAILED = WSMessage(WSMsgType.ERROR, None, None)


class SessionSocket(web.WebSocketResponse):
    """aiohttp's WebSocket, whose text frames a session may take as they are parsed
    (``frames``: None where aiohttp's internals are not as expected)."""

    frames: Frames | None = None

    def _post_start(self, request, protocol, writer) -> None:
        super()._post_start(request, protocol, writer)
        self.frames = _install(self, request)


def _install(ws: web.WebSocketResponse, request) -> Frames | None:
    """``Frames`` in place of aiohttp's queue, before any frame is parsed."""
    if WebSocketDataQueue is None:
        return None
    try:
        handler = request.protocol
        queue, parser = ws._reader, ws._parser
        if handler._payload_parser is not parser or queue._buffer or queue.is_eof():
            return None  # frames came with the handshake: left to aiohttp
        frames = Frames(handler, DEFAULT_CHUNK_SIZE, loop=ws._loop)
        ours = WebSocketReader(frames, ws._max_msg_size, compress=bool(ws._compress),
                               decode_text=ws._decode_text)
    except (AttributeError, TypeError):
        return None
    handler._payload_parser = _Feed(ours, frames)
    ws._reader, ws._parser = frames, ours
    return frames


if WebSocketDataQueue is not None:
    class Frames(WebSocketDataQueue):
        """aiohttp's frame queue, which keeps the frames of a chunk for ``on_frames``
        while taking."""

        def __init__(self, protocol, limit: int, *, loop: asyncio.AbstractEventLoop):
            super().__init__(protocol, limit, loop=loop)
            self._taking = False
            self.parsing = False  # inside the parser: a frame of the client's
            self.taken: Taken = []
            self.on_frames: Callable[[Taken], Taken] | None = None
            self.failed: BaseException | None = None

        def take(self, on_frames: Callable[[Taken], Taken]) -> None:
            """While the task waits in receive(): the client's frames go to
            ``on_frames`` (which returns those it gives back)."""
            self.on_frames = on_frames
            self._taking = True

        def stop(self) -> None:
            """The task is awake: frames go through the queue again."""
            self._taking = False

        def feed_data(self, data, size: int) -> None:
            # Not parsing: aiohttp's own message to the task (close() wakes it so).
            if self._taking and self.parsing:
                self.taken.append((data, size))
            else:
                super().feed_data(data, size)

        def give_back(self, rest: Taken) -> None:
            """Frames ``on_frames`` did not write: the task's, in order (it wakes)."""
            self._taking = False
            for data, size in rest:
                super().feed_data(data, size)
else:  # pragma: no cover
    Frames = None


class _Feed:
    """The connection's payload parser as aiohttp calls it: aiohttp's, then the frames
    taken from the chunk are written."""

    __slots__ = ("parser", "frames")

    def __init__(self, parser, frames: Frames):
        self.parser = parser
        self.frames = frames

    def feed_data(self, data):
        frames = self.frames
        frames.parsing = True
        try:
            result = self.parser.feed_data(data)
        finally:
            frames.parsing = False
        taken = frames.taken
        if taken:
            frames.taken = []
            try:
                rest = frames.on_frames(taken)
            except Exception as exc:  # a bug: the session ends with it (the task raises)
                log.exception("writing the frames taken failed")
                frames.failed = exc
                rest = [(_FAILED, 0)]
            if rest:
                frames.give_back(rest)
        return result

    def feed_eof(self) -> None:
        self.parser.feed_eof()
