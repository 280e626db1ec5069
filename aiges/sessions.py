"""Streaming sessions (SPEC 2, 4): one engine instance per session for its life.

Create -> (Write, Read?)* -> Read* -> Destroy, with upstream's read policy
(iflytek/aiges instance/inst.go) for engines that are read: with realTimeRlt
exactly one wrapperRead after each write before the last input (whatever it
returns: engines written for upstream return data on every read); after the
last input, reads until an output has status End or Once, waiting between reads
that return nothing, for at most ``read_wait_s`` of silence. Results the engine
pushes through the callback are delivered whatever asyncMode says; asyncMode
only stops the reads.

One engine call at a time; how frames are written is aiges.session_writes's part.
The results a client has not taken are bounded (MAX_QUEUED frames): past that the
reads pause, so an engine that never stops producing costs time, not memory, until
the session's time limit ends it.

``Session.end`` is the one way a transport ends a session: it forgets it,
reports it and destroys the engine handle, each exactly once. The open sessions
of a generation are aiges.session_registry's. Knows nothing of HTTP or cffi.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiges import errors
from aiges.cancel import CLIENT_LEFT, session_reason
from aiges.engine import Data
from aiges.errors import AigesError
from aiges.runner import checked
from aiges.session_writes import FINAL, Writes

if TYPE_CHECKING:
    from aiges.session_registry import SessionRegistry

log = logging.getLogger(__name__)

# Waits between reads that returned nothing after the last input: doubling from the
# first to the last (upstream sleeps 50 ms each time).
READ_WAIT_FIRST_S, READ_WAIT_MAX_S = 0.001, 0.05
# Result frames kept for a client that has not taken them; reads pause beyond it.
MAX_QUEUED = 64


@dataclass(frozen=True, slots=True)
class SessionEnd:
    """What a finished (or refused) session reports once: to metrics and the access log."""

    sid: str
    mode: str            # the transport: session_ws, session_http
    code: int            # 0, or the code of the error it ended with
    frames_in: int       # frames written
    frames_out: int      # result frames handed out
    duration_s: float
    first_result_s: float | None = None  # from create to the engine's first result


@dataclass(frozen=True, slots=True)
class Limits:
    """Time limits of a session, in seconds (0 = none)."""

    idle_s: float        # [fc] ttl: no frame written or result taken
    lifetime_s: float    # [ws] sessionTimeout: from create to end, on every transport
    read_wait_s: float   # [aiges] readWait: no result after the last input


Frame = tuple[dict[str, int], list[Data]]  # (seq per output key, outputs); [] = an ack


class Session(Writes):
    def __init__(self, registry: "SessionRegistry", sid: str, outputs: dict[str, dict],
                 mode: str, ack: bool):
        self.registry = registry
        self.sid = sid
        self.outputs = outputs
        self.mode = mode
        self.instance: int | None = None
        self.handle: object = None
        self.started = asyncio.get_running_loop().time()
        self.writes = 0
        self.seq = 0                       # frames handed out so far
        self.ended = False                 # final output seen, error, or ended
        self.error: AigesError | None = None
        self._ack = ack                    # an empty frame for a first write with no result
        self._results: deque[list[Data]] = deque()
        self._seqs: dict[str, int] = {}    # output key -> results of it handed out
        self._changed = asyncio.Event()
        self._watched = 0                  # results() waiting on _changed
        # The transport's hook, called on the loop when results or the end come: a
        # callback, so that a frame wakes no task (WebSocket sends from it).
        self.listener: Callable[[bool], None] | None = None
        # Takes the results the engine pushed that wait for the loop's next turn, now:
        # a transport busy reading a burst sends them with its frames' (set by the
        # registry; a session without a callback has none to take). Its argument: how
        # many frames the transport has just written.
        self.collect: Callable[[int], None] = _nothing
        self.first_result_s: float | None = None  # when the engine's first result came
        self._loop = asyncio.get_running_loop()
        self._active = 0.0                 # the last frame written or result taken
        self._room = asyncio.Event()       # fewer than MAX_QUEUED frames wait: read on
        self._room.set()
        self._lock = asyncio.Lock()        # calls for one session are sequential
        self._waiting = 0                  # writes waiting for (or holding) the lock
        self._unended: set[str] = set()    # input keys whose last status was not final
        self._last_input = False
        self._final_output = False
        self._quiet_since = 0.0            # the last result after the last input
        self._reader: asyncio.Task | None = None
        self._reading = False              # the reader is inside an engine call
        self._idle: asyncio.TimerHandle | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._release: asyncio.Task | None = None
        self._released = False             # wrapperDestroy has returned
        self._forgotten = False
        self._cancelled = False            # the engine was asked to stop (wrapperCancel)

    # -- called by the transport -------------------------------------------------------
    async def results(self, wait_s: float = 0.0) -> list[Frame]:
        """Frames not yet taken, waiting up to ``wait_s`` for the first one. After the
        last frame of a failed session, ``error`` says why."""
        if not self._results and not self._released and wait_s > 0:
            self._changed.clear()
            self._watched += 1
            try:
                async with asyncio.timeout(wait_s):
                    await self._changed.wait()
            except TimeoutError:
                pass
            finally:
                self._watched -= 1
        return self.take()

    def take(self) -> list[Frame]:
        """Frames not yet taken, now (no wait)."""
        taken: list[Frame] = []
        seqs = self._seqs
        results = self._results
        while results:
            items = results.popleft()
            numbers = {}
            for item in items:
                numbers[item.key] = seqs[item.key] = seqs.get(item.key, 0) + 1
            taken.append((numbers, items))
        self.seq += len(taken)
        if not self._room.is_set():
            self._room.set()
        if taken or not self.ended:
            self.touch()
        return taken

    async def settle(self, timeout_s: float) -> None:
        """An ended session: wait (at most ``timeout_s``) for wrapperDestroy, after which
        every result the engine gave is queued and ``drained`` can become true."""
        if self.ended and self._release is not None and not self._released:
            try:
                await asyncio.wait_for(asyncio.shield(self._release), timeout_s)
            except TimeoutError:
                pass

    @property
    def queued(self) -> int:
        """Result frames waiting to be taken."""
        return len(self._results)

    @property
    def inputs_ended(self) -> bool:
        return self._last_input

    @property
    def drained(self) -> bool:
        """Ended, the engine let go, and every result handed out: nothing more will come."""
        return self._released and not self._results

    async def end(self, reason: str, error: AigesError | None = None) -> None:
        """End the session now (finished, client gone, deleted, timeout, shutdown): it
        is forgotten and reported, and its handle destroyed, each once however often
        this is called; returns once wrapperDestroy has."""
        if error is not None and self.error is None and not self.ended:
            self.error = error
        if not self.ended:
            self.cancel(session_reason(reason))  # before destroy waits for the call
        self.ended = True
        self._stop_timers()
        if not self._forgotten:
            self._forgotten = True
            self.registry.remove(self, reason)
            tracing = self.registry.runner.tracing
            if tracing is not None:  # the session's span ends once wrapperDestroy has
                self._released_task().add_done_callback(lambda _: tracing.end_session(self))
        await asyncio.shield(self._released_task())

    def cancel(self, reason: str) -> None:
        """Ask the engine to stop the call running now for this session (wrapperCancel,
        aiges.cancel), once: its client left, it timed out, or the service stops. The
        session ends as usual when that call returns (early, with an engine error)."""
        if self._cancelled or self._release is not None or not self._lock.locked():
            return  # no write or read running (destroy needs no cancel)
        self._cancelled = True
        if self.error is None and reason == CLIENT_LEFT:
            self.error = AigesError(errors.INVALID_OPERATION, "client left")
        self.registry.runner.cancel(self.sid, reason)

    def touch(self) -> None:
        """The client wrote or took results: the idle time starts again. One timer,
        moved on lazily when it fires (no timer rearmed per frame)."""
        self._active = self._loop.time()
        if self._idle is None and self.registry.limits.idle_s > 0 and not self._forgotten:
            self._idle = self._loop.call_at(self._active + self.registry.limits.idle_s,
                                            self._idle_check)

    def _idle_check(self) -> None:
        self._idle = None
        if self._forgotten:
            return
        due = self._active + self.registry.limits.idle_s
        if self._loop.time() < due:
            self._idle = self._loop.call_at(due, self._idle_check)
            return
        self._time_out("idle")

    def _changed_now(self, at_once: bool = False) -> None:
        """Results or the end came: told to whoever waits, and to the transport's
        ``listener`` (``at_once``: results pushed from elsewhere, all that came
        together, which it may send now rather than at the loop's next turn)."""
        if self._watched:
            self._changed.set()
        if self.listener is not None:
            self.listener(at_once)

    # -- internals -------------------------------------------------------------------------
    def start_timers(self) -> None:
        self.touch()
        lifetime = self.registry.limits.lifetime_s
        if lifetime > 0:
            self._deadline = asyncio.get_running_loop().call_later(
                lifetime, self._time_out, "lifetime")

    def _stop_timers(self) -> None:
        for timer in (self._idle, self._deadline):
            if timer is not None:
                timer.cancel()
        self._idle = self._deadline = None

    def _time_out(self, which: str) -> None:
        limits = self.registry.limits
        if which == "idle":
            if self.drained:
                # Everything was handed out and the client never came back for the end.
                self.registry.spawn(self.end("abandoned"))
                return
            message = f"session idle for more than {limits.idle_s:g}s"
        else:
            message = f"session lasted longer than {limits.lifetime_s:g}s"
        log.info("session timed out", extra={"sid": self.sid, "limit": which})
        self.registry.spawn(self.end(f"{which} timeout",
                                     AigesError(errors.SESSION_TIMEOUT, message)))

    def push(self, items: list[Data] | None, error: AigesError | None) -> None:
        """A result (on the loop thread), from a read or the engine's callback. Results
        that reach us before wrapperDestroy has returned are kept, even after an error."""
        if self._released:
            return
        if error is not None:
            self._fail(error)
            return
        if items:
            self._queue((items,))
            if self._last_input:  # a final output before the last input ends nothing
                self._final_output |= any(i.status in FINAL for i in items)
                self._check_finished()

    def push_all(self, arrived: deque) -> None:
        """``push`` of every (items, error) in ``arrived``, which it empties, in order: a
        run of plain results is queued at once (the transport told once for them all)."""
        run: list[list[Data]] = []
        while arrived:
            items, error = arrived.popleft()
            if items and error is None and not (self._last_input or self._released):
                run.append(items)
                continue
            if run:
                self._queue(run)
                run = []
            self.push(items, error)
        if run:
            self._queue(run, True)

    def _queue(self, batches, at_once: bool = False) -> None:
        """Results in, as frames; the transport told once for them all."""
        results = self._results
        for items in batches:
            if len(items) == 1:
                results.append(items)
            else:
                results.extend(_frames(items))
        if len(results) >= MAX_QUEUED:
            self._room.clear()
        self._quiet_since = now = self._loop.time()
        if self.first_result_s is None:
            self.first_result_s = now - self.started
        # Last: a listener told ``at_once`` takes and sends the results here and now,
        # so the session's own account of them comes first.
        self._changed_now(at_once)

    def _check_finished(self) -> None:
        # Finished when every input stream has ended and an output reached End/Once.
        if self._final_output and self._last_input and not self.ended:
            self.ended = True
            self._changed_now()
            self._released_task()

    def _fail(self, exc: AigesError) -> None:
        """The session ends with ``exc``; the client hears of it after its results."""
        if self.ended:
            return
        if self._cancelled:  # the engine stopped as asked: why it was asked is the end
            exc = self.error or exc
        else:
            log.warning("session failed", extra={"sid": self.sid, "code": exc.code,
                                                 "error": exc.message})
        self.error = exc
        self.ended = True
        self._changed_now()
        self._released_task()

    async def _read_once(self) -> bool:
        """One wrapperRead; True when it returned data."""
        registry = self.registry
        return self._took(await registry.runner.call(registry.engine.read, self.handle,
                                                     sid=self.sid))

    def _took(self, items: list[Data] | None) -> bool:
        """What a wrapperRead returned, pushed; True when it was data."""
        if not items:
            return False
        self.push(checked(items, "read"), None)
        return True

    async def _read_to_end(self) -> None:
        """After the last input: read until a final output, the read wait runs out or
        the session ends otherwise. Yields to the loop between any two reads."""
        loop = asyncio.get_running_loop()
        wait_s = self.registry.limits.read_wait_s
        delay = READ_WAIT_FIRST_S
        while not self.ended:
            await self._room.wait()  # the client takes results: memory stays bounded
            async with self._lock:
                if self.ended:
                    return
                self._reading = True
                try:
                    got = await self._read_once()
                except AigesError as exc:
                    self._fail(exc)
                    return
                finally:
                    self._reading = False
            if got:
                delay = READ_WAIT_FIRST_S
                await asyncio.sleep(0)
                continue
            if wait_s > 0 and loop.time() - self._quiet_since >= wait_s:
                self._fail(AigesError(errors.SESSION_TIMEOUT, "no final result within "
                                      f"{wait_s:g}s of the last input ([aiges] readWait)"))
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, READ_WAIT_MAX_S)

    def _released_task(self) -> asyncio.Task:
        if self._release is None:
            reader = self._reader
            if reader is not None and not self._reading and reader is not asyncio.current_task():
                reader.cancel()  # waiting, not in a call: a call in flight is let finish
            self._release = self.registry.spawn(self._destroy())
        return self._release

    async def _destroy(self) -> None:
        """wrapperDebugInfo then wrapperDestroy, after the call in flight, and the
        instance back."""
        registry = self.registry
        runner, engine = registry.runner, registry.engine
        try:
            async with self._lock:
                info = await runner.call(engine.debug_info, self.handle, sid=self.sid)
                if info:
                    log.info("session debug info", extra={"sid": self.sid, "debug": info})
                await runner.call(engine.destroy, self.handle, sid=self.sid)
        except AigesError as exc:
            log.error("wrapperDestroy failed", extra={"sid": self.sid, "code": exc.code,
                                                      "error": exc.message})
        finally:
            registry.pool.release(self.instance)
            # The client hears of the end only once the engine has let go: results it
            # pushed until then are kept and go out first.
            self._released = True
            self._room.set()
            self._changed_now()


def _nothing(frames: int = 1) -> None:
    pass


def _frames(items: list[Data]) -> list[list[Data]]:
    """Split a batch so that no frame repeats an output key (a frame's payload is keyed
    by output name): a read that returns three "result" nodes becomes three frames."""
    if len(items) == 1:
        return [items]
    frames: list[list[Data]] = [[]]
    for item in items:
        if any(seen.key == item.key for seen in frames[-1]):
            frames.append([])
        frames[-1].append(item)
    return frames
