"""Streaming sessions (SPEC 2, 4): one engine instance per session for its life.

Create -> (Write, Read*)* -> Destroy. Sync engines are read after every write
(realTimeRlt) or after the last input, and then polled until a final output;
async engines push results through the callback. Destroy is called exactly once
per successful Create: on the final result, an error, a client leaving, an idle
timeout or shutdown. Knows nothing of HTTP or cffi.
"""
from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Callable

from aiges import errors
from aiges.engine import Data, DataStatus, Engine
from aiges.errors import AigesError
from aiges.pool import InstancePool, NoInstance
from aiges.runner import Runner, checked, input_size

log = logging.getLogger(__name__)

FINAL = (DataStatus.END, DataStatus.ONCE)
# Sync engines whose final output comes after the last write are polled with
# this back-off (the ABI has no other way to learn of it).
POLL_FIRST_S, POLL_MAX_S = 0.001, 0.02


@dataclass(frozen=True, slots=True)
class SessionEnd:
    """What a finished (or refused) session reports once: to metrics and the access log."""

    sid: str
    mode: str            # the transport: session_ws, session_http
    code: int            # 0, or the code of the error it ended with
    frames_in: int       # frames written
    frames_out: int      # result frames handed out
    duration_s: float


class Session:
    def __init__(self, registry: "SessionRegistry", sid: str, instance: int | None,
                 outputs: dict[str, dict], mode: str = "session"):
        self.registry = registry
        self.sid = sid
        self.outputs = outputs
        self.instance = instance
        self.mode = mode
        self.started = asyncio.get_running_loop().time()
        self.writes = 0
        self.handle: object = None
        self.seq = 0                       # results handed out so far
        self.ended = False                 # final output seen, error, or closed
        self.error: AigesError | None = None
        self._results: deque[list[Data]] = deque()
        self._changed = asyncio.Event()
        self._lock = asyncio.Lock()        # calls for one session are sequential
        self._inputs: dict[str, int] = {}  # input key -> last status
        self._last_input = False
        self._final_output = False
        self._poller: asyncio.Task | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._destroyed = False
        self._released = False             # wrapperDestroy has returned

    # -- called by the transport -------------------------------------------------------
    async def write(self, data: list[Data]) -> None:
        if self.ended:
            raise self.error or AigesError(errors.SESSION_ENDED, f"session {self.sid} has ended")
        if self._last_input:
            raise AigesError(errors.INVALID_OPERATION, "every input has ended; no more writes")
        self.touch()
        self.writes += 1
        for item in data:
            self._inputs[item.key] = item.status
        self._last_input = all(s in FINAL for s in self._inputs.values())
        engine, runner = self.registry.engine, self.registry.runner
        failure = None
        async with self._lock:
            try:
                await runner.call(engine.write, self.handle, data, size=input_size(data))
                if not self.registry.pushed and (self.registry.realtime or self._last_input):
                    await self._read_available()
            except AigesError as exc:
                failure = exc
        if failure is not None:
            await self.fail(failure)
        elif self._last_input:
            self._check_finished()
            if not self.registry.pushed and not self.ended:
                self._poller = asyncio.create_task(self._poll_until_final())

    async def results(self, wait_s: float = 0.0) -> list[tuple[int, list[Data]]]:
        """(seq, outputs) not yet taken, waiting up to ``wait_s`` for the first one.
        After the last result of a failed session, ``error`` says why."""
        if not self._results and not self._released and wait_s > 0:
            self._changed.clear()
            try:
                async with asyncio.timeout(wait_s):
                    await self._changed.wait()
            except TimeoutError:
                pass
        taken = list(enumerate(self._results, self.seq))
        self._results.clear()
        self.seq += len(taken)
        if taken or not self.ended:
            self.touch()
        return taken

    @property
    def inputs_ended(self) -> bool:
        return self._last_input

    @property
    def drained(self) -> bool:
        """Ended, the engine let go, and every result handed out: nothing more will come."""
        return self._released and not self._results

    async def close(self, error: AigesError | None = None) -> None:
        """End the session now (client gone, timeout, shutdown); destroys the handle."""
        self.set_error(error)
        self.ended = True
        await self._destroy()

    def set_error(self, error: AigesError | None) -> None:
        """The error the session ends with, unless it already ended or has one."""
        if error is not None and self.error is None and not self.ended:
            self.error = error

    async def fail(self, exc: AigesError) -> None:
        log.warning("session failed", extra={"sid": self.sid, "code": exc.code,
                                             "error": exc.message})
        await self.close(exc)

    def touch(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if not self.drained:
            self._timer = asyncio.get_running_loop().call_later(
                self.registry.ttl_s, self._expire)

    def stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- internals -------------------------------------------------------------------------
    def _expire(self) -> None:
        log.info("session idle timeout", extra={"sid": self.sid, "ttl_s": self.registry.ttl_s})
        error = AigesError(errors.SESSION_TIMEOUT,
                           f"session idle for more than {self.registry.ttl_s:g}s")
        self.set_error(error)  # now, so that forget reports it
        self.registry.spawn(self.close(error))
        self.registry.forget(self, ended_by="timeout")

    def push(self, items: list[Data] | None, error: AigesError | None) -> None:
        """A result (on the loop thread): from a read or an engine callback. Results that
        reach us before wrapperDestroy has returned are kept, even after an error."""
        if self._released:
            return
        if error is not None:
            if self.ended:
                return
            self.registry.spawn(self.fail(error))
            return
        if items:
            self._results.extend(_frames(items))
            self._changed.set()
            self._final_output |= any(i.status in FINAL for i in items)
            self._check_finished()

    def _check_finished(self) -> None:
        # Finished when every input stream has ended and an output reached End/Once.
        if self._final_output and self._last_input and not self.ended:
            self.ended = True
            self._changed.set()
            self.registry.spawn(self._destroy())

    async def _read_available(self) -> None:
        engine, runner = self.registry.engine, self.registry.runner
        while not self.ended:
            items = await runner.call(engine.read, self.handle)
            if items is None:
                return
            self.push(checked(items, "read"), None)

    async def _poll_until_final(self) -> None:
        delay = POLL_FIRST_S
        while not self.ended:
            await asyncio.sleep(delay)
            failure = None
            async with self._lock:
                if self.ended:
                    return
                before = len(self._results)
                try:
                    await self._read_available()
                except AigesError as exc:
                    failure = exc
            if failure is not None:
                await self.fail(failure)
                return
            delay = POLL_FIRST_S if len(self._results) > before else min(delay * 2, POLL_MAX_S)

    async def _destroy(self) -> None:
        if self._destroyed:
            return
        self._destroyed = True
        if self._poller is not None and self._poller is not asyncio.current_task():
            self._poller.cancel()
        await self.registry.destroy(self)
        # The client hears of the end only once the engine has let go: results it
        # pushed until then are kept and go out first.
        self._released = True
        self._changed.set()


def _frames(items: list[Data]) -> list[list[Data]]:
    """Split a batch so that no frame repeats an output key (a frame's payload is keyed
    by output name): a read that returns three "result" nodes becomes three frames."""
    frames: list[list[Data]] = [[]]
    for item in items:
        if any(seen.key == item.key for seen in frames[-1]):
            frames.append([])
        frames[-1].append(item)
    return frames


class SessionRegistry:
    def __init__(self, engine: Engine, runner: Runner, pool: InstancePool, ttl_s: float,
                 realtime: bool, pushed: bool,
                 on_end: Callable[[SessionEnd], None] | None = None, max_sessions: int = 0):
        self.engine = engine
        self.runner = runner
        self.pool = pool
        self.ttl_s = ttl_s
        self.realtime = realtime
        self.pushed = pushed    # async sessions: results come through the callback
        self.live: dict[str, Session] = {}
        self._ended: OrderedDict[str, str] = OrderedDict()   # sid -> why, for 10101
        self._empty = asyncio.Event()
        self._empty.set()
        self._tasks: set[asyncio.Task] = set()
        self.on_end = on_end or (lambda end: None)
        # [fc] maxSessions: open (or opening) sessions allowed at once; 0 = only the
        # pool bounds them. Keeps instances free for once requests.
        self.max_sessions = max_sessions
        self._opening = 0

    def spawn(self, coro) -> None:
        """Run ``coro`` in the background, referenced until done (the loop keeps only weak ones)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def open(self, sid: str, params: dict[str, str], psr_ids: list[int],
                   outputs: dict[str, dict], mode: str = "session") -> Session:
        session = Session(self, sid, None, outputs, mode)
        try:
            if not self.engine.modes.session:
                raise AigesError(errors.INVALID_OPERATION, "this engine has no session mode")
            if self.max_sessions and len(self.live) + self._opening >= self.max_sessions:
                raise NoInstance(f"{self.max_sessions} sessions open ([fc] maxSessions)")
            self._opening += 1
            try:
                await self._create(session, params, psr_ids)
            finally:
                self._opening -= 1
        except AigesError as exc:
            session.set_error(exc)
            self._report(session)
            raise
        self.live[sid] = session
        self._empty.clear()
        session.touch()
        return session

    async def _create(self, session: Session, params: dict[str, str],
                      psr_ids: list[int]) -> None:
        session.instance = await self.pool.acquire()
        on_result = self._callback(session) if self.pushed else None
        try:
            session.handle = await self.runner.call(self.engine.create, session.sid, params,
                                                    psr_ids, on_result)
        except BaseException:
            self.pool.release(session.instance)
            raise

    def _callback(self, session: Session):
        loop = asyncio.get_running_loop()
        engine_error = self.runner.callback_error

        def on_result(items: list[Data] | None, ret: int) -> None:
            # Engine thread: the error text is a C call, made here; then hand over.
            error = engine_error(ret) if ret else None
            if items:
                try:
                    checked(items, "callback")
                except AigesError as exc:
                    items, error = None, exc
            loop.call_soon_threadsafe(session.push, items, error)

        return on_result

    def get(self, sid: str) -> Session:
        session = self.live.get(sid)
        if session is not None:
            return session
        if sid in self._ended:
            raise AigesError(errors.SESSION_ENDED, f"session {sid} has ended ({self._ended[sid]})")
        raise AigesError(errors.UNKNOWN_SESSION, f"no session {sid}")

    def forget(self, session: Session, ended_by: str) -> None:
        """Drop a session whose results were all handed out (or abandoned)."""
        session.stop_timer()
        if self.live.pop(session.sid, None) is not None:
            self._ended[session.sid] = ended_by
            while len(self._ended) > 4096:
                self._ended.popitem(last=False)
            self._report(session)
        if not self.live:
            self._empty.set()

    def reject(self, sid: str, mode: str, error: AigesError) -> None:
        """A session refused before ``open`` (its first frame was invalid): reported too."""
        self.on_end(SessionEnd(sid, mode, error.code, 0, 0, 0.0))

    def _report(self, session: Session) -> None:
        self.on_end(SessionEnd(
            session.sid, session.mode, session.error.code if session.error else 0,
            session.writes, session.seq, asyncio.get_running_loop().time() - session.started))

    async def destroy(self, session: Session) -> None:
        """wrapperDebugInfo then wrapperDestroy, exactly once, and the instance back."""
        try:
            async with session._lock:
                info = await self.runner.call(self.engine.debug_info, session.handle)
                if info:
                    log.info("session debug info", extra={"sid": session.sid, "debug": info})
                await self.runner.call(self.engine.destroy, session.handle)
        except AigesError as exc:
            log.error("wrapperDestroy failed", extra={"sid": session.sid, "code": exc.code,
                                                      "error": exc.message})
        finally:
            self.pool.release(session.instance)

    async def close_all(self, error: AigesError) -> None:
        for session in list(self.live.values()):
            await session.close(error)
            self.forget(session, ended_by="shutdown")

    async def wait_empty(self) -> None:
        await self._empty.wait()
