"""One-shot requests (SPEC 3), whichever HTTP layer carried them: the aiohttp route
or the fast HTTP/1.1 path (aiges/server/fast.py). Parse, run, render, account.

``begin`` does all of it without a task or an await when the engine call can run
inline and an instance is free, which is the common case for a fast engine; else
it hands back a ``Pending`` whose ``finish`` awaits the engine threads, the pool's
queue or an async engine's callback.

``spec``: the wire format of the request and its answers (``parse``, ``success``,
``failure``); by default the JSON of SPEC 3. The Open Inference Protocol brings its own
(aiges.oip.spec). The same steps, limits and accounting serve every format.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiges import errors, protocol
from aiges.errors import AigesError
from aiges.pool import NoInstance
from aiges.protocol import Request
from aiges.runner import Runner
from aiges.server.ops import once_done
from aiges.server.state import State

log = logging.getLogger(__name__)

# Documents past these are parsed and rendered on a thread, not on the event loop:
# measured, JSON with many small items costs up to ~40 us per KiB to parse and ~20 to
# render, so 64 KiB holds the loop ~2.5 ms at most; a 36 MiB document would hold it
# for seconds.
OFF_LOOP_BYTES = 64 * 1024
OFF_LOOP_ITEMS = 256


@dataclass(slots=True)
class Answer:
    status: int
    body: bytes
    retry_after: int = 0  # seconds, with 429: no instance freed in time
    headers: dict[str, str] | None = None  # a spec's own (Content-Type, ...)


class JsonSpec:
    """SPEC 3's request and response documents, as a wire format (the default)."""

    content_type = "application/json"
    headers = None

    @staticmethod
    def parse(state: State, body: bytes, sid: str) -> Request:
        return state.parse(protocol.loads(body), sid)

    @staticmethod
    def success(sid: str, items, req: Request) -> bytes:
        return protocol.success(sid, items, req.outputs)

    @staticmethod
    def failure(exc: AigesError, sid: str) -> bytes:
        return protocol.failure(exc.code, exc.message, sid)


JSON = JsonSpec()


class Pending:
    """A request whose engine call must be awaited, whose body is big enough to be
    parsed on a thread (``req`` None, ``body``), or whose outputs, already there
    (``items``), are big enough to be rendered on one."""

    __slots__ = ("state", "route", "started", "req", "runner", "body", "sid", "items", "spec")

    def __init__(self, state: State, route: str, started: float, req: Request | None,
                 runner: Runner, body: bytes = b"", sid: str = "", items=None, spec=JSON):
        self.state, self.route, self.started, self.req, self.runner = (
            state, route, started, req, runner)
        self.body, self.sid, self.items = body, sid or (req.sid if req else ""), items
        self.spec = spec

    async def finish(self) -> Answer:
        sid, items, spec = self.sid, self.items, self.spec
        try:
            req = self.req
            if req is None:
                req = await asyncio.to_thread(spec.parse, self.state, self.body, sid)
            if items is None:
                items = await self.runner.once(req)
            if _big(items):
                body = await asyncio.to_thread(spec.success, sid, items, req)
            else:
                body = spec.success(sid, items, req)
            return _done(self.state, self.route, self.started, sid, body, spec)
        except Exception as exc:  # noqa: BLE001 - every request gets its answer
            return failed(self.state, self.route, self.started, sid, exc, spec)


def begin(state: State, body: bytes, route: str, started: float,
          spec=JSON) -> Answer | Pending:
    """``started``: perf_counter() when the request arrived."""
    sid = protocol.new_sid()
    try:
        runner = state.runner
        if len(body) > OFF_LOOP_BYTES:
            return Pending(state, route, started, None, runner, body, sid, spec=spec)
        req = spec.parse(state, body, sid)
        items = runner.once_now(req)
        if items is None or _big(items):
            return Pending(state, route, started, req, runner, items=items, spec=spec)
        return _done(state, route, started, sid, spec.success(sid, items, req), spec)
    except Exception as exc:  # noqa: BLE001 - every request gets its answer
        return failed(state, route, started, sid, exc, spec)


def _big(items) -> bool:
    if len(items) > OFF_LOOP_ITEMS:
        return True
    total = 0
    for item in items:
        total += len(item.data)
    return total > OFF_LOOP_BYTES


def _done(state: State, route: str, started: float, sid: str, body: bytes,
          spec=JSON) -> Answer:
    once_done(state, route, sid, started, None)
    return Answer(200, body, 0, spec.headers)


def failed(state: State, route: str, started: float, sid: str, exc: Exception,
           spec=JSON) -> Answer:
    """The error answer, accounted. Anything but an AigesError is a bug of ours: logged
    with its traceback, answered 500 without it."""
    if not isinstance(exc, AigesError):
        log.error("once request failed unexpectedly", exc_info=exc, extra={"sid": sid})
        exc = AigesError(errors.INVALID_OPERATION, "internal error; see the service log", 500)
    once_done(state, route, sid, started, exc)
    retry = exc.retry_after if isinstance(exc, NoInstance) else 0
    return Answer(exc.http_status, spec.failure(exc, sid), retry, spec.headers)
