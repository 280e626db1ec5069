"""aiges.server.ws_frames with aiohttp's own frame parser: which frames go to
``on_frames`` while taking, what goes to the task's queue, and in what order."""
from __future__ import annotations

import asyncio
import os

import pytest
from aiohttp import WSMsgType
from aiohttp.http_websocket import WS_CLOSING_MESSAGE

from aiges.server import ws_frames

pytestmark = pytest.mark.skipif(ws_frames.Frames is None,
                                reason="another aiohttp: frames are not taken")


class Transport:
    """What the queue asks of aiohttp's protocol (flow control)."""
    _reading_paused = False

    def pause_reading(self):
        self._reading_paused = True

    def resume_reading(self):
        self._reading_paused = False


def client_frame(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    assert len(payload) < 126
    return (bytes([0x80 | opcode, 0x80 | len(payload)]) + mask
            + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def text(s: str) -> bytes:
    return client_frame(0x1, s.encode())


@pytest.fixture
async def feed():
    frames = ws_frames.Frames(Transport(), 2 ** 16, loop=asyncio.get_running_loop())
    parser = ws_frames.WebSocketReader(frames, 2 ** 20, compress=False, decode_text=True)
    return ws_frames._Feed(parser, frames), frames


def queued(frames) -> list:
    return [(msg.type, msg.data) for msg, _size in frames._buffer]


async def test_frames_go_to_the_queue_unless_taken(feed):
    feed, frames = feed
    feed.feed_data(text("a") + text("b"))
    assert queued(frames) == [(WSMsgType.TEXT, "a"), (WSMsgType.TEXT, "b")]


async def test_frames_of_a_chunk_are_taken_together_and_written(feed):
    feed, frames = feed
    calls = []
    frames.take(lambda taken: calls.append([m.data for m, _ in taken]) or [])
    feed.feed_data(text("a") + text("b"))
    feed.feed_data(text("c"))
    assert calls == [["a", "b"], ["c"]] and queued(frames) == []


async def test_frames_given_back_go_to_the_queue_in_order_and_taking_stops(feed):
    feed, frames = feed
    seen = []

    def on_frames(taken):  # writes the text frames before the first ping
        seen.append([m.data for m, _ in taken])
        return [t for i, t in enumerate(taken) if i >= 1]

    frames.take(on_frames)
    feed.feed_data(text("a") + client_frame(0x9, b"ping") + text("b"))
    feed.feed_data(text("c"))  # taking has stopped: the task's, after the rest
    assert seen == [["a", b"ping", "b"]]
    assert queued(frames) == [(WSMsgType.PING, b"ping"), (WSMsgType.TEXT, "b"),
                              (WSMsgType.TEXT, "c")]


async def test_a_message_not_parsed_from_the_client_goes_to_the_task(feed):
    """aiohttp's close() wakes a receive() with a message of its own."""
    feed, frames = feed
    frames.take(lambda taken: [])
    frames.feed_data(WS_CLOSING_MESSAGE, 0)
    assert queued(frames) == [(WSMsgType.CLOSING, None)]


async def test_a_failing_on_frames_leaves_an_error_for_the_task(feed):
    feed, frames = feed

    def on_frames(taken):
        raise ValueError("a bug")

    frames.take(on_frames)
    feed.feed_data(text("a"))
    assert isinstance(frames.failed, ValueError)
    assert queued(frames) == [(WSMsgType.ERROR, None)]


async def test_a_stopped_queue_takes_nothing(feed):
    feed, frames = feed
    frames.take(lambda taken: pytest.fail("taken after stop"))
    frames.stop()
    feed.feed_data(text("a"))
    assert queued(frames) == [(WSMsgType.TEXT, "a")]
