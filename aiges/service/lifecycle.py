"""The service's life, owned by one object: starting -> ready -> draining -> stopped.

``start()`` opens generation 1 (wrapperSetCtrl, wrapperInit) and makes the service
ready. Shutdown is ``begin_drain()`` (the moment SIGTERM arrives: not ready from
now on, and the drain time starts), ``drain(timeout)`` (open sessions get that
time to end) and ``close()`` (the engine health check stops, every generation
finishes: sessions closed, calls awaited within what is left of the drain time,
wrapperFini). Transports ask it (``accepting``, ``phase``) instead of keeping flags;
what they own themselves (sockets, WebSockets) they close around these calls.
"""
from __future__ import annotations

import asyncio
import enum
import logging
from typing import TYPE_CHECKING

from aiges import errors
from aiges.errors import AigesError

if TYPE_CHECKING:
    from aiges.service.core import Service

log = logging.getLogger(__name__)


class Phase(enum.Enum):
    STARTING = "starting"  # wrapperInit has not succeeded yet
    READY = "ready"        # serving
    DRAINING = "draining"  # shutdown has begun: in-flight work finishes, /ready is 503
    STOPPED = "stopped"    # the engines are finishing or finished


class Lifecycle:
    def __init__(self, service: Service):
        self.service = service
        self.phase = Phase.STARTING
        self.stop_deadline: float | None = None  # loop time when the drain time ends
        self._drained = False  # open sessions had their drain time

    @property
    def accepting(self) -> bool:
        """New work of the kind that outlives a request (a reload, a resource) may
        start: the engine is up and shutdown has not begun."""
        return self.phase is Phase.READY

    async def start(self) -> None:
        """Generation 1 started and installed: ready. AigesError when wrapperInit
        fails (the engine is closed again)."""
        from aiges.service import reload  # reload needs the service built first

        service = self.service
        gen = reload.new_generation(service, service.first_engine, 1)
        await reload.start(service, gen)
        log.info("engine initialised", extra={"engine": gen.engine.path, "version": gen.version,
                                              "instances": gen.pool.size})
        reload.install(service, gen)
        if self.phase is Phase.STARTING:
            self.phase = Phase.READY
        service.engine_health.start()  # [aiges] healthIntervalS: wrapperHealth polls, off the loop

    def begin_drain(self) -> None:
        """Shutdown has begun (SIGTERM): not ready from now on, and the drain time runs."""
        self._leave_ready()
        self.stop_deadline = asyncio.get_running_loop().time() + self.drain_s

    async def drain(self, timeout_s: float | None = None) -> bool:
        """Open sessions get ``timeout_s`` (default: the drain time) to end. Once: False
        when an earlier call had done it, or nothing was started."""
        self._leave_ready()
        service = self.service
        if service.generation is None or self._drained:
            return False
        self._drained = True
        try:
            await asyncio.wait_for(service.generations.wait_sessions_ended(),
                                   self.drain_s if timeout_s is None else timeout_s)
        except TimeoutError:
            log.warning("sessions still open at the end of the drain time",
                        extra={"sessions": len(service.generations.live)})
        return True

    async def close(self) -> None:
        """Every generation finishes (the current one and any replaced one still
        retiring), each once, within what is left of the drain time (sessions had it
        already) but at least a moment for sessions to be destroyed."""
        self.phase = Phase.STOPPED
        service = self.service
        await service.engine_health.stop()
        async with service.reload_lock:  # a reload under way completes (init cannot be cut short)
            generations = service.generations.all()
        stopped = AigesError(errors.INVALID_OPERATION, "service stopped")
        await asyncio.gather(*(g.finish(stopped, max(self.drain_left(), 0.5))
                               for g in generations))
        service.clean = (all(g.clean for g in generations)
                         and not service.generations.left_running)
        if service.tasks:
            await asyncio.gather(*service.tasks, return_exceptions=True)

    @property
    def drain_s(self) -> float:
        return self.service.config.drain_timeout_ms / 1000

    def drain_left(self) -> float:
        """Seconds left of the shutdown's drain time (all of it before shutdown)."""
        if self.stop_deadline is None:
            return self.drain_s
        return max(self.stop_deadline - asyncio.get_running_loop().time(), 0.0)

    def _leave_ready(self) -> None:
        if self.phase is Phase.STARTING or self.phase is Phase.READY:
            self.phase = Phase.DRAINING
