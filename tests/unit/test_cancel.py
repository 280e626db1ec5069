"""Runner.cancel (wrapperCancel, an aiges extension): the engine is asked to stop, off the
event loop and counted by reason, when a once request's timeout fires or the task
awaiting its call is cancelled; an engine without a cancel entry is never asked, and a
cancel that fails never reaches the request."""
from __future__ import annotations

import asyncio
import threading

import pytest

from aiges import cancel as why
from aiges.engine import Data, Modes
from aiges.errors import AigesError
from aiges.metrics import Metrics
from aiges.pool import InstancePool
from aiges.protocol import Request
from aiges.runner import Runner
from tests.helpers import metric, metric_samples


class CancellableEngine:
    """exec waits for its tag's cancel (or 5 s); cancel records the tag and its thread."""

    path = "fake"
    modes = Modes(once_sync=True, once_async=True, session=False)
    cancellable = True

    def __init__(self, fail: bool = False):
        self.fail = fail
        self.stops: dict[str, threading.Event] = {}
        self.cancelled: list[tuple[str, str]] = []  # (tag, thread name)
        self.returned = threading.Event()

    def _stop(self, tag: str) -> threading.Event:
        return self.stops.setdefault(tag, threading.Event())

    def exec(self, tag, params, data, psr_ids):
        self._stop(tag).wait(5)
        self.returned.set()
        return [Data("result", b"ok")]

    def exec_async(self, tag, params, data, psr_ids, timeout_ms, on_result):
        def work():
            self._stop(tag).wait(5)
            on_result(None, 30007)
        threading.Thread(target=work, daemon=True).start()
        return tag

    def forget(self, token):
        pass

    def cancel(self, tag: str) -> int:
        self.cancelled.append((tag, threading.current_thread().name))
        if self.fail:
            raise RuntimeError("the engine's cancel broke")
        self._stop(tag).set()
        return 0

    def error_text(self, code):
        return "cancelled"


class PlainEngine(CancellableEngine):
    """The same engine without a cancel entry (an attribute it does not have)."""

    cancellable = False


def request(sid: str = "s1") -> Request:
    return Request(sid=sid, header={}, params={"sid": sid}, data=[], psr_ids=[], outputs={})


def runner_for(engine, async_mode: bool = False, timeout_s: float = 5.0) -> Runner:
    pool = InstancePool(1, queue_limit=5, wait_s=2)
    return Runner(engine, pool, once_timeout_s=timeout_s, async_mode=async_mode,
                  metrics=Metrics(process=False))


def cancels(runner: Runner, reason: str) -> float:
    samples = metric_samples(runner.metrics.exposition().decode())
    return metric(samples, "aiges_engine_cancels_total", reason=reason)


async def settle(condition, timeout_s: float = 2.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.005)


@pytest.mark.parametrize("async_mode", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("reason", [why.CLIENT_LEFT, why.SHUTDOWN])
async def test_a_cancelled_request_cancels_its_engine_call(async_mode, reason):
    engine = CancellableEngine()
    runner = runner_for(engine, async_mode)
    task = asyncio.create_task(runner.once(request("left")))
    await asyncio.sleep(0.05)
    task.cancel(reason)
    with pytest.raises(asyncio.CancelledError):
        await task
    await settle(lambda: engine.cancelled)
    tag, thread = engine.cancelled[0]
    assert tag == "left" and thread != threading.current_thread().name  # off the loop
    assert cancels(runner, reason) == 1
    await asyncio.wait_for(runner.pool.wait_idle(), 2)  # the call returned early: free again
    assert runner.pool.stuck == 0
    runner.close()


async def test_a_cancel_without_a_known_reason_counts_as_client_left():
    engine = CancellableEngine()
    runner = runner_for(engine)
    task = asyncio.create_task(runner.once(request()))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await settle(lambda: engine.cancelled)
    assert cancels(runner, why.CLIENT_LEFT) == 1
    runner.close()


@pytest.mark.parametrize("async_mode", [False, True], ids=["sync", "async"])
async def test_a_once_timeout_cancels_the_call(async_mode):
    engine = CancellableEngine()
    runner = runner_for(engine, async_mode, timeout_s=0.05)
    with pytest.raises(AigesError) as info:
        await runner.once(request("slow"))
    assert info.value.code == 10102
    await settle(lambda: engine.cancelled)
    assert engine.cancelled[0][0] == "slow" and cancels(runner, why.TIMEOUT) == 1
    await asyncio.wait_for(runner.pool.wait_idle(), 2)
    runner.close()


async def test_an_engine_without_cancel_is_never_asked():
    engine = PlainEngine()
    runner = runner_for(engine, timeout_s=0.05)
    assert not runner.can_cancel
    with pytest.raises(AigesError):
        await runner.once(request())
    task = asyncio.create_task(runner.once(request("b")))
    await asyncio.sleep(0.02)
    task.cancel(why.CLIENT_LEFT)
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.05)
    assert engine.cancelled == [] and cancels(runner, why.CLIENT_LEFT) == 0
    for stop in engine.stops.values():
        stop.set()
    await asyncio.wait_for(runner.pool.wait_idle(), 2)
    runner.close()


