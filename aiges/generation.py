"""Engine generations: one loaded engine with its own instance pool, runner, session
registry and personalization ids. A hot reload (aiges/server/reload.py) starts a new
generation while the old one serves, makes it the current one, then lets the old one
finish its work and retire: wrapperFini, close. Knows nothing of HTTP.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from aiges import errors
from aiges.board import Board
from aiges.config import Config
from aiges.engine import Engine
from aiges.errors import AigesError
from aiges.metrics import Metrics
from aiges.pool import InstancePool
from aiges.resources import ResourceIds
from aiges.runner import Runner
from aiges.session_registry import SessionRegistry
from aiges.sessions import Limits, Session, SessionEnd

log = logging.getLogger(__name__)
# The longest wrapperFini may take before it is left running (an engine deadlocked
# in a call may deadlock in fini too).
FINI_GRACE_S = 1.5


def open_engine(path: str, private: bool = False) -> Engine:
    """A wrapper.py is a Python engine; anything else is a shared library. ``private``
    (a reload): a copy of the library, or a fresh module, so that nothing of an engine
    already loaded from ``path`` is handed back. Blocking: the library's constructors
    or the module's top level run here."""
    if path.endswith(".py"):
        from aiges.python import load
    else:
        from aiges.native import load
    return load(path, private) if private else load(path)


class Generation:
    def __init__(self, number: int, engine: Engine, config: Config, metrics: Metrics,
                 on_session_end: Callable[[SessionEnd], None], board: Board | None = None):
        self.number = number
        self.engine = engine
        self.version = ""
        self.pool = InstancePool(config.instances, config.queue_limit, config.wait_ms / 1000)
        self.runner = Runner(engine, self.pool, config.once_timeout_ms / 1000,
                             config.async_mode, metrics, config.inline_max_us, board,
                             config.batch_max_size, config.batch_max_delay_ms / 1000)
        limits = Limits(idle_s=config.session_ttl_ms / 1000,
                        lifetime_s=config.ws_session_timeout_s,
                        read_wait_s=config.read_wait_ms / 1000)
        self.sessions = SessionRegistry(engine, self.runner, self.pool, limits,
                                        config.realtime_rlt, pushed=config.async_mode,
                                        on_end=on_session_end,
                                        max_sessions=config.max_sessions)
        self.resources = ResourceIds()  # ids loaded into this engine
        self._finishing: asyncio.Task | None = None
        self.clean = True  # False once finishing left an engine call running

    async def start(self, wrapper_config: dict[str, str], callbacks) -> None:
        """wrapperSetCtrl and wrapperInit on the engine threads. When init fails the
        engine is closed (no wrapperFini: it never started) and the error raised."""
        try:
            await self.runner.call(self.engine.set_ctrl, *callbacks)
            await self.runner.call(self.engine.init, wrapper_config)
            self.version = await self.runner.call(self.engine.version)
        except Exception:
            self.runner.close()
            self.engine.close()
            raise

    async def drain(self, timeout_s: float) -> bool:
        """Until its sessions have ended and every instance is back (its once requests
        answered), at most ``timeout_s``; False when time ran out."""
        try:
            async with asyncio.timeout(timeout_s):
                await self.sessions.wait_empty()
                if self.runner.batcher is not None:
                    await self.runner.batcher.wait_idle()
                await self.pool.wait_idle()
        except TimeoutError:
            return False
        return True

    async def finish(self, error: AigesError, timeout_s: float) -> None:
        """Close open sessions with ``error``, wait (up to ``timeout_s``) for calls still
        running, wrapperFini, close the engine. Runs once however often it is called
        (a reload's retirement and shutdown may both ask); every caller waits for it.
        Bounded whatever the engine does: a call that never returns is logged and left
        behind (``clean`` False), and so is a wrapperFini that hangs."""
        if self._finishing is None:
            self._finishing = asyncio.get_running_loop().create_task(
                self._finish(error, timeout_s))
        await asyncio.shield(self._finishing)

    @property
    def finished(self) -> bool:
        return self._finishing is not None and self._finishing.done()

    async def _finish(self, error: AigesError, timeout_s: float) -> None:
        pool, runner = self.pool, self.runner
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        pool.close(f"engine generation {self.number} is finishing: retry")
        await self.sessions.close_all(error, max(deadline - loop.time(), 0.0))
        try:
            # Calls that outlived their request still hold instances: fini only after them.
            await asyncio.wait_for(pool.wait_idle(), max(deadline - loop.time(), 0.0))
        except TimeoutError:
            log.error("engine calls still running at wrapperFini",
                      extra={"in_use": pool.in_use, "generation": self.number,
                             "calls": runner.stuck_calls()})
        try:
            await asyncio.wait_for(runner.call_aside(self.engine.fini), FINI_GRACE_S)
            log.info("engine finished (wrapperFini)",
                     extra={"generation": self.number, "version": self.version})
        except AigesError as exc:
            log.error("wrapperFini failed", extra={"code": exc.code, "error": exc.message,
                                                   "generation": self.number})
        except TimeoutError:
            log.error("wrapperFini did not return: left running",
                      extra={"generation": self.number, "seconds": FINI_GRACE_S})
            self.clean = False
        if pool.in_use:
            # Calls that only fini could end (a hang) return now: let them hand back.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pool.wait_idle(), 0.5)
        if runner.inflight or pool.in_use:
            self.clean = False
        runner.close()
        if not self.clean:
            # A thread still inside the library would return into unmapped code: the
            # image stays mapped (a leak, not a crash of the process serving on).
            log.error("engine not closed: calls still running in it",
                      extra={"generation": self.number, "in_use": pool.in_use})
            return
        self.engine.close()


class Generations:
    """The current generation, which new requests and sessions go to, and the retired
    ones still finishing their once requests and sessions."""

    def __init__(self) -> None:
        self.current: Generation | None = None
        self.retiring: list[Generation] = []
        self.reloads = 0  # successful reloads since start-up
        self.left_running = False  # a retired engine still has a call running in it

    def all(self) -> list[Generation]:
        return ([self.current] if self.current else []) + self.retiring

    def swap(self, new: Generation) -> Generation | None:
        """``new`` serves from now on; the old one (returned) is retiring. Synchronous:
        no request can see a state between the two."""
        old, self.current = self.current, new
        if old is not None:
            self.retiring.append(old)
            self.reloads += 1
        return old

    def retired(self, gen: Generation) -> None:
        if gen in self.retiring:
            self.retiring.remove(gen)
        if not gen.clean:
            self.left_running = True

    def session(self, sid: str, mode: str) -> Session:
        """An open session of transport ``mode`` in any generation: sessions finish where
        they started. Unknown (or another transport's): 10008; ended: 10101 (the current
        generation's answer wins)."""
        gens = self.all()
        for gen in gens:
            session = gen.sessions.live.get(sid)
            if session is not None and session.mode == mode:
                return session
        for gen in gens:
            try:
                gen.sessions.get(sid, mode)
            except AigesError as exc:
                if exc.code != errors.UNKNOWN_SESSION:
                    raise
        raise AigesError(errors.UNKNOWN_SESSION, f"no session {sid}")

    @property
    def live(self) -> dict[str, Session]:
        """Open sessions of every generation (read by the sessions gauge at scrape time)."""
        if not self.retiring:
            return self.current.sessions.live if self.current else {}
        merged: dict[str, Session] = {}
        for gen in self.all():
            merged.update(gen.sessions.live)
        return merged

    async def wait_sessions_ended(self) -> None:
        for gen in self.all():
            await gen.sessions.wait_empty()
