"""One-shot requests (SPEC 3), whichever HTTP layer carried them: the aiohttp route
or the fast HTTP/1.1 path (aiges/server/fast.py). Parse, run, render, account.

``begin`` does all of it without a task or an await when the engine call can run
inline and an instance is free, which is the common case for a fast engine; else
it hands back a ``Pending`` whose ``finish`` awaits the engine threads, the pool's
queue or an async engine's callback.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiges import errors, protocol
from aiges.cancel import gone_error, reason_of
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


class Pending:
    """A request whose engine call must be awaited, whose body is big enough to be
    parsed on a thread (``req`` None, ``body``), or whose outputs, already there
    (``items``), are big enough to be rendered on one."""

    __slots__ = ("state", "route", "started", "req", "runner", "body", "sid", "items")

    def __init__(self, state: State, route: str, started: float, req: Request | None,
                 runner: Runner, body: bytes = b"", sid: str = "", items=None):
        self.state, self.route, self.started, self.req, self.runner = (
            state, route, started, req, runner)
        self.body, self.sid, self.items = body, sid or (req.sid if req else ""), items

    async def finish(self) -> Answer:
        sid, items = self.sid, self.items
        try:
            req = self.req
            if req is None:
                req = await asyncio.to_thread(_parse, self.state, self.body, sid)
            if items is None:
                items = await self.runner.once(req)
            if _big(items):
                body = await asyncio.to_thread(protocol.success, sid, items, req.outputs)
            else:
                body = protocol.success(sid, items, req.outputs)
            return _done(self.state, self.route, self.started, sid, body)
        except Exception as exc:  # noqa: BLE001 - every request gets its answer
            return failed(self.state, self.route, self.started, sid, exc)
        except asyncio.CancelledError as exc:  # given up (aiges.cancel): counted, no answer
            failed(self.state, self.route, self.started, sid, gone_error(reason_of(exc)))
            raise


def begin(state: State, body: bytes, route: str, started: float) -> Answer | Pending:
    """``started``: perf_counter() when the request arrived."""
    sid = protocol.new_sid()
    try:
        runner = state.runner
        if len(body) > OFF_LOOP_BYTES:
            return Pending(state, route, started, None, runner, body, sid)
        req = _parse(state, body, sid)
        items = runner.once_now(req)
        if items is None or _big(items):
            return Pending(state, route, started, req, runner, items=items)
        return _done(state, route, started, sid, protocol.success(sid, items, req.outputs))
    except Exception as exc:  # noqa: BLE001 - every request gets its answer
        return failed(state, route, started, sid, exc)


def _parse(state: State, body: bytes, sid: str) -> Request:
    return state.parse(protocol.loads(body), sid)


def _big(items) -> bool:
    if len(items) > OFF_LOOP_ITEMS:
        return True
    total = 0
    for item in items:
        total += len(item.data)
    return total > OFF_LOOP_BYTES


def _done(state: State, route: str, started: float, sid: str, body: bytes) -> Answer:
    once_done(state, route, sid, started, None)
    return Answer(200, body)


def failed(state: State, route: str, started: float, sid: str, exc: Exception) -> Answer:
    """The error answer, accounted. Anything but an AigesError is a bug of ours: logged
    with its traceback, answered 500 without it."""
    if not isinstance(exc, AigesError):
        log.error("once request failed unexpectedly", exc_info=exc, extra={"sid": sid})
        exc = AigesError(errors.INVALID_OPERATION, "internal error; see the service log", 500)
    once_done(state, route, sid, started, exc)
    retry = exc.retry_after if isinstance(exc, NoInstance) else 0
    return Answer(exc.http_status, protocol.failure(exc.code, exc.message, sid), retry)
