"""Operations (SPEC 5): /ready, /metrics, the access log and the engine's own callbacks.

Readiness: 503 "starting" until wrapperInit has succeeded, 503 "draining" from the
moment shutdown begins (the CLI calls ``begin_drain`` when SIGTERM/SIGINT arrives,
before connections drain), 503 "stuck" while every instance is held by an engine call that outlived its
request (a hung wrapperExec: nothing can be served until one returns), 503
"unhealthy" with the engine's reason while its health check fails (EngineHealth),
200 "ready" otherwise. /health is liveness only.

Accounting: every once request, and every session at its end, counts in the
metrics and, with ``[aiges] accessLog`` on, writes one log line on ``aiges.access``.
Engine meter calls become a counter, trace calls an info line on ``aiges.engine``
with the sid of the call they belong to ("-" when none is live).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from time import perf_counter

import orjson
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


class EngineHealth:
    """Polls the current generation's health entry (wrapperHealth) every ``interval_s``
    on a thread of its own, never on the loop. At most one check runs at a time: one
    that does not return within the interval counts as a failure and is waited for, not
    repeated. Logs once when the engine turns unhealthy and once when it recovers."""

    def __init__(self, state: State):
        self.state = state
        self.interval_s = state.config.health_interval_s
        self.reason: str | None = None  # the engine's reason while its check fails
        self.polled = None  # the generation that reason belongs to
        self._task: asyncio.Task | None = None
        self._call: asyncio.Future | None = None  # the check in flight
        state.metrics.engine_healthy.set_function(
            lambda: 0 if self.failing(state.generation) else 1)

    def failing(self, gen) -> str | None:
        """The reason ``gen``'s engine is unhealthy, or None (a new generation is
        healthy until its own check says otherwise)."""
        return self.reason if gen is not None and gen is self.polled else None

    def start(self) -> None:
        if self.interval_s > 0:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Before the engines finish: no new check, and the one running (if any) given
        a moment to return, so that wrapperFini does not race it."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._call is not None:
            await asyncio.wait({self._call}, timeout=1.0)

    async def _run(self) -> None:
        gen = None
        while True:
            if self._call is None or gen is not self.state.generation:
                gen = self.state.generation  # a reload: the old engine's check is left
                check = getattr(gen.engine, "health", None) if gen is not None else None
                if check is None:
                    self._call = None
                    await asyncio.sleep(self.interval_s)
                    continue
                self._call = asyncio.ensure_future(gen.runner.call_aside(check))
            done, _ = await asyncio.wait({self._call}, timeout=self.interval_s)
            if not done:
                self._record(gen, False, f"health check did not return within "
                                         f"{self.interval_s:g} s")
                continue
            call, self._call = self._call, None
            try:
                answer = call.result()
            except AigesError as exc:
                answer = (False, exc.message)
            except Exception as exc:  # noqa: BLE001 (the engine's failure is its reason)
                answer = (False, f"{type(exc).__name__}: {exc}")
            if answer is not None:
                self._record(gen, *answer)
            await asyncio.sleep(self.interval_s)

    def _record(self, gen, ok: bool, detail: str) -> None:
        was = self.failing(gen)
        if ok:
            if was is not None:
                log.info("engine healthy again: /ready answers 200",
                         extra={"generation": gen.number})
            self.polled, self.reason = gen, None
            return
        self.state.metrics.health_failure()
        detail = detail or "the engine reported itself unhealthy"
        if was is None:
            log.error("engine unhealthy: /ready answers 503",
                      extra={"generation": gen.number, "detail": detail})
        self.polled, self.reason = gen, detail


HEALTH = web.AppKey("health", EngineHealth)


def add_routes(app: web.Application) -> None:
    app[HEALTH] = EngineHealth(app[STATE])  # started and stopped with the engine (app.py)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)


async def ready(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if state.draining:
        return json_body(DRAINING, 503)
    if not state.ready:
        return json_body(STARTING, 503)
    reason = request.app[HEALTH].failing(state.generation)
    if reason is not None:
        return json_body(orjson.dumps({"status": "unhealthy", "detail": reason}), 503)
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
    if state.tracing is not None:
        state.tracing.end_once(sid, failure)


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
