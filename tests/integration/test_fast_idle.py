"""The fast path's idle sweep, in process with short times: a keep-alive connection
with nothing to do is closed after the keep-alive time; one that keeps sending is not."""
from __future__ import annotations

import asyncio

from aiohttp import web

from aiges.config import Config
from aiges.generation import open_engine
from aiges.server import create_app, fast
from aiges.server.listen import Listener, bind
from tests.e2e.test_fast_http import echoed, once_bytes, read_reply
from tests.helpers import free_port


async def test_idle_connections_close_after_the_keepalive_time(monkeypatch, echo_so):
    monkeypatch.setattr(fast, "SWEEP_S", 0.05)
    config = Config()
    config.access_log = False
    config.http_keepalive_s = 0.3
    runner = web.AppRunner(create_app(config, open_engine(echo_so)))
    await runner.setup()
    listener = Listener(runner.app, runner)
    port = free_port()
    await listener.start(bind("127.0.0.1", port))
    try:
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
        busy_reader, busy_writer = await asyncio.open_connection("127.0.0.1", port)
        for writer in (idle_writer, busy_writer):
            writer.write(once_bytes("first"))
        assert echoed(await read_reply(idle_reader)) == "first"
        assert echoed(await read_reply(busy_reader)) == "first"
        loop = asyncio.get_running_loop()
        started = loop.time()
        closed, closed_at = asyncio.ensure_future(idle_reader.read()), None
        for i in range(12):  # 1.2 s of a request every 0.1 s
            busy_writer.write(once_bytes(f"again {i}"))
            assert echoed(await read_reply(busy_reader)) == f"again {i}"
            if closed.done() and closed_at is None:
                closed_at = loop.time() - started
            await asyncio.sleep(0.1)
        assert closed.done() and closed.result() == b""
        assert 0.3 <= closed_at < 1.2
        busy_writer.write(once_bytes("still"))
        assert echoed(await read_reply(busy_reader)) == "still"
        idle_writer.close()
        busy_writer.close()
    finally:
        await listener.stop(1)
        await runner.cleanup()
