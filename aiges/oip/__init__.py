"""The Open Inference Protocol (KServe v2), as Triton, KServe, MLServer and TorchServe
speak it: over HTTP under /v2 on the service's port (aiges.oip.http), over gRPC on
``[grpc] port`` (aiges.oip.grpc_server). docs/OIP.md has the routes and the mapping.

Adapters only: requests go through the same once pipeline and session machinery as
the native routes, so codes, limits, metrics and drain are the same.
"""
from __future__ import annotations

import contextlib

from aiohttp import web

from aiges.oip import http
from aiges.server.state import STATE

HANDLERS = http.HANDLERS  # by route name: aiges.service.routes.oip_routes


def setup(app: web.Application) -> None:
    """What the /v2 handlers share, and the gRPC server's life (after the engine's:
    registered later)."""
    http.setup(app)
    app.cleanup_ctx.append(_grpc)


async def _grpc(app: web.Application):
    if not app[STATE].config.grpc_port:
        yield
        return
    from aiges.oip.grpc_server import lifecycle  # grpc loads only where it serves
    async with contextlib.asynccontextmanager(lifecycle)(app):
        yield


def grpc_port(app: web.Application) -> int:
    """The port gRPC listens on; 0 when off."""
    if not app[STATE].config.grpc_port:
        return 0
    from aiges.oip.grpc_server import GRPC
    server = app.get(GRPC)
    return server.port if server is not None else 0


async def drain(app: web.Application) -> None:
    """SIGTERM: gRPC takes no new calls; running ones get the drain time."""
    if app[STATE].config.grpc_port:
        from aiges.oip.grpc_server import drain as grpc_drain
        await grpc_drain(app)
