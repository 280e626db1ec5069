"""Runs engine calls: one-shot requests get an instance from the pool and are
bounded by the once timeout; every call runs where ``Placement`` says, on an
engine thread or, once measured to take microseconds, inline on the event loop.

A C call cannot be interrupted: when a threaded sync call outlives the timeout the
client gets 10102 at once, but the instance only goes back to the pool when the
call really returns. An engine with a cancel entry (wrapperCancel, an aiges
extension) is asked to return early then, and when the task awaiting a call is
cancelled (the client left, shutdown: aiges.cancel).
"""
from __future__ import annotations

import asyncio
import itertools
import logging
from concurrent.futures import ThreadPoolExecutor
from time import perf_counter

from aiges import errors
from aiges import cancel as why
from aiges.board import Board
from aiges.engine import Data, DataStatus, Engine
from aiges.errors import AigesError, EngineError
from aiges.metrics import Metrics
from aiges.placement import UNSAMPLED, Placement, Watchdog
from aiges.pool import InstancePool
from aiges.protocol import Request

log = logging.getLogger(__name__)
VALID_STATUS = frozenset(int(s) for s in DataStatus)

# Engine method -> op label of the engine call metrics (the ABI's names).
OPS = {"exec": "exec", "exec_async": "execAsync", "create": "create", "write": "write",
       "read": "read", "destroy": "destroy", "debug_info": "debugInfo", "init": "init",
       "fini": "fini", "set_ctrl": "setCtrl", "load_res": "loadRes", "unload_res": "unloadRes"}


