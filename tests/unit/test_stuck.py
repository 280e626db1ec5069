"""The pool's account of instances held by engine calls that outlived their request."""
from __future__ import annotations

import asyncio
import threading

import pytest

from aiges.engine import Data, Modes
from aiges.errors import AigesError
from aiges.pool import InstancePool, NoInstance
from aiges.protocol import Request
from aiges.runner import Runner, checked


async def test_stuck_instances_count_until_released():
    pool = InstancePool(2, queue_limit=5, wait_s=0.05)
    a, b = await pool.acquire(), await pool.acquire()
    pool.mark_stuck(a)
    assert (pool.stuck, pool.usable) == (1, True)
    pool.mark_stuck(b)
    assert (pool.stuck, pool.usable) == (2, False)
    with pytest.raises(NoInstance):
        await pool.acquire()
    pool.release(a)  # the call finally returned
    assert (pool.stuck, pool.usable, pool.in_use) == (1, True, 1)
    assert await pool.acquire() == a
    pool.release(a)
    pool.release(b)
    assert (pool.stuck, pool.in_use) == (0, 0)


class BlockingEngine:
    """exec blocks until ``go`` is set; exec_async blocks the same way."""

    path = "fake"
    modes = Modes(once_sync=True, once_async=True, session=False)

    def __init__(self):
        self.go = threading.Event()

    def exec(self, tag, params, data, psr_ids):
        self.go.wait(5)
        return [Data("result", b"ok")]

    def exec_async(self, tag, params, data, psr_ids, timeout_ms, on_result):
        self.go.wait(5)
        return 1

    def forget(self, token):
        pass


def request() -> Request:
    return Request(sid="s", header={}, params={"sid": "s"}, data=[], psr_ids=[], outputs={})


@pytest.mark.parametrize("async_mode", [False, True])
async def test_timed_out_call_keeps_its_instance_stuck_until_it_returns(async_mode):
    engine = BlockingEngine()
    pool = InstancePool(1, queue_limit=5, wait_s=0.05)
    runner = Runner(engine, pool, once_timeout_s=0.05, async_mode=async_mode)
    with pytest.raises(AigesError) as info:
        await runner.once(request())
    assert info.value.code == 10102
    assert (pool.stuck, pool.usable, pool.in_use) == (1, False, 1)
    with pytest.raises(NoInstance):  # waiting for an instance has its own limit
        await runner.once(request())
    engine.go.set()
    await asyncio.wait_for(pool.wait_idle(), 2)
    assert (pool.stuck, pool.usable) == (0, True)
    runner.close()


def test_invalid_output_status_is_an_engine_error():
    good = [Data("a", b"", status=2)]
    assert checked(good, "exec") is good
    for op, code in [("exec", 10909), ("read", 10908), ("callback", 10910)]:
        with pytest.raises(AigesError) as info:
            checked([Data("a", b"", status=7)], op)
        assert (info.value.code, info.value.http_status) == (code, 500)
        assert "invalid output status 7" in info.value.message
