"""Operations (SPEC 5) over aiohttp: /ready and /metrics. What they answer is the
core's (aiges.service.health.readiness, the service's metrics); the CLI's SIGTERM
handling makes the service leave its ready phase (Lifecycle.begin_drain) before
connections drain. /health is liveness only (aiges/server/app.py)."""
from __future__ import annotations

from aiohttp import web

from aiges.metrics import CONTENT_TYPE
from aiges.server.responses import json_body
from aiges.server.state import STATE
from aiges.service.health import readiness


async def ready(request: web.Request) -> web.Response:
    status, body = readiness(request.app[STATE])
    return json_body(body, status)


async def metrics(request: web.Request) -> web.Response:
    # A few dozen series: rendering them on the loop takes well under a millisecond.
    body = request.app[STATE].metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