class Runner:
    def __init__(self, engine: Engine, pool: InstancePool, once_timeout_s: float,
                 async_mode: bool, metrics: Metrics | None = None, inline_max_us: int = 0,
                 board: Board | None = None, batch_max_size: int = 1,
                 batch_max_delay_s: float = 0.0):
        self.engine = engine
        self.pool = pool
        self.once_timeout_s = once_timeout_s
        self.async_mode = async_mode
        self.metrics = metrics or Metrics(process=False)
        # One thread per instance: a call in flight always holds its instance.
        self.executor = ThreadPoolExecutor(pool.size, thread_name_prefix="aiges-engine")
        self.placement = Placement(inline_max_us)
        # fast(op, size): calls of ``op`` (the ABI's name) with ``size`` bytes of input
        # run inline now.
        self.fast = self.placement.inline
        self.watchdog = Watchdog(max(once_timeout_s, 1.0))
        # Engine calls running now: token -> (op, sid, started), for what shutdown
        # reports when a call never returns; an inline call of ``now`` is the
        # watchdog's instead (one at a time, on the loop).
        self.inflight: dict[int, tuple[str, str, float]] = {}
        # Engine method -> (op label, its duration metric's observe for the loop's
        # thread): what an inline call looks up once.
        self._inline_ops: dict[str, tuple] = {}
        self._tokens = itertools.count()
        # A supervisor's worker: each call is written on the board it shares with the
        # supervisor too, which then knows the request a dead worker was running.
        self.board = board
        # aiges.tracing.spans.Tracing while tracing is on (Tracing.watch): spans per call.
        self.tracing = None
        # [batch] maxSize > 1 and an engine with the batch entry: once requests are grouped.
        self.batcher = None
        if batch_max_size > 1 and engine.modes.batch:
            from aiges.batcher import Batcher  # only loaded when batching is on
            self.batcher = Batcher(self, batch_max_size, batch_max_delay_s)
        elif batch_max_size > 1:
            log.warning("[batch] maxSize ignored: the engine has no batch entry "
                        "(wrapperExecBatch / wrapperOnceExecBatch)",
                        extra={"engine": engine.path, "max_size": batch_max_size})

    def close(self) -> None:
        if self.batcher is not None:
            self.batcher.close(AigesError(errors.INVALID_OPERATION, "the engine is closing", 503))
        stuck = self.stuck_calls()
        if stuck:
            # Waiting would hang the exit: these calls ignored even wrapperFini.
            log.error("engine calls still running after wrapperFini", extra={"calls": stuck})
        self.watchdog.close()
        self.executor.shutdown(wait=not stuck)

    def stuck_calls(self) -> list[dict]:
        """The engine calls running now, longest first: op, sid, seconds."""
        now = perf_counter()
        calls = list(self.inflight.values())
        watchdog = self.watchdog
        op, sid, started = watchdog.op, watchdog.sid, watchdog.since
        if op is not None and sid is not None:  # an inline call (Runner.now), stuck
            calls.append((op, sid, started))
        calls.sort(key=lambda call: call[2])
        return [{"op": OPS.get(op, op), "sid": sid, "seconds": round(now - started, 3)}
                for op, sid, started in calls]

    async def call(self, fn, *args, size: int = 0, sid: str = ""):
        """Run a blocking engine call: inline when its op is measured fast and its
        input (``size`` bytes) small, else on the engine threads. ``sid``: whose call
        it is, for the log when it never returns."""
        if self.placement.inline(OPS.get(fn.__name__, fn.__name__), size):
            return self.now(fn, *args, sid=sid)
        return await asyncio.get_running_loop().run_in_executor(self.executor, self.timed_for,
                                                                sid, fn, *args)

    def now(self, fn, *args, sid: str = ""):
        """The call, inline on the loop: for a caller that checked ``fast`` first.

        The hot path of every fast engine (a session frame makes two such calls), so
        the common case is spelled out here: not written on a board, not traced, the
        placement not wary. Called on the loop's thread only (what it caches in
        ``_inline_ops`` is that thread's)."""
        watchdog, placement = self.watchdog, self.placement
        if self.board is not None or self.tracing is not None or placement.wary \
                or not watchdog.running:
            watchdog.enter(fn.__name__)
            try:
                return self._timed(fn, *args, inline=placement.usage(), sid=sid)
            finally:
                watchdog.leave()
        name = fn.__name__
        known = self._inline_ops.get(name) or self._inline_op(name)
        # What the watchdog watches is also what a stop signal's report of stuck calls
        # reads (``stuck_calls``, from a thread of its own while the loop waits for
        # this call): not in ``inflight``, which would cost a table entry per call.
        watchdog.since = started = perf_counter()
        watchdog.sid = sid or _tag(args)
        watchdog.op = name
        try:
            return fn(*args)
        except EngineError as exc:
            self.metrics.engine_error(exc.op, exc.engine_code)
            raise
        finally:
            seconds = perf_counter() - started
            watchdog.op = None
            op, observe = known
            observe(seconds)
            if seconds <= placement.limit_s:
                placement.fast_inline(op)
            elif not placement.preempted(seconds, UNSAMPLED):
                placement.record(op, seconds, True)

    def now_frames(self, write, read, handle, frames: list[list[Data]], out: list,
                   sid: str) -> None:
        """``now`` for a session's frames read together: ``write(handle, data)`` of each,
        followed by ``read(handle)`` when ``read`` is given, its outputs (None without a
        read) appended to ``out``. Each call is watched, timed and counted as ``now``
        does, but what ``now`` checks and looks up per call is done once. Stops after
        the frame whose call was over the inline limit: the caller places the rest
        (``fast`` again). An engine error is raised with the frames before it in ``out``.
        """
        watchdog, placement = self.watchdog, self.placement
        if self.board is not None or self.tracing is not None or placement.wary \
                or not watchdog.running:
            for data in frames:
                self.now(write, handle, data, sid=sid)
                out.append(self.now(read, handle, sid=sid) if read is not None else None)
                if placement.wary:
                    return
            return
        wname = write.__name__
        inline_ops = self._inline_ops
        wop, wobserve = inline_ops.get(wname) or self._inline_op(wname)
        rname = rop = robserve = None
        if read is not None:
            rname = read.__name__
            rop, robserve = inline_ops.get(rname) or self._inline_op(rname)
        limit = placement.limit_s
        watchdog.sid = sid
        writes = reads = 0  # calls within the limit, counted for the placement at the end
        try:
            for data in frames:
                watchdog.since = started = perf_counter()
                watchdog.op = wname
                write(handle, data)
                ended = perf_counter()
                seconds = ended - started
                wobserve(seconds)
                if seconds > limit:
                    self._over(wop, seconds, wop, writes, rop, reads)
                    writes = reads = 0
                    # This frame's read, placed as ``now`` places any call now.
                    watchdog.op = None
                    out.append(self.now(read, handle, sid=sid) if read is not None else None)
                    return
                writes += 1
                if read is None:
                    out.append(None)
                    continue
                watchdog.since = ended
                watchdog.op = rname
                out.append(read(handle))
                seconds = perf_counter() - ended
                robserve(seconds)
                if seconds > limit:
                    self._over(rop, seconds, wop, writes, rop, reads)
                    writes = reads = 0
                    return
                reads += 1
        except EngineError as exc:
            self.metrics.engine_error(exc.op, exc.engine_code)
            raise
        finally:
            watchdog.op = None
            if writes:
                placement.fast_inline(wop, writes)
            if reads:
                placement.fast_inline(rop, reads)

    def _over(self, op: str, seconds: float, wop: str, writes: int, rop: str | None,
              reads: int) -> None:
        """An inline call of ``now_frames`` over the limit: the fast ones before it
        counted first, then this one recorded, as ``now`` would have, call by call."""
        placement = self.placement
        if writes:
            placement.fast_inline(wop, writes)
        if reads:
            placement.fast_inline(rop, reads)
        if not placement.preempted(seconds, UNSAMPLED):
            placement.record(op, seconds, True)

    def _inline_op(self, name: str) -> tuple:
        """The op label of engine method ``name`` and its duration metric's observe for
        this (the loop's) thread, made once (callers look in ``_inline_ops`` first)."""
        op = OPS.get(name, name)
        known = self._inline_ops[name] = (op, self.metrics.engine_call_observer(op))
        return known

    async def call_aside(self, fn, *args):
        """Run a blocking engine call on a thread of its own: wrapperFini at shutdown,
        when every engine thread may be stuck in a call only fini can end."""
        return await asyncio.to_thread(self._timed, fn, *args)

    @property
    def can_cancel(self) -> bool:
        """The engine has a cancel entry (engine objects without ``cancellable``: none)."""
        return getattr(self.engine, "cancellable", False)

    def cancel(self, sid: str, reason: str) -> None:
        """Ask the engine to stop the work running for ``sid`` (wrapperCancel), on a
        thread aside, counted by ``reason`` (aiges.cancel.REASONS). Nothing at all when
        the engine has no cancel entry. Never raises: its failure is only logged."""
        if not sid or not self.can_cancel:
            return
        self.metrics.cancel(reason if reason in why.REASONS else why.CLIENT_LEFT)
        try:
            asyncio.get_running_loop().run_in_executor(None, self._cancel_now, sid, reason)
        except RuntimeError as exc:  # the loop's executor is already shut down (exit)
            log.warning("wrapperCancel not called", extra={"sid": sid, "error": str(exc)})

    def _cancel_now(self, sid: str, reason: str) -> None:
        try:
            ret = self.engine.cancel(sid)
        except Exception as exc:  # noqa: BLE001 - a failed cancel must not break a request
            log.warning("wrapperCancel failed", extra={"sid": sid, "reason": reason,
                                                       "error": f"{type(exc).__name__}: {exc}"})
            return
        if ret:
            log.debug("wrapperCancel returned non-zero", extra={"sid": sid, "code": ret})

    def timed_for(self, sid: str, fn, *args):
        return self._timed(fn, *args, sid=sid)

    def _timed(self, fn, *args, inline=None, sid: str = ""):
        """The call, its duration in the metrics and the placement, its error counted.
        ``inline``: the loop thread's resource usage before an inline call (or
        placement.UNSAMPLED). Runs for every engine call: two clock reads, no lock, no
        syscall."""
        name = fn.__name__
        op = OPS.get(name, name)
        token = next(self._tokens)
        sid = sid or _tag(args)
        board = self.board
        if board is not None:
            board.enter(token, op, sid)
        inflight = self.inflight
        started = perf_counter()
        inflight[token] = (name, sid, started)
        try:
            tracing = self.tracing
            if tracing is not None:
                return tracing.engine_call(op, sid, fn, args)
            return fn(*args)
        except EngineError as exc:
            self.metrics.engine_error(exc.op, exc.engine_code)
            raise
        finally:
            seconds = perf_counter() - started
            del inflight[token]
            if board is not None:
                board.leave(token)
            self.metrics.engine_call(op, seconds)
            placement = self.placement
            if inline is None or not placement.preempted(seconds, inline):
                placement.record(op, seconds, inline is not None)

    async def once(self, req: Request) -> list[Data]:
        if not (self.engine.modes.once_sync or self.engine.modes.once_async):
            raise AigesError(errors.INVALID_OPERATION, "this engine has no one-shot mode",
                             http_status=400)
        batcher = self.batcher
        if batcher is not None and batcher.takes(req):
            return await batcher.once(req)
        instance = await self.pool.acquire()
        modes = self.engine.modes
        if (self.async_mode and modes.once_async) or not modes.once_sync:
            items = await self._once_async(req, instance)
        else:
            items = await self._once_sync(req, instance)
        return checked(items, "exec")

    def once_now(self, req: Request) -> list[Data] | None:
        """The once request answered inline, without a task or an await, when it can
        be (a sync engine whose exec is measured fast, a free instance, a small
        input); None when it must go through ``once``."""
        modes = self.engine.modes
        if not modes.once_sync or (self.async_mode and modes.once_async):
            return None
        if self.batcher is not None and self.batcher.takes(req):
            return None  # batched: the batcher's dispatcher runs it
        if not self.placement.inline("exec", input_size(req.data)):
            return None
        pool = self.pool
        instance = pool.try_acquire()
        if instance is None:
            return None
        try:
            items = self.now(self.engine.exec, req.sid, req.params, req.data, req.psr_ids,
                             sid=req.sid)
        finally:
            pool.release(instance)
        return checked(items, "exec")

    async def _once_sync(self, req: Request, instance: int) -> list[Data]:
        if self.placement.inline("exec", input_size(req.data)):
            try:
                return self.now(self.engine.exec, req.sid, req.params, req.data,
                                req.psr_ids)
            finally:
                self.pool.release(instance)
        loop = asyncio.get_running_loop()
        call = loop.run_in_executor(self.executor, self._timed, self.engine.exec, req.sid,
                                    req.params, req.data, req.psr_ids)
        call.add_done_callback(lambda done: self.returned(done, instance))
        try:
            async with asyncio.timeout(self.once_timeout_s):
                return await asyncio.shield(call)
        except TimeoutError:
            if not call.done():
                self.cancel(req.sid, why.TIMEOUT)
            self.stuck(call, instance, req.sid, "wrapperExec")
            raise self.timeout_error(req.sid, "wrapperExec") from None
        except asyncio.CancelledError as exc:
            self.left(call, instance, req.sid, exc)
            raise

    def stuck(self, call: asyncio.Future, instance: int, sid: str, op: str) -> None:
        """A call outlived its request: its instance stays out of the pool (and counts
        against readiness) until the call really returns."""
        if call.done():
            return  # returned just as the request gave up: the instance is (being) released
        loop = asyncio.get_running_loop()
        started = loop.time() - self.once_timeout_s
        self.pool.mark_stuck(instance)
        call.add_done_callback(lambda _: log.warning(
            f"{op} returned after its request timed out; instance back in the pool",
            extra={"sid": sid, "seconds": round(loop.time() - started, 3)}))

    def left(self, call: asyncio.Future, instance: int, sid: str,
             exc: asyncio.CancelledError) -> None:
        """The task awaiting ``call`` was cancelled (aiges.cancel): the engine is asked
        to stop; until the call returns, its instance counts as stuck."""
        if call.done():
            return
        self.cancel(sid, why.reason_of(exc))
        self.pool.mark_stuck(instance)

    def returned(self, call: asyncio.Future, instance: int) -> None:
        self.pool.release(instance)
        if not call.cancelled():
            call.exception()  # retrieved: a timed-out call's error was already answered

    def callback_error(self, ret: int) -> EngineError:
        """An error pushed through the result callback (engine thread): counted, with
        the engine's text."""
        self.metrics.engine_error("callback", ret)
        return EngineError("callback", ret, self.engine.error_text(ret))

    def timeout_error(self, sid: str, op: str) -> AigesError:
        log.warning("once request timed out", extra={"sid": sid, "op": op,
                                                       "timeout_s": self.once_timeout_s})
        return AigesError(errors.ONCE_TIMEOUT,
                          f"{op} gave no result within {self.once_timeout_s:g}s")

    async def _once_async(self, req: Request, instance: int) -> list[Data]:
        loop = asyncio.get_running_loop()
        result: asyncio.Future = loop.create_future()
        engine = self.engine
        engine_error = self.callback_error

        def on_result(items: list[Data] | None, ret: int) -> None:
            # On an engine thread: build the error here (wrapperError is a C call),
            # then only hand over to the loop.
            error = engine_error(ret) if ret else None
            loop.call_soon_threadsafe(_settle, result, items, error)

        args = (req.sid, req.params, req.data, req.psr_ids, int(self.once_timeout_s * 1000),
                on_result)
        if self.placement.inline("execAsync", input_size(req.data)):
            start = loop.create_future()
            try:
                start.set_result(self.now(engine.exec_async, *args))
            except Exception as exc:  # noqa: BLE001 - raised below, as from a thread
                start.set_exception(exc)
        else:
            start = loop.run_in_executor(self.executor, self._timed, engine.exec_async, *args)
        try:
            async with asyncio.timeout(self.once_timeout_s):
                await asyncio.shield(start)
                return await result
        except TimeoutError:
            self.cancel(req.sid, why.TIMEOUT)  # no result yet: the engine still works on it
            if not start.done():
                self.stuck(start, instance, req.sid, "wrapperExecAsync")
            raise self.timeout_error(req.sid, "wrapperExecAsync") from None
        except asyncio.CancelledError as exc:
            if result.cancelled() or not result.done():  # awaiting it cancels it: no result
                self.cancel(req.sid, why.reason_of(exc))
            raise
        finally:
            # The instance is held until the answer, and while wrapperExecAsync runs.
            if start.done():
                self.pool.release(instance)
            else:
                start.add_done_callback(lambda done: self.returned(done, instance))
            if result.cancelled() or not result.done():  # awaiting it was cancelled
                # Given up: a callback that still comes is ignored by the engine layer.
                start.add_done_callback(lambda f: f.cancelled() or f.exception()
                                        or engine.forget(f.result()))


def _tag(args: tuple) -> str:
    """The sid of a call made without one: exec, execAsync and create take it first."""
    return args[0] if args and isinstance(args[0], str) else ""


def input_size(data: list[Data]) -> int:
    total = 0
    for item in data:  # a loop: a generator costs more than the sum for one or two items
        total += len(item.data)
    return total


def checked(items: list[Data], op: str) -> list[Data]:
    """Engine outputs whose status is a DataStatus (0..3); any other status is an
    engine error of ``op`` (10909 exec, 10908 read, 10910 callback): the client
    cannot tell a final result from a partial one."""
    for item in items:
        if item.status not in VALID_STATUS:
            raise AigesError(errors.ENGINE_OP_CODES[op], f"invalid output status {item.status} "
                             f"of {item.key!r} (must be 0..3)", http_status=500)
    return items


def _settle(result: asyncio.Future, items, error) -> None:
    if result.done():
        return
    if error is not None:
        result.set_exception(error)
    else:
        result.set_result(items or [])
