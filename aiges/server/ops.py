"""Operations (SPEC 5): /ready, /metrics, the access log and the engine's own callbacks.

Readiness: 503 "starting" until wrapperInit has succeeded, 503 "draining" from the
moment shutdown begins (the CLI calls ``begin_drain`` when SIGTERM/SIGINT arrives,
before connections drain), 503 "stuck" while every instance is held by an engine call that outlived its
request (a hung wrapperExec: nothing can be served until one returns), 200
"ready" otherwise. /health is liveness only.

Accounting: every once request, and every session at its end, counts in the
metrics and, with ``[aiges] accessLog`` on, writes one log line on ``aiges.access``.
Engine meter calls become a counter, trace calls an info line on ``aiges.engine``
with the sid of the call they belong to ("-" when none is live).
"""
from __future__ import annotations

import asyncio

import logging
from time import perf_counter

from aiohttp import web

from aiges.errors import AigesError
from aiges.metrics import CONTENT_TYPE, Metrics
from aiges.server.responses import json_body
from aiges.server.state import STATE, State
from aiges.sessions import SessionEnd

log = logging.getLogger(__name__)
access_log = logging.getLogger("aiges.access")
trace_log = logging.getLogger("aiges.engine")

STARTING = b'{"status":"starting"}'
DRAINING = b'{"status":"draining"}'
READY = b'{"status":"ready"}'
# Every instance is held by an engine call that outlived its request.
STUCK = b'{"status":"stuck"}'


def add_routes(app: web.Application) -> None:
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)


async def ready(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if state.draining:
        return json_body(DRAINING, 503)
    if not state.ready:
        return json_body(STARTING, 503)
    if not state.runner.pool.usable:
        return json_body(STUCK, 503)
    return json_body(READY)


async def metrics(request: web.Request) -> web.Response:
    # A few dozen series: rendering them on the loop takes well under a millisecond.
    body = request.app[STATE].metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def begin_drain(app: web.Application) -> None:
    """Shutdown has begun: /ready answers 503 from now on."""
    state = app[STATE]
    state.ready, state.draining = False, True
    state.stop_deadline = asyncio.get_running_loop().time() + state.config.drain_timeout_ms / 1000


def once_done(state: State, route: str, sid: str, started: float,
              failure: AigesError | None) -> None:
    """A once request is answered (``started`` is its perf_counter() at arrival)."""
    account_once(state.metrics, state.config.access_log, route, sid, started, failure)


def account_once(metrics: Metrics, with_access_log: bool, route: str, sid: str,
                 started: float, failure: AigesError | None) -> None:
    """A once request in the metrics, the access log and, when failed, the log: for
    aiges-load's server and for Ray Serve replicas alike."""
    if failure is not None:
        level = logging.ERROR if failure.http_status >= 500 else logging.INFO
        # Below ERROR, the access line carries the code and message.
        if level == logging.ERROR or not with_access_log:
            log.log(level, "request failed", extra={"sid": sid, "route": route,
                                                    "code": failure.code,
                                                    "error": failure.message})
    seconds = perf_counter() - started
    code = failure.code if failure is not None else 0
    metrics.request("once", code, seconds)
    if with_access_log:
        fields = {"sid": sid, "route": route, "mode": "once", "code": code,
                  "latency_ms": round(seconds * 1000, 3)}
        if failure is not None:
            fields["error"] = failure.message
        access_log.info("request", extra=fields)


def session_end(state: State, end: SessionEnd) -> None:
    state.metrics.request(end.mode, end.code, end.duration_s)
    if end.frames_in:  # not a session refused at its first frame
        state.metrics.session(end.mode, end.first_result_s, end.frames_out)
    if state.config.access_log:
        access_log.info("session", extra={
            "sid": end.sid, "mode": end.mode, "code": end.code, "frames_in": end.frames_in,
            "frames_out": end.frames_out, "duration_ms": round(end.duration_s * 1000, 3)})


def engine_callbacks(state: State):
    """(meter, trace) for Engine.set_ctrl: called on engine threads, they only hand over
    to thread-safe sinks (a prometheus counter, the logging module)."""
    metrics = state.metrics

    def meter(sid: str, key: str, count: int) -> None:
        metrics.meter(key, count)

    # Off the request path: trace lines below the log level are not even decoded.
    return meter, trace if trace_log.isEnabledFor(logging.INFO) else None


def trace(sid: str, key: str, value: str) -> None:
    trace_log.info("engine trace", extra={"sid": sid, "key": key, "value": value})
