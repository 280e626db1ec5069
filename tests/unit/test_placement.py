"""Where engine calls run: inline on the loop once measured fast, else on engine threads."""
from __future__ import annotations

import logging
import threading
import time

from aiges.engine import Data, Modes
from aiges.placement import (GIL_WAIT_S, MAX_INLINE_BYTES, MAX_NEED, PROMOTE, UNSAMPLED,
                             Placement, Watchdog)
from aiges.pool import InstancePool
from aiges.protocol import Request
from aiges.runner import Runner

FAST, SLOW = 10e-6, 1e-3  # against a 250 us limit


def promoted(placement: Placement, op: str = "exec") -> Placement:
    for _ in range(PROMOTE):
        placement.record(op, FAST, inline=False)
    assert placement.inline(op)
    return placement


def test_an_op_starts_on_the_threads_and_moves_inline_after_a_fast_streak():
    placement = Placement(250)
    for _ in range(PROMOTE - 1):
        placement.record("exec", FAST, inline=False)
    assert not placement.inline("exec")
    placement.record("exec", FAST, inline=False)
    assert placement.inline("exec")
    assert not placement.inline("read")  # per op


def test_a_threaded_call_may_wait_for_the_gil_but_not_longer():
    placement = Placement(250)
    for _ in range(PROMOTE - 1):  # GIL hand-overs under load: still "looks fast"
        placement.record("exec", GIL_WAIT_S, inline=False)
    placement.record("exec", GIL_WAIT_S + 0.001, inline=False)  # waited on its own
    assert not placement.inline("exec")
    for _ in range(PROMOTE - 1):
        placement.record("exec", FAST, inline=False)
    assert not placement.inline("exec")  # the streak started over


def test_two_slow_inline_calls_in_a_row_send_it_back_and_double_the_streak_needed():
    placement = promoted(Placement(250))
    placement.record("exec", SLOW, inline=True)  # a lone outlier (cold caches) is forgiven
    assert placement.inline("exec")
    placement.record("exec", FAST, inline=True)
    placement.record("exec", SLOW, inline=True)
    assert placement.inline("exec")
    placement.record("exec", SLOW, inline=True)
    assert not placement.inline("exec")
    for _ in range(2 * PROMOTE - 1):
        placement.record("exec", FAST, inline=False)
    assert not placement.inline("exec")
    placement.record("exec", FAST, inline=False)
    assert placement.inline("exec")


def test_usage_is_sampled_only_after_a_slow_inline_call():
    """No getrusage per request: the loop thread's usage is read around inline calls
    only from a slow one until a fast one, so the call that would send the op back is
    judged on it (preempted or not)."""
    placement = promoted(Placement(250))
    assert placement.usage() is UNSAMPLED
    assert not placement.preempted(SLOW, placement.usage())  # unsampled: counted as slow
    placement.record("exec", SLOW, inline=True)
    before = placement.usage()
    assert before is not UNSAMPLED
    # Sampled just now: little CPU used, no voluntary switch since: a preempted call.
    assert placement.preempted(SLOW, before)
    assert placement.inline("exec")
    placement.record("exec", FAST, inline=True)
    assert placement.usage() is UNSAMPLED


def test_the_streak_needed_is_capped_and_a_long_good_run_halves_it():
    placement = Placement(250)
    for _ in range(12):  # demoted over and over: 32 -> 4096 at most
        promoted_after = 0
        while not placement.inline("exec"):
            placement.record("exec", FAST, inline=False)
            promoted_after += 1
        placement.record("exec", SLOW, inline=True)
        placement.record("exec", SLOW, inline=True)
    assert promoted_after == MAX_NEED
    while not placement.inline("exec"):
        placement.record("exec", FAST, inline=False)
    for _ in range(MAX_NEED):
        placement.record("exec", FAST, inline=True)
    placement.record("exec", SLOW, inline=True)
    placement.record("exec", SLOW, inline=True)
    needed = 0
    while not placement.inline("exec"):
        placement.record("exec", FAST, inline=False)
        needed += 1
    assert needed == MAX_NEED  # halved to 2048, then doubled by the demotion


def test_big_inputs_rare_ops_and_a_zero_limit_stay_on_the_threads():
    placement = promoted(Placement(250))
    assert placement.inline("exec", MAX_INLINE_BYTES)
    assert not placement.inline("exec", MAX_INLINE_BYTES + 1)
    for op in ("init", "fini", "loadRes"):
        for _ in range(PROMOTE * 2):
            placement.record(op, FAST, inline=False)
        assert not placement.inline(op)
    off = Placement(0)
    for _ in range(PROMOTE * 2):
        off.record("exec", 0.0, inline=False)
    assert not off.inline("exec")


class ThreadEngine:
    """Records the thread of every exec; sleeps ``delay_s`` in it."""

    path = "fake"
    modes = Modes(once_sync=True, once_async=False, session=False)

    def __init__(self):
        self.threads: list[int] = []
        self.delay_s = 0.0

    def exec(self, tag, params, data, psr_ids):
        self.threads.append(threading.get_ident())
        if self.delay_s:
            time.sleep(self.delay_s)
        return [Data("out", b"ok")]


def request() -> Request:
    return Request(sid="s", header={}, params={"sid": "s"}, outputs={},
                   data=[Data("in", b"x")], psr_ids=[])


async def test_runner_moves_a_fast_engine_onto_the_loop_and_a_slowed_one_back():
    engine = ThreadEngine()
    runner = Runner(engine, InstancePool(2, 10, 1.0), 5.0, False, inline_max_us=250)
    loop_thread = threading.get_ident()
    try:
        for _ in range(PROMOTE + 3):
            assert [d.data for d in await runner.once(request())] == [b"ok"]
        assert loop_thread not in engine.threads[:PROMOTE]
        assert engine.threads[-3:] == [loop_thread] * 3
        engine.delay_s = 0.005  # turned slow: two blocking calls, then the threads again
        for _ in range(4):
            await runner.once(request())
        assert engine.threads[-4:-2] == [loop_thread] * 2
        assert loop_thread not in engine.threads[-2:]
        assert runner.pool.in_use == 0
    finally:
        runner.close()


async def test_an_engine_that_waits_never_runs_on_the_loop():
    engine = ThreadEngine()
    engine.delay_s = GIL_WAIT_S + 0.005
    runner = Runner(engine, InstancePool(2, 10, 1.0), 5.0, False, inline_max_us=250)
    try:
        for _ in range(PROMOTE + 2):
            await runner.once(request())
        assert threading.get_ident() not in engine.threads
    finally:
        runner.close()


def test_watchdog_logs_an_inline_call_that_blocks_the_loop(caplog):
    watchdog = Watchdog(0.05)
    try:
        with caplog.at_level(logging.ERROR, logger="aiges.placement"):
            watchdog.enter("exec")
            time.sleep(0.3)
            watchdog.leave()
        blocked = [r for r in caplog.records if "blocked" in r.getMessage()]
        assert len(blocked) == 1  # once per call, not once per check
        assert blocked[0].op == "exec" and blocked[0].seconds >= 0.05
    finally:
        watchdog.close()
