"""The open sessions of one engine generation (SPEC 2, 4): opening them (an instance
from the pool, wrapperCreate with the result callback), finding them by sid, their
end reported once, and closing them all at shutdown. A session's own life is
aiges.sessions. Knows nothing of HTTP or cffi.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from functools import partial

from aiges import errors
from aiges.engine import Data, Engine
from aiges.errors import AigesError
from aiges.pool import InstancePool, NoInstance
from aiges.runner import Runner, checked
from aiges.sessions import Limits, Session, SessionEnd

log = logging.getLogger(__name__)


class SessionRegistry:
    def __init__(self, engine: Engine, runner: Runner, pool: InstancePool, limits: Limits,
                 realtime: bool, pushed: bool,
                 on_end: Callable[[SessionEnd], None] | None = None,
                 max_sessions: int | None = None):
        self.engine = engine
        self.runner = runner
        self.pool = pool
        self.limits = limits
        self.realtime = realtime
        self.pushed = pushed    # asyncMode: results come only through the callback
        # Results the engine pushes queued outside Python (aiges.engine.PushedResults),
        # or None.
        self.push_queue = getattr(engine, "pushed", None)
        self._read_on: asyncio.AbstractEventLoop | None = None
        self.live: dict[str, Session] = {}
        self._ended: OrderedDict[str, str] = OrderedDict()   # sid -> why, for 10101
        self._empty = asyncio.Event()
        self._empty.set()
        self._tasks: set[asyncio.Task] = set()
        self.on_end = on_end or (lambda end: None)
        self.max_sessions = session_limit(max_sessions, pool.size, engine)
        self._opening = 0

    def spawn(self, coro) -> asyncio.Task:
        """Run ``coro`` in the background, referenced until done (the loop keeps only weak ones)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def open(self, sid: str, params: dict[str, str], psr_ids: list[int],
                   outputs: dict[str, dict], mode: str, ack: bool = False,
                   carrier=None) -> Session:
        """A new session owned by the transport ``mode``; ``ack``: an empty first frame
        when the first write yields no result (upstream's WebSocket does). ``carrier``:
        the request's headers (or gRPC metadata) with the caller's traceparent."""
        session = Session(self, sid, outputs, mode, ack)
        tracing = self.runner.tracing
        if tracing is not None:
            tracing.start_session(sid, mode, carrier)
            tracing.current.set(sid)  # whose queue wait the pool reports
        try:
            if not self.engine.modes.session:
                raise AigesError(errors.INVALID_OPERATION, "this engine has no session mode")
            if self.max_sessions and len(self.live) + self._opening >= self.max_sessions:
                raise NoInstance(f"{self.max_sessions} sessions open ([fc] maxSessions; "
                                 "the other instances are kept for one-shot requests)")
            self._opening += 1
            try:
                await self._create(session, params, psr_ids)
            finally:
                self._opening -= 1
        except BaseException as exc:
            if isinstance(exc, AigesError):
                self.reject(sid, mode, exc)
            if tracing is not None:
                tracing.end_session(session, exc)
            raise
        if tracing is not None:
            tracing.opened(sid, session.instance)
        self.live[sid] = session
        self._empty.clear()
        session.start_timers()
        return session

    async def _create(self, session: Session, params: dict[str, str],
                      psr_ids: list[int]) -> None:
        session.instance = await self.pool.acquire()
        try:
            session.handle = await self.runner.call(self.engine.create, session.sid, params,
                                                    psr_ids, self._callback(session),
                                                    sid=session.sid)
        except BaseException:
            self.pool.release(session.instance)
            raise

    def _callback(self, session: Session):
        """The result callback every session is created with (C: handed to wrapperCreate;
        Python: the route of aiges.dto.callback): an engine that pushes is heard."""
        loop = asyncio.get_running_loop()
        on_loop = threading.get_ident()
        engine_error = self.runner.callback_error
        queued = self.push_queue
        if queued is not None and self._read_on is not loop:
            # Read on the loop sessions open on; a later generation's reader replaces
            # this one (the queue is the process's, its results told apart by tag).
            loop.add_reader(queued.fd, _take_ready, queued)
            self._read_on = loop
        # Results handed over to the loop in batches: an engine thread pushing faster
        # than the loop takes them wakes it once for all that came meanwhile, not once
        # per result (each wake-up is a write to the loop's self-pipe).
        arrived: deque[tuple[list[Data] | None, AigesError | None]] = deque()
        woken = False

        def deliver() -> None:  # on the loop
            nonlocal woken
            woken = False  # first: a result arriving from now on wakes the loop again
            session.push_all(arrived)

        # asyncMode: what a burst's writes pushed is taken with the burst (any other
        # push comes through the queue's fd at the loop's next turn).
        take = partial(_take, queued) if queued is not None and self.pushed else None

        # An engine's threads that push through Python (a Python engine's) need the
        # GIL, which a busy loop gives up every 5 ms: after a burst it is given up once
        # (time.sleep(0)), so that the results they made of it leave with it. Not after
        # one frame: there the loop's own sleep does it, at no cost.
        yield_gil = queued is None and self.pushed

        def collect(frames: int = 1) -> None:  # on the loop
            if take is not None:
                take()
            elif yield_gil and frames > 1:
                time.sleep(0)
            deliver()

        if take is not None or yield_gil or queued is None:
            # (A C engine's results come through its queue, delivered as they are
            # taken: with no burst's to take, nothing is left to collect.)
            session.collect = collect

        def on_result(items: list[Data] | None, ret: int) -> None:
            # An engine thread, or the loop taking queued results: the error text is a
            # C call, made here; then hand over.
            nonlocal woken
            error = engine_error(ret) if ret else None
            if items:
                try:
                    checked(items, "callback")
                except AigesError as exc:
                    items, error = None, exc
            arrived.append((items, error))
            if threading.get_ident() == on_loop:
                if not _TAKE.taking:
                    deliver()
                elif not woken:  # once the take is done, with the rest taken for us
                    woken = True
                    _TAKE.delivers.append(deliver)
            elif not woken:
                woken = True
                loop.call_soon_threadsafe(deliver)

        return on_result

    def get(self, sid: str, mode: str | None = None) -> Session:
        """The open session ``sid`` of transport ``mode`` (another transport's: 10008)."""
        session = self.live.get(sid)
        if session is not None and (mode is None or session.mode == mode):
            return session
        if session is None and sid in self._ended:
            raise AigesError(errors.SESSION_ENDED, f"session {sid} has ended ({self._ended[sid]})")
        raise AigesError(errors.UNKNOWN_SESSION, f"no session {sid}")

    def remove(self, session: Session, reason: str) -> None:
        """Called by Session.end, once: the session is dropped and reported."""
        if self.live.pop(session.sid, None) is not None:
            self._ended[session.sid] = reason
            while len(self._ended) > 4096:
                self._ended.popitem(last=False)
            self.on_end(SessionEnd(
                session.sid, session.mode, session.error.code if session.error else 0,
                session.writes, session.seq,
                asyncio.get_running_loop().time() - session.started, session.first_result_s))
        if not self.live:
            self._empty.set()

    def reject(self, sid: str, mode: str, error: AigesError) -> None:
        """A session refused before ``open`` (its first frame was invalid): reported too."""
        self.on_end(SessionEnd(sid, mode, error.code, 0, 0, 0.0))

    async def close_all(self, error: AigesError, timeout_s: float) -> bool:
        """Shutdown: end every open session with ``error``, waiting at most ``timeout_s``
        for their handles to be destroyed; False (logged) when some could not be: a
        call of theirs is stuck in the engine."""
        sessions = list(self.live.values())
        ends = [asyncio.ensure_future(s.end("shutdown", error)) for s in sessions]
        if not ends:
            return True
        done, pending = await asyncio.wait(ends, timeout=timeout_s)
        if pending:
            stuck = [s.sid for s, end in zip(sessions, ends, strict=True) if end in pending]
            log.error("sessions not destroyed: an engine call of theirs does not return",
                      extra={"sids": stuck})
        return not pending

    async def wait_empty(self) -> None:
        await self._empty.wait()


