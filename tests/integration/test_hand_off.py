"""The fast path's hand-off to aiohttp, in process: aiohttp's protocol is told of a
write pause that began on the fast path (else it never waits in drain() and its
answers to a client that does not read pile up in memory), gets the request from
its first byte, and hears of the client's FIN after it."""
from __future__ import annotations

import asyncio

import pytest

from aiges.config import Config
from aiges.generation import open_engine
from aiges.server import create_app
from aiges.server.fast import FastHTTP
from aiges.server.state import STATE
from tests.e2e.test_fast_http import GET_HEALTH


class Recorder(asyncio.Protocol):
    """Stands for aiohttp's RequestHandler: records what it is told."""

    def __init__(self):
        self.calls: list[tuple] = []

    def connection_made(self, transport):
        self.calls.append(("connection_made",))

    def pause_writing(self):
        self.calls.append(("pause_writing",))

    def resume_writing(self):
        self.calls.append(("resume_writing",))

    def data_received(self, data):
        self.calls.append(("data_received", bytes(data)))

    def eof_received(self):
        self.calls.append(("eof_received",))


class Transport:
    def __init__(self):
        self.protocol = None
        self.written = b""
        self.reading = True
        self.closed = False

    def set_protocol(self, protocol):
        self.protocol = protocol

    def write(self, data):
        self.written += data

    def writelines(self, parts):
        self.written += b"".join(parts)

    def pause_reading(self):
        self.reading = False

    def resume_reading(self):
        self.reading = True

    def is_reading(self):
        return self.reading

    def close(self):
        self.closed = True

    def is_closing(self):
        return self.closed


@pytest.fixture
async def connection(echo_so):
    """(a fast-path connection on a recording transport, the aiohttp stand-in)"""
    config = Config()
    config.access_log = False
    app = create_app(config, open_engine(echo_so))
    handler = Recorder()
    door = FastHTTP(app[STATE], lambda: handler)
    conn, transport = door(), Transport()
    conn.connection_made(transport)
    yield conn, transport, handler
    door._sweep.cancel()


async def test_a_write_pause_is_carried_through_the_hand_off(connection):
    conn, transport, handler = connection
    conn.pause_writing()  # the client stopped reading our answers
    conn.data_received(GET_HEALTH)
    assert transport.protocol is not conn  # aiohttp's now, behind the relay
    assert handler.calls == [("connection_made",), ("pause_writing",),
                             ("data_received", GET_HEALTH)]
    transport.protocol.resume_writing()
    assert handler.calls[-1] == ("resume_writing",)


async def test_the_request_goes_from_its_first_byte_and_the_fin_after_it(connection):
    conn, transport, handler = connection
    conn.data_received(b"POST /v1/svcName HTTP/1.1\r\nHo")  # may be the fast path's
    conn.data_received(b"st: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    # Not the fast path's after all: aiohttp gets the request from its first byte.
    assert handler.calls[1] == ("data_received", b"POST /v1/svcName HTTP/1.1\r\nHost: t\r\n"
                                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert transport.protocol.eof_received() is True  # kept open until answered
    assert not transport.closed
