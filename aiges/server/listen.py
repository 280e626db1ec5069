"""The listening socket. Connections start on the fast path (aiges/server/fast.py),
which hands aiohttp whatever it does not serve itself; with ``[aiges] fastHttp``
off they start on aiohttp's protocol, behind a relay that times slow clients."""
from __future__ import annotations

import asyncio
import socket

from aiohttp import web

from aiges.server.fast import FastHTTP
from aiges.server.state import STATE


def bind(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """The service's socket, bound at once, so that a busy port fails in a second and not
    after wrapperInit (a model may load for minutes); it listens only once the engine is
    up (Listener.start), so until then connections are refused."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:  # a supervisor's workers share the port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host or "0.0.0.0", port))
    except OSError:
        sock.close()
        raise
    return sock


class Listener:
    def __init__(self, app: web.Application, runner: web.AppRunner):
        state = app[STATE]
        self.fast = FastHTTP(state, runner.server, fast=state.config.fast_http)
        self._server: asyncio.AbstractServer | None = None

    async def start(self, sock: socket.socket) -> None:
        """Listen on ``sock`` (from ``bind``) and serve its connections."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self.fast, sock=sock)

    async def stop(self, timeout_s: float) -> None:
        """No new connections; the fast path's finish their request (at most
        ``timeout_s``) and close. aiohttp's are closed by its runner's cleanup."""
        if self._server is not None:
            self._server.close()
            self._server = None
        await self.fast.shutdown(timeout_s)
