"""One-shot requests (SPEC 3), whichever HTTP layer carried them: the aiohttp route
or the fast HTTP/1.1 path (aiges/server/fast.py). Parse, run, render, account.

``begin`` does all of it without a task or an await when the engine call can run
inline and an instance is free, which is the common case for a fast engine; else
it hands back a ``Pending`` whose ``finish`` awaits the engine threads, the pool's
queue or an async engine's callback.
"""
from __future__ import annotations

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


@dataclass(slots=True)
class Answer:
    status: int
    body: bytes
    retry_after: int = 0  # seconds, with 429: no instance freed in time


class Pending:
    """A parsed request whose engine call must be awaited."""

    __slots__ = ("state", "route", "started", "req", "runner")

    def __init__(self, state: State, route: str, started: float, req: Request, runner: Runner):
        self.state, self.route, self.started, self.req, self.runner = (
            state, route, started, req, runner)

    async def finish(self) -> Answer:
        req = self.req
        try:
            items = await self.runner.once(req)
            return _done(self.state, self.route, self.started, req.sid,
                         protocol.success(req.sid, items, req.outputs))
        except Exception as exc:  # noqa: BLE001 - every request gets its answer
            return failed(self.state, self.route, self.started, req.sid, exc)


def begin(state: State, body: bytes, route: str, started: float) -> Answer | Pending:
    """``started``: perf_counter() when the request arrived."""
    sid = protocol.new_sid()
    try:
        config = state.config
        req = protocol.parse(protocol.loads(body), config.service, config.header_pass, sid)
        runner = state.runner
        items = runner.once_now(req)
        if items is None:
            return Pending(state, route, started, req, runner)
        return _done(state, route, started, sid, protocol.success(sid, items, req.outputs))
    except Exception as exc:  # noqa: BLE001 - every request gets its answer
        return failed(state, route, started, sid, exc)


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