def _take_ready(queued) -> None:
    """The pushed results' fd is readable: every result queued is taken (the take
    clears the fd, with no read of its own)."""
    _take(queued, True)


class _Take:
    """A take of an engine's push queue by the loop (``_take``): the results of each
    session are handed to it once the take is done, together (Session.push_all), not
    one at a time as they are taken."""

    def __init__(self):
        self.taking = False
        self.delivers: list[Callable[[], None]] = []  # sessions with results taken


_TAKE = _Take()


def _take(queued, readable: bool = False) -> None:
    if _TAKE.taking:  # from a session's handler: the take under way hands it over
        return
    _TAKE.taking = True
    try:
        queued.take(readable)
    finally:
        _TAKE.taking = False
        delivers, _TAKE.delivers = _TAKE.delivers, []
        for deliver in delivers:
            try:
                deliver()
            except Exception:  # noqa: BLE001 - as in a callback: logged, the rest go on
                log.exception("error delivering pushed results")


def session_limit(configured: int | None, instances: int, engine: Engine) -> int:
    """Open sessions allowed at once (0 = as many as instances). By default one instance
    is kept for one-shot requests when the engine has a one-shot mode and more than one
    instance; ``[fc] maxSessions`` says otherwise."""
    if configured is not None:
        return max(configured, 0)
    modes = engine.modes
    if instances > 1 and (modes.once_sync or modes.once_async):
        return instances - 1
    return 0
