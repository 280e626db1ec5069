"""Readiness (SPEC 5), the one answer every transport gives to "may I send work?":
aiohttp's /ready, a Ray replica's /ready and check_health, the Open Inference
Protocol's /v2/health/ready.

503 "starting" until wrapperInit has succeeded, 503 "draining" from the moment
shutdown begins (the lifecycle leaves its ready phase), 503 "stuck" while every
instance is held by an engine call that outlived its request (a hung wrapperExec:
nothing can be served until one returns), 503 "unhealthy" with the engine's reason
while its health check fails (EngineHealth), 200 "ready" otherwise.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import orjson

from aiges.errors import AigesError
from aiges.service.lifecycle import Phase

if TYPE_CHECKING:
    from aiges.service.core import Service

log = logging.getLogger(__name__)

STARTING = b'{"status":"starting"}'
DRAINING = b'{"status":"draining"}'
READY = b'{"status":"ready"}'
# Every instance is held by an engine call that outlived its request.
STUCK = b'{"status":"stuck"}'


def readiness(service: Service) -> tuple[int, bytes]:
    """(HTTP status, JSON body) of the readiness answer."""
    phase = service.lifecycle.phase
    if phase is Phase.DRAINING or phase is Phase.STOPPED:
        return 503, DRAINING
    if phase is Phase.STARTING or service.generation is None:
        return 503, STARTING
    reason = service.engine_health.failing(service.generation)
    if reason is not None:
        return 503, orjson.dumps({"status": "unhealthy", "detail": reason})
    if not service.generation.pool.usable:
        return 503, STUCK
    return 200, READY


class EngineHealth:
    """Polls the current generation's health entry (wrapperHealth) every ``interval_s``
    on a thread of its own, never on the loop. At most one check runs at a time: one
    that does not return within the interval counts as a failure and is waited for, not
    repeated. Logs once when the engine turns unhealthy and once when it recovers."""

    def __init__(self, state: Service):
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
