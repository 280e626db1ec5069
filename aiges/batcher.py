"""Adaptive batching (docs/BATCHING.md): concurrent once requests for one engine grouped
into one engine call (``Engine.exec_batch``, wrapperExecBatch).

Requests queue here instead of in the pool. One dispatcher task runs while any wait:
it waits (``[batch] maxDelayMs`` > 0 only) until the oldest has waited that long or
``maxSize`` are there, then for a free instance, then takes up to ``maxSize`` requests
that are waiting at that moment and starts their call on an engine thread. So an idle
service runs a lone request at once, and a busy one fills each batch with the
requests that arrived while the instances were busy.

Each request keeps the guarantees of an unbatched one: 429 (10110) when no batch took
it within ``[fc] wait`` or when ``[fc] queue`` requests already wait; its own outputs
or its own engine error; 10102 for every item of a call that outlives the once
timeout, whose instance is then accounted stuck until the call returns. Knows
nothing of HTTP or cffi.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

from aiges import cancel as why, errors
from aiges.engine import Data
from aiges.errors import AigesError, EngineError
from aiges.pool import NoInstance
from aiges.protocol import Request
from aiges.runner import checked  # the runner imports this module only when batching is on

log = logging.getLogger(__name__)


class _Item:
    __slots__ = ("req", "result", "expiry", "arrived")

    def __init__(self, req: Request, result: asyncio.Future, expiry: asyncio.TimerHandle,
                 arrived: float):
        self.req, self.result, self.expiry, self.arrived = req, result, expiry, arrived


class Batcher:
    """The batches of one runner (one engine generation)."""

    def __init__(self, runner, max_size: int, max_delay_s: float):
        self.runner = runner
        self.pool = runner.pool
        self.metrics = runner.metrics
        self.max_size = max_size
        self.max_delay_s = max_delay_s
        self._queue: deque[_Item] = deque()
        self._dispatcher: asyncio.Task | None = None
        self._full: asyncio.Event | None = None  # set when maxSize wait (maxDelayMs > 0)
        self._idle = asyncio.Event()  # nothing queued and no batch call running
        self._idle.set()
        self.calls = 0  # batch calls running now
        self.closed: AigesError | None = None
        self.metrics.batch_waiting.set_function(lambda: len(self._queue))

    @staticmethod
    def takes(req: Request) -> bool:
        """Requests naming resources run alone: the batch entry has no psrIds."""
        return not req.psr_ids

    @property
    def waiting(self) -> int:
        return len(self._queue)

    async def once(self, req: Request) -> list[Data]:
        if self.closed is not None:
            raise self.closed
        if self.pool.closed is not None:
            raise AigesError(errors.INVALID_OPERATION, self.pool.closed, 503)
        if len(self._queue) >= self.pool.queue_limit:
            raise NoInstance(f"{len(self._queue)} requests already wait for a batch")
        loop = asyncio.get_running_loop()
        result = loop.create_future()
        item = _Item(req, result, None, loop.time())  # type: ignore[arg-type]
        item.expiry = loop.call_later(self.pool.wait_s, self._expire, item)
        self._queue.append(item)
        self._idle.clear()
        if self._dispatcher is None:
            self._dispatcher = loop.create_task(self._dispatch())
        elif self._full is not None and len(self._queue) >= self.max_size:
            self._full.set()
        try:
            return await result
        except asyncio.CancelledError as exc:
            # The client went away: before a batch took it, or while its batch call runs
            # (that call is asked to drop this item: aiges.cancel).
            if not self._forget(item) and result.cancelled():  # awaiting it cancelled it
                self.runner.cancel(req.sid, why.reason_of(exc))
            raise

    def _expire(self, item: _Item) -> None:
        """No batch took the request within [fc] wait."""
        if self._forget(item) and not item.result.done():
            item.result.set_exception(NoInstance(
                f"no instance free within {self.pool.wait_s:g}s (all {self.pool.size} busy)"))

    def _forget(self, item: _Item) -> bool:
        item.expiry.cancel()
        try:
            self._queue.remove(item)
        except ValueError:
            return False  # taken into a batch already
        self._check_idle()
        return True

    def _check_idle(self) -> None:
        if not self._queue and not self.calls:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Until no request waits for a batch and no batch call runs (drain)."""
        await self._idle.wait()

    def close(self, error: AigesError) -> None:
        """The runner closes: requests still waiting get ``error``; later ones too."""
        self.closed = error
        if self._dispatcher is not None:
            self._dispatcher.cancel()
        while self._queue:
            item = self._queue.popleft()
            item.expiry.cancel()
            if not item.result.done():
                item.result.set_exception(error)
        self._check_idle()

    # -- forming batches ------------------------------------------------------------------
    async def _dispatch(self) -> None:
        try:
            while self._queue:
                if self.max_delay_s and len(self._queue) < self.max_size:
                    await self._fill()
                try:
                    instance = await self.pool.acquire_any()
                except AigesError as exc:  # the pool closed: this engine is finishing
                    self.close(exc)
                    return
                batch = self._take()
                if batch:
                    self._start(batch, instance)
                else:  # every waiting request expired or left meanwhile
                    self.pool.release(instance)
                    self._check_idle()
        finally:
            self._dispatcher = None

    async def _fill(self) -> None:
        """Until maxSize requests wait, or the oldest has waited maxDelayMs."""
        left = self._queue[0].arrived + self.max_delay_s - asyncio.get_running_loop().time()
        if left <= 0:
            return
        self._full = asyncio.Event()
        try:
            async with asyncio.timeout(left):
                await self._full.wait()
        except TimeoutError:
            pass
        finally:
            self._full = None

    def _take(self) -> list[_Item]:
        batch = []
        queue = self._queue
        while queue and len(batch) < self.max_size:
            item = queue.popleft()
            item.expiry.cancel()
            if not item.result.done():
                batch.append(item)
        return batch

    # -- running them ---------------------------------------------------------------------
    def _start(self, items: list[_Item], instance: int) -> None:
        runner = self.runner
        loop = asyncio.get_running_loop()
        reqs = [item.req for item in items]
        sids = [req.sid for req in reqs]
        batch = _Batch(items, ",".join(sids))  # the label: whose call a stuck one is
        self.calls += 1
        self.metrics.batch_size(len(items))
        call = loop.run_in_executor(runner.executor, runner.timed_for, batch.label,
                                    runner.engine.exec_batch, sids,
                                    [req.params for req in reqs], [req.data for req in reqs])
        # First back in the pool, then the answers: the next batch forms meanwhile.
        call.add_done_callback(lambda done: runner.returned(done, instance))
        batch.timer = loop.call_later(runner.once_timeout_s, self._timed_out, batch, call,
                                      instance)
        call.add_done_callback(lambda done: self._settled(done, batch))

    def _timed_out(self, batch: _Batch, call: asyncio.Future, instance: int) -> None:
        if call.done():
            return
        batch.timed_out = True
        runner = self.runner
        runner.stuck(call, instance, batch.label, "wrapperExecBatch")
        for item in batch.items:
            runner.cancel(item.req.sid, why.TIMEOUT)
        error = runner.timeout_error(batch.label, "wrapperExecBatch")  # logged once
        self.metrics.batch_call("timeout")
        _settle_all(batch.items, lambda: AigesError(error.code, error.message))

    def _settled(self, call: asyncio.Future, batch: _Batch) -> None:
        self.calls -= 1
        self._check_idle()
        if batch.timed_out:
            return  # every item was answered 10102 already
        batch.timer.cancel()
        if call.cancelled():
            self.metrics.batch_call("failed")
            _settle_all(batch.items, lambda: AigesError(errors.INVALID_OPERATION,
                                                        "batch call cancelled", 503))
            return
        exc = call.exception()
        n = len(batch.items)
        if exc is None and len(call.result()) != n:
            exc = EngineError("execBatch", -1, f"the engine answered {len(call.result())} "
                              f"of {n} requests")
        if exc is not None:
            self.metrics.batch_call("failed")
            _settle_all(batch.items, _copier(exc))
            return
        self.metrics.batch_call("ok")
        self._answer(batch.items, call.result())

    def _answer(self, items: list[_Item], results: list) -> None:
        for item, outputs in zip(items, results, strict=True):
            if item.result.done():
                continue
            if isinstance(outputs, EngineError):
                self.metrics.engine_error(outputs.op, outputs.engine_code)
                item.result.set_exception(outputs)
                continue
            try:
                item.result.set_result(checked(outputs, "exec"))
            except AigesError as exc:
                item.result.set_exception(exc)


class _Batch:
    __slots__ = ("items", "label", "timer", "timed_out")

    def __init__(self, items: list[_Item], label: str):
        self.items, self.label = items, label
        self.timer: asyncio.TimerHandle | None = None
        self.timed_out = False


def _copier(exc: BaseException) -> Callable[[], BaseException]:
    """A fresh exception per item (each is raised in its own request)."""
    if isinstance(exc, EngineError):
        return lambda: EngineError(exc.op, exc.engine_code, exc.text)
    if isinstance(exc, AigesError):
        return lambda: AigesError(exc.code, exc.message, exc.http_status)
    log.error("batch call failed unexpectedly", exc_info=exc)
    return lambda: AigesError(errors.INVALID_OPERATION, "internal error; see the service log",
                              500)


def _settle_all(batch: list[_Item], make_error: Callable[[], BaseException]) -> None:
    for item in batch:
        if not item.result.done():
            item.result.set_exception(make_error())
