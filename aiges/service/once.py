"""One-shot requests (SPEC 3), whichever transport carried them: the aiohttp route,
the fast HTTP/1.1 path (aiges/server/fast.py), a Ray Serve replica or the Open
Inference Protocol. Parse, run, render, account; a wire format is a Spec
(aiges.service.spec) over this one pipeline.

``begin`` does all of it without a task or an await when the engine call can run
inline and an instance is free, which is the common case for a fast engine; else
it hands back a ``Pending`` whose ``finish`` awaits the engine threads, the pool's
queue or an async engine's callback.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from aiges import errors
from aiges.cancel import gone_error, reason_of
from aiges.errors import AigesError
from aiges.pool import NoInstance
from aiges.protocol import Request, new_sid
from aiges.runner import Runner
from aiges.service.accounting import once_done
from aiges.service.core import Service
from aiges.service.lifecycle import Phase
from aiges.service.spec import NATIVE, Spec

log = logging.getLogger(__name__)

# Documents past these are parsed and rendered on a thread, not on the event loop:
# measured, JSON with many small items costs up to ~40 us per KiB to parse and ~20 to
# render, so 64 KiB holds the loop ~2.5 ms at most; a 36 MiB document would hold it
# for seconds.
OFF_LOOP_BYTES = 64 * 1024
OFF_LOOP_ITEMS = 256
# The headers of most answers: shared, so that a success allocates no dict. Never mutated.
NO_HEADERS: dict[str, str] = {}
STOPPED = Phase.STOPPED


@dataclass(slots=True)
class Answer:
    """What a transport sends back: the status, the body (in the request's Spec) and
    the headers the pipeline adds (Retry-After with 429) besides the transport's own."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=lambda: NO_HEADERS)


class Pending:
    """A request whose engine call must be awaited, whose body is big enough to be
    parsed on a thread (``req`` None, ``body``), or whose outputs, already there
    (``items``), are big enough to be rendered on one."""

    __slots__ = ("state", "spec", "route", "started", "req", "runner", "body", "sid",
                 "items", "params")

    def __init__(self, state: Service, spec: Spec, route: str, started: float,
                 req: Request | None, runner: Runner, body: bytes = b"", sid: str = "",
                 items=None, params: dict[str, str] | None = None):
        self.state, self.spec, self.route, self.started, self.req, self.runner = (
            state, spec, route, started, req, runner)
        self.body, self.sid, self.items = body, sid or (req.sid if req else ""), items
        self.params = params

    async def finish(self) -> Answer:
        sid, items, spec = self.sid, self.items, self.spec
        if self.state.tracing is not None:
            self.state.tracing.current.set(sid)  # whose queue wait the pool reports
        try:
            req = self.req
            if req is None:
                req = await asyncio.to_thread(_parse, self.state, spec, self.body, sid,
                                              self.params)
            if items is None:
                items = await self.runner.once(req)
            if _big(items):
                body = await asyncio.to_thread(spec.success, sid, items, req)
            else:
                body = spec.success(sid, items, req)
            return _done(self.state, self.route, self.started, sid, body, spec)
        except Exception as exc:  # noqa: BLE001 - every request gets its answer
            return failed(self.state, self.route, self.started, sid, exc, spec)
        except asyncio.CancelledError as exc:  # given up (aiges.cancel): counted, no answer
            failed(self.state, self.route, self.started, sid, gone_error(reason_of(exc)), spec)
            raise


def begin(service: Service, spec: Spec, body: bytes, route: str, started: float,
          params: dict[str, str] | None = None, carrier=None) -> Answer | Pending:
    """``started``: perf_counter() when the request arrived. ``route``: the path the
    request came on, for the access log. ``params``: engine params the transport adds
    (from its path or query); they win over the document's. ``carrier``: the request's
    headers or metadata (or just its traceparent and tracestate), for tracing."""
    sid = new_sid()
    if service.tracing is not None:
        service.tracing.start_once(sid, route, started, carrier)
    try:
        runner = service.runner
        if runner is None or service.lifecycle.phase is STOPPED:
            raise _not_serving(service)
        if len(body) > OFF_LOOP_BYTES:
            return Pending(service, spec, route, started, None, runner, body, sid,
                           params=params)
        req = _parse(service, spec, body, sid, params)
        items = runner.once_now(req)
        if items is None or _big(items):
            return Pending(service, spec, route, started, req, runner, items=items)
        return _done(service, route, started, sid, spec.success(sid, items, req), spec)
    except Exception as exc:  # noqa: BLE001 - every request gets its answer
        return failed(service, route, started, sid, exc, spec)


def _not_serving(state: Service) -> AigesError:
    """No engine yet, or the engines are finishing: try another replica or later."""
    why = "starting" if state.runner is None else "stopped"
    return AigesError(errors.INVALID_OPERATION, f"service {why}", 503)


def _parse(state: Service, spec: Spec, body: bytes, sid: str,
           params: dict[str, str] | None) -> Request:
    req = spec.parse(state, body, sid)
    if params:
        req.params.update(params)
    return req


def _big(items) -> bool:
    if len(items) > OFF_LOOP_ITEMS:
        return True
    total = 0
    for item in items:
        total += len(item.data)
    return total > OFF_LOOP_BYTES


def _done(state: Service, route: str, started: float, sid: str, body: bytes,
          spec: Spec) -> Answer:
    once_done(state, route, sid, started, None)
    headers = spec.headers  # after success(): a format may choose them per answer
    return Answer(200, body, NO_HEADERS if headers is None else headers)


def failed(state: Service, route: str, started: float, sid: str, exc: Exception,
           spec: Spec = NATIVE) -> Answer:
    """The error answer, accounted. Anything but an AigesError is a bug of ours: logged
    with its traceback, answered 500 without it. The one place Retry-After is derived:
    no instance freed in time (429) tells the client when to try again."""
    if not isinstance(exc, AigesError):
        log.error("once request failed unexpectedly", exc_info=exc, extra={"sid": sid})
        exc = AigesError(errors.INVALID_OPERATION, "internal error; see the service log", 500)
    once_done(state, route, sid, started, exc)
    return error_answer(exc, sid, spec)


def error_answer(exc: AigesError, sid: str = "", spec: Spec = NATIVE) -> Answer:
    """An error as an answer, not accounted (a refusal that is no once request)."""
    body = spec.failure(exc, sid)
    headers, own = retry_headers(exc), spec.headers
    if own:
        headers = {**own, **headers}
    return Answer(exc.http_status, body, headers)


def retry_headers(exc: AigesError) -> dict[str, str]:
    """Retry-After for an error that says when to retry (NoInstance), else none."""
    if isinstance(exc, NoInstance):
        return {"Retry-After": str(exc.retry_after)}
    return NO_HEADERS
