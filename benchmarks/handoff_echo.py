"""The bare WebSocket echo with a thread hand-off: what a result that comes from another
thread costs a Python server, whatever the server.

echo_server.py's session echo, but each frame's result is handed to a thread of the
session's own and comes back from it to the loop (``call_soon_threadsafe``), as an
asyncMode engine's worker thread pushes each result through its callback (both echo
engines run one such thread per session). The loop still does all the JSON and base64
work; the thread does nothing but hand the result back. So this is the least a server
pays for results pushed from a thread: two switches between threads per frame, and a
wake-up of the loop. sessions.py measures it beside aiges in asyncMode (target
"handoff"): how far asyncMode is from what any server of a threaded engine can do.

    python benchmarks/handoff_echo.py --port 8080
"""
from __future__ import annotations

import asyncio
import functools
import queue
import sys
import threading
import uuid

import echo_server
from aiohttp import web
from echo_server import frame_answer

STOP = object()


class HandOff:
    """A session's thread: each result put in comes back to the loop, in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, ws: web.WebSocketResponse):
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.ws = ws
        self.loop = loop
        self.back = asyncio.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.sender = asyncio.ensure_future(self._send())

    def _run(self) -> None:
        while (result := self.jobs.get()) is not STOP:
            self.loop.call_soon_threadsafe(self.back.put_nowait, result)

    async def _send(self) -> None:
        while (result := await self.back.get()) is not STOP:
            await self.ws.send_str(result)

    async def close(self) -> None:
        """Every result handed back and sent; the thread joined."""
        self.jobs.put(STOP)
        await asyncio.to_thread(self.thread.join)
        self.back.put_nowait(STOP)
        # A client gone mid-session ends the sender early: not the reference's error.
        await asyncio.gather(self.sender, return_exceptions=True)


async def stream(request: web.Request) -> web.WebSocketResponse:
    """echo_server.stream, its results handed through a thread."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    sid = uuid.uuid4().hex
    hand = HandOff(asyncio.get_running_loop(), ws)
    seq = 0
    try:
        async for msg in ws:
            text, status = frame_answer(msg.data, sid, seq)
            hand.jobs.put(text)
            seq += 1
            if status is None or status >= 2:
                break
    finally:
        await hand.close()
    await ws.close()
    return ws


def create_app(service: str) -> web.Application:
    """Sessions and health only (sessions.py runs no once request against it)."""
    app = web.Application()
    app.router.add_get(f"/v1/{service}", stream)
    app.router.add_get("/health", echo_server.health)
    return app


if __name__ == "__main__":
    sys.exit(echo_server.main(server=functools.partial(echo_server.serve, app=create_app),
                              description="the bare WebSocket echo, its results handed "
                                          "through a thread per session"))
