"""The batcher (aiges/batcher.py) with a fake engine: how batches form (maxSize, the
instance freeing, maxDelayMs), what goes alone, and each request's own answer, error,
429 and 10102."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from aiges.engine import Data, Modes
from aiges.errors import AigesError, EngineError
from aiges.metrics import Metrics
from aiges.pool import InstancePool, NoInstance
from aiges.protocol import Request
from aiges.runner import Runner


class BatchEngine:
    """exec_batch echoes each item's input; records every call's size. Per-item params:
    fail=N; any item's fail_batch=N fails the call; ``gate`` (when set) holds each call
    until it is opened."""

    path = "fake"
    modes = Modes(once_sync=True, once_async=False, session=False, batch=True)

    def __init__(self, call_s: float = 0.0):
        self.call_s = call_s
        self.sizes: list[int] = []
        self.singles = 0
        self.gate: threading.Event | None = None

    def exec(self, tag, params, data, psr_ids):
        self.singles += 1
        return [Data("input", data[0].data), Data("alone", b"1")]

    def exec_batch(self, tags, params, data):
        self.sizes.append(len(tags))
        if self.gate is not None:
            self.gate.wait(5)
        time.sleep(self.call_s)
        for p in params:
            if p.get("fail_batch"):
                raise EngineError("execBatch", int(p["fail_batch"]), "batch refused")
        return [EngineError("exec", int(p["fail"]), "item refused") if p.get("fail")
                else [Data("input", d[0].data)] for p, d in zip(params, data)]


def request(i: int, **params) -> Request:
    sid = f"s{i}"
    return Request(sid=sid, header={}, params={"sid": sid, **params}, outputs={},
                   data=[Data("input", f"in-{i}".encode())], psr_ids=[])


def make(engine, instances=1, max_size=4, delay_s=0.0, timeout_s=5.0, wait_s=2.0,
         queue=100) -> Runner:
    pool = InstancePool(instances, queue_limit=queue, wait_s=wait_s)
    return Runner(engine, pool, timeout_s, False, Metrics(process=False),
                  batch_max_size=max_size, batch_max_delay_s=delay_s)


async def gather(runner, reqs):
    return await asyncio.gather(*(runner.once(r) for r in reqs), return_exceptions=True)


async def test_concurrent_requests_share_calls_and_each_gets_its_own_answer():
    engine = BatchEngine(call_s=0.02)
    runner = make(engine, max_size=4)
    results = await gather(runner, [request(i) for i in range(10)])
    assert [r[0].data for r in results] == [f"in-{i}".encode() for i in range(10)]
    # All arrived before the dispatcher ran: full batches, then the rest.
    assert engine.sizes == [4, 4, 2]
    assert runner.pool.in_use == 0 and runner.batcher.waiting == 0
    runner.close()


async def test_idle_service_adds_no_delay():
    engine = BatchEngine()
    runner = make(engine, max_size=8)
    started = time.perf_counter()
    await runner.once(request(0))
    assert time.perf_counter() - started < 0.05
    assert engine.sizes == [1]
    runner.close()


async def test_max_delay_waits_for_a_fuller_batch():
    engine = BatchEngine()
    runner = make(engine, max_size=4, delay_s=0.05)
    first = asyncio.ensure_future(runner.once(request(0)))
    await asyncio.sleep(0.01)
    rest = [asyncio.ensure_future(runner.once(request(i))) for i in (1, 2)]
    await asyncio.gather(first, *rest)
    assert engine.sizes == [3]
    # maxSize closes a batch before the delay runs out.
    started = time.perf_counter()
    await gather(runner, [request(i) for i in range(4)])
    assert engine.sizes[1:] == [4] and time.perf_counter() - started < 0.04
    runner.close()


async def test_resources_go_alone_and_the_fast_path_leaves_batches_to_the_batcher():
    engine = BatchEngine()
    runner = make(engine)
    req = request(0)
    req.psr_ids = [3]
    assert runner.batcher.takes(req) is False
    assert [d.key for d in await runner.once(req)] == ["input", "alone"]
    assert runner.once_now(request(1)) is None  # batched: never inline
    assert engine.singles == 1
    runner.close()


async def test_per_item_errors_and_a_failing_call():
    engine = BatchEngine(call_s=0.01)
    metrics_runner = make(engine, max_size=8)
    engine.gate = threading.Event()
    blocker = asyncio.ensure_future(metrics_runner.once(request(99)))
    await asyncio.sleep(0.01)
    reqs = [request(0), request(1, fail="7"), request(2)]
    pending = asyncio.ensure_future(gather(metrics_runner, reqs))
    await asyncio.sleep(0.01)
    engine.gate.set()
    results = await pending
    await blocker
    assert results[0][0].data == b"in-0" and results[2][0].data == b"in-2"
    assert isinstance(results[1], EngineError) and results[1].code == 10909
    assert results[1].message == "item refused;code=7"
    results = await gather(metrics_runner, [request(3), request(4, fail_batch="9")])
    assert all(isinstance(r, EngineError) and r.engine_code == 9 for r in results)
    assert results[0] is not results[1]  # each request raises its own error
    text = metrics_runner.metrics.exposition().decode()
    assert 'aiges_batch_calls_total{result="failed"} 1.0' in text
    assert 'aiges_engine_errors_total{code="7",op="exec"} 1.0' in text
    metrics_runner.close()


async def test_a_call_past_the_once_timeout_fails_every_item_and_its_instance_is_stuck():
    engine = BatchEngine()
    engine.gate = threading.Event()
    runner = make(engine, max_size=4, timeout_s=0.1, wait_s=0.05)
    results = await gather(runner, [request(i) for i in range(3)])
    assert [r.code for r in results] == [10102] * 3
    pool = runner.pool
    assert (pool.stuck, pool.usable) == (1, False)
    with pytest.raises(NoInstance):  # nothing frees within [fc] wait: 429
        await runner.once(request(5))
    engine.gate.set()
    await asyncio.wait_for(pool.wait_idle(), 2)
    assert (pool.stuck, pool.usable) == (0, True)
    assert 'aiges_batch_calls_total{result="timeout"} 1.0' in \
        runner.metrics.exposition().decode()
    runner.close()


async def test_queue_limit_is_an_immediate_429():
    engine = BatchEngine()
    engine.gate = threading.Event()
    runner = make(engine, max_size=2, queue=2)
    running = asyncio.ensure_future(runner.once(request(0)))
    await asyncio.sleep(0.01)
    waiting = [asyncio.ensure_future(runner.once(request(i))) for i in (1, 2)]
    await asyncio.sleep(0)
    with pytest.raises(NoInstance):
        await runner.once(request(3))
    engine.gate.set()
    await asyncio.gather(running, *waiting)
    runner.close()


async def test_a_client_gone_before_its_batch_is_dropped():
    engine = BatchEngine()
    engine.gate = threading.Event()
    runner = make(engine, max_size=4)
    running = asyncio.ensure_future(runner.once(request(0)))
    await asyncio.sleep(0.01)
    gone = asyncio.ensure_future(runner.once(request(1)))
    kept = asyncio.ensure_future(runner.once(request(2)))
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.sleep(0)
    engine.gate.set()
    await asyncio.gather(running, kept)
    assert engine.sizes == [1, 1]
    runner.close()


async def test_closing_answers_waiting_requests():
    engine = BatchEngine()
    engine.gate = threading.Event()
    runner = make(engine, max_size=2)
    running = asyncio.ensure_future(runner.once(request(0)))
    await asyncio.sleep(0.01)
    waiting = asyncio.ensure_future(runner.once(request(1)))
    await asyncio.sleep(0)
    runner.batcher.close(AigesError(10003, "closing", 503))
    with pytest.raises(AigesError) as info:
        await waiting
    assert info.value.http_status == 503
    engine.gate.set()
    await running
    await asyncio.wait_for(runner.batcher.wait_idle(), 1)
    runner.close()


def test_off_without_the_batch_entry_or_with_max_size_one():
    pool = InstancePool(1, 1, 1.0)
    assert Runner(BatchEngine(), pool, 1.0, False, batch_max_size=1).batcher is None
    plain = BatchEngine()
    plain.modes = Modes(once_sync=True, once_async=False, session=False)
    assert Runner(plain, pool, 1.0, False, batch_max_size=8).batcher is None
