"""The listening socket. Connections start on the fast path (aiges/server/fast.py),
which hands aiohttp whatever it does not serve itself; with ``[aiges] fastHttp``
off they start on aiohttp's protocol, behind a relay that times slow clients."""
from __future__ import annotations

import asyncio

from aiohttp import web

from aiges.server.fast import FastHTTP
from aiges.server.state import STATE


class Listener:
    def __init__(self, app: web.Application, runner: web.AppRunner):
        state = app[STATE]
        self.fast = FastHTTP(state, runner.server, fast=state.config.fast_http)
        self._server: asyncio.AbstractServer | None = None

    async def start(self, host: str, port: int, reuse_port: bool = False) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self.fast, host or None, port,
                                                reuse_address=True,
                                                reuse_port=reuse_port or None)

    async def stop(self, timeout_s: float) -> None:
        """No new connections; the fast path's finish their request (at most
        ``timeout_s``) and close. aiohttp's are closed by its runner's cleanup."""
        if self._server is not None:
            self._server.close()
            self._server = None
        await self.fast.shutdown(timeout_s)