async def test_an_engine_object_without_the_attribute_has_no_cancel():
    class Bare:
        modes = Modes(once_sync=True, once_async=False, session=False)
        path = "bare"

    runner = runner_for(Bare())
    assert not runner.can_cancel
    runner.cancel("s", why.CLIENT_LEFT)  # nothing at all
    runner.close()


async def test_a_failing_cancel_is_logged_and_the_request_path_goes_on(caplog):
    engine = CancellableEngine(fail=True)
    runner = runner_for(engine)
    task = asyncio.create_task(runner.once(request("x")))
    await asyncio.sleep(0.05)
    task.cancel(why.CLIENT_LEFT)
    with pytest.raises(asyncio.CancelledError):
        await task
    await settle(lambda: "wrapperCancel failed" in caplog.text)
    engine.stops["x"].set()
    await asyncio.wait_for(runner.pool.wait_idle(), 2)
    runner.close()


def test_reasons():
    assert why.reason_of(asyncio.CancelledError(why.SHUTDOWN)) == why.SHUTDOWN
    assert why.reason_of(asyncio.CancelledError("something else")) == why.CLIENT_LEFT
    assert why.session_reason("idle timeout") == why.TIMEOUT
    assert why.session_reason("shutdown") == why.SHUTDOWN
    assert why.session_reason("client left") == why.CLIENT_LEFT
    assert why.gone_error(why.SHUTDOWN).http_status == 503


class CancellableBatchEngine(CancellableEngine):
    """exec_batch waits until every item's tag is cancelled (or 5 s)."""

    modes = Modes(once_sync=True, once_async=False, session=False, batch=True)

    def exec_batch(self, tags, params, data):
        for tag in tags:
            self._stop(tag).wait(5)
        return [[Data("result", b"ok")] for _ in tags]


async def test_a_batched_request_given_up_cancels_its_item():
    engine = CancellableBatchEngine()
    pool = InstancePool(1, queue_limit=5, wait_s=2)
    runner = Runner(engine, pool, 5.0, False, Metrics(process=False), batch_max_size=4)
    task = asyncio.create_task(runner.once(request("in-batch")))
    await settle(lambda: runner.batcher.calls == 1)
    task.cancel(why.CLIENT_LEFT)
    with pytest.raises(asyncio.CancelledError):
        await task
    await settle(lambda: engine.cancelled)
    assert engine.cancelled[0][0] == "in-batch" and cancels(runner, why.CLIENT_LEFT) == 1
    await asyncio.wait_for(pool.wait_idle(), 2)
    runner.close()


async def test_a_batch_past_the_once_timeout_cancels_every_item():
    engine = CancellableBatchEngine()
    pool = InstancePool(1, queue_limit=5, wait_s=2)
    runner = Runner(engine, pool, 0.1, False, Metrics(process=False), batch_max_size=4)
    results = await asyncio.gather(*(runner.once(request(f"b{i}")) for i in range(3)),
                                   return_exceptions=True)
    assert all(isinstance(r, AigesError) and r.code == 10102 for r in results)
    await settle(lambda: len(engine.cancelled) == 3)
    assert {tag for tag, _ in engine.cancelled} == {"b0", "b1", "b2"}
    assert cancels(runner, why.TIMEOUT) == 3
    await asyncio.wait_for(pool.wait_idle(), 2)
    runner.close()
