"""Accounting: every once request, and every session at its end, counts in the
metrics and, with ``[aiges] accessLog`` on, writes one log line on ``aiges.access``;
whatever transport carried it. Engine meter calls become a counter, trace calls an
info line on ``aiges.engine`` with the sid of the call they belong to ("-" when none
is live).
"""
from __future__ import annotations

import logging
from time import perf_counter
from typing import TYPE_CHECKING

from aiges.errors import AigesError
from aiges.metrics import Metrics
from aiges.sessions import SessionEnd

if TYPE_CHECKING:
    from aiges.service.core import Service

log = logging.getLogger(__name__)
access_log = logging.getLogger("aiges.access")
trace_log = logging.getLogger("aiges.engine")


def once_done(service: Service, route: str, sid: str, started: float,
              failure: AigesError | None) -> None:
    """A once request is answered (``started`` is its perf_counter() at arrival)."""
    account_once(service.metrics, service.config.access_log, route, sid, started, failure)
    if service.tracing is not None:
        service.tracing.end_once(sid, failure)


def account_once(metrics: Metrics, with_access_log: bool, route: str, sid: str,
                 started: float, failure: AigesError | None) -> None:
    """A once request in the metrics, the access log and, when failed, the log."""
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


def session_end(service: Service, end: SessionEnd) -> None:
    """A session ended (or was refused at its first frame): the registry calls this
    once per session, whichever transport carried it."""
    metrics = service.metrics
    metrics.request(end.mode, end.code, end.duration_s)
    if end.frames_in:  # not a session refused at its first frame
        metrics.session(end.mode, end.first_result_s, end.frames_out)
    if service.config.access_log:
        access_log.info("session", extra={
            "sid": end.sid, "mode": end.mode, "code": end.code, "frames_in": end.frames_in,
            "frames_out": end.frames_out, "duration_ms": round(end.duration_s * 1000, 3)})


def engine_callbacks(service: Service):
    """(meter, trace) for Engine.set_ctrl: called on engine threads, they only hand over
    to thread-safe sinks (a prometheus counter, the logging module)."""
    metrics = service.metrics

    def meter(sid: str, key: str, count: int) -> None:
        metrics.meter(key, count)

    # Off the request path: trace lines below the log level are not even decoded.
    return meter, trace if trace_log.isEnabledFor(logging.INFO) else None


def trace(sid: str, key: str, value: str) -> None:
    trace_log.info("engine trace", extra={"sid": sid, "key": key, "value": value})
