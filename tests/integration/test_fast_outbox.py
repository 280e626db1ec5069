"""The fast path's answers leave together (aiges/server/outbox.py), in process on
recording transports: what one turn of the loop answered on many connections is
written back to back at the start of the next, in order, and nothing queued is
lost or overtaken when a connection closes, half-closes or goes to aiohttp."""
from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from aiges.config import Config
from aiges.generation import open_engine
from aiges.server import create_app
from aiges.server.fast import FastHTTP
from aiges.server.state import STATE
from aiges.service import NATIVE, once
from tests.e2e.test_fast_http import GET_HEALTH, once_bytes
from tests.integration.test_hand_off import Recorder, Transport


class Logged(Transport):
    """A transport that notes every write and close in one log shared by all."""

    def __init__(self, name: str, log: list):
        super().__init__()
        self.name, self.log = name, log

    def write(self, data):
        assert not self.closed, "written after close"
        self.log.append((self.name, _echoed(data)))

    def writelines(self, parts):
        self.write(b"".join(parts))

    def close(self):
        self.log.append((self.name, "close"))
        super().close()

    def can_write_eof(self):
        return True

    def write_eof(self):
        self.log.append((self.name, "eof"))


def _echoed(answer: bytes) -> str:
    text = answer.split(b'"input":', 1)[1]
    return text.split(b'"text":"', 1)[1].split(b'"', 1)[0].decode()


@pytest.fixture
async def door(echo_so):
    config = Config()
    config.access_log = False
    runner = web.AppRunner(create_app(config, open_engine(echo_so)))
    await runner.setup()  # the engine started
    state = runner.app[STATE]
    body = once_bytes().split(b"\r\n\r\n", 1)[1]
    for _ in range(100):  # until exec is measured fast: answered within the turn
        answer = once.begin(state, NATIVE, body, "/v1/svcName", 0.0)
        if type(answer) is once.Pending:
            answer = await answer.finish()
    assert type(once.begin(state, NATIVE, body, "/v1/svcName", 0.0)) is once.Answer
    door = FastHTTP(state, Recorder)
    yield door
    door._sweep.cancel()
    await runner.cleanup()


def connect(door: FastHTTP, name: str, log: list):
    conn, transport = door(), Logged(name, log)
    conn.connection_made(transport)
    return conn, transport


async def next_turn() -> None:
    await asyncio.sleep(0)


async def test_one_turns_answers_are_written_together_at_the_next(door):
    log: list = []
    conns = [connect(door, name, log)[0] for name in "abc"]
    for conn, name in zip(conns, "abc"):
        conn.data_received(once_bytes(f"{name}1") + once_bytes(f"{name}2"))
    assert log == []  # answered, not yet sent: the next turn sends them all
    await next_turn()
    assert log == [("a", "a1"), ("a", "a2"), ("b", "b1"), ("b", "b2"),
                   ("c", "c1"), ("c", "c2")]


async def test_a_closing_answer_follows_those_queued_before_it(door):
    log: list = []
    conn, _ = connect(door, "a", log)
    conn.data_received(once_bytes("a1") + once_bytes("a2", "Connection: close\r\n"))
    assert log == [("a", "a1"), ("a", "a2"), ("a", "eof")]  # the last: sent at once
    await next_turn()
    assert log == [("a", "a1"), ("a", "a2"), ("a", "eof")]


async def test_answers_queued_go_out_before_the_client_half_close_closes(door):
    log: list = []
    conn, _ = connect(door, "a", log)
    conn.data_received(once_bytes("a1") + once_bytes("a2")[:20])
    assert conn.eof_received() is False  # a request cut short: closed now
    assert log == [("a", "a1")]


async def test_answers_queued_go_out_before_aiohttp_takes_the_connection(door):
    log: list = []
    conn, transport = connect(door, "a", log)
    conn.data_received(once_bytes("a1") + GET_HEALTH)
    assert log == [("a", "a1")]  # flushed at the hand-off, before aiohttp answers
    assert transport.protocol is not conn


async def test_a_sweep_close_sends_what_was_queued_first(door):
    log: list = []
    conn, _ = connect(door, "a", log)
    conn.data_received(once_bytes("a1"))
    conn.close()
    assert log == [("a", "a1"), ("a", "close")]
    await next_turn()
    assert log == [("a", "a1"), ("a", "close")]
