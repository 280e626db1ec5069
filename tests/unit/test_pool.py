import asyncio

import pytest

from aiges.errors import AigesError
from aiges.pool import InstancePool, NoInstance


async def test_hands_out_distinct_instances_then_queues_fairly():
    pool = InstancePool(2, queue_limit=10, wait_s=1)
    a, b = await pool.acquire(), await pool.acquire()
    assert {a, b} == {0, 1} and pool.in_use == 2
    order = []

    async def waiter(name):
        instance = await pool.acquire()
        order.append(name)
        pool.release(instance)

    tasks = [asyncio.create_task(waiter(n)) for n in "xyz"]
    await asyncio.sleep(0)
    assert pool.waiting == 3
    pool.release(a)
    await asyncio.gather(*tasks)
    assert order == ["x", "y", "z"]
    pool.release(b)
    assert pool.in_use == 0


async def test_wait_limit_gives_no_instance():
    pool = InstancePool(1, queue_limit=10, wait_s=0.05)
    await pool.acquire()
    with pytest.raises(NoInstance) as info:
        await pool.acquire()
    assert info.value.code == 10110 and info.value.http_status == 429
    assert pool.waiting == 0


async def test_full_queue_refuses_at_once():
    pool = InstancePool(1, queue_limit=1, wait_s=5)
    await pool.acquire()
    queued = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0)
    with pytest.raises(NoInstance):
        await pool.acquire()
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert pool.waiting == 0


async def test_cancelled_waiter_handed_an_instance_gives_it_back():
    pool = InstancePool(1, queue_limit=5, wait_s=5)
    first = await pool.acquire()
    queued = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0)
    pool.release(first)  # hands it to the waiter...
    queued.cancel()      # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert pool.in_use == 0
    assert await pool.acquire() == first


async def test_wait_idle():
    pool = InstancePool(2, queue_limit=5, wait_s=1)
    instance = await pool.acquire()
    idle = asyncio.create_task(pool.wait_idle())
    await asyncio.sleep(0.01)
    assert not idle.done()
    pool.release(instance)
    await asyncio.wait_for(idle, 1)


async def test_a_closed_pool_refuses_new_work_but_lets_holders_finish():
    pool = InstancePool(1, queue_limit=10, wait_s=1)
    held = await pool.acquire()
    queued = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0)
    pool.close("engine generation 1 is finishing: retry")
    with pytest.raises(AigesError) as info:
        await pool.acquire()
    assert (info.value.http_status, info.value.message) == (
        503, "engine generation 1 is finishing: retry")
    pool.release(held)
    pool.release(await queued)  # queued before the close: served
    await pool.wait_idle()
