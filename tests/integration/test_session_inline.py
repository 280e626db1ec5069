"""Session frames of a fast engine are written inline (Session.write_soon): no task, no
await, the result queued before write_soon returns. A frame whose call goes to the
engine threads is awaited, and the frames after it wait their turn: a session's
frames reach the engine in the order written. Frames read together are written
together (Session.write_many), in the same order and with the same errors as one by
one. Both engine kinds, real engines."""
from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from aiges import errors
from aiges.engine import Data, DataStatus, DataType
from aiges.errors import AigesError
from aiges.placement import MAX_INLINE_BYTES, PROMOTE
from aiges.pool import InstancePool
from aiges.runner import Runner
from aiges.session_registry import SessionRegistry
from aiges.native import load as load_native
from aiges.python import load as load_python
from aiges.sessions import Limits
from tests.helpers import counted


def frame(text: bytes, status: int = DataStatus.CONTINUE) -> list[Data]:
    return [Data("input", text, DataType.TEXT, status, {"encoding": "utf8"})]


def texts(taken) -> list[bytes]:
    return [item.data for _seqs, items in taken for item in items]


@contextlib.asynccontextmanager
async def inline_session(engine, pushed: bool = False):
    """(runner, session) of ``engine``, its calls measured fast (inline). ``pushed``:
    asyncMode, the engine pushes its results."""
    pool = InstancePool(2, queue_limit=4, wait_s=1.0)
    runner = Runner(engine, pool, once_timeout_s=5.0, async_mode=pushed, inline_max_us=50_000)
    registry = SessionRegistry(engine, runner, pool, Limits(0, 0, 1.0), realtime=True,
                               pushed=pushed)
    session = await registry.open("sid-inline", {"sid": "sid-inline"}, [], {}, "test")
    try:
        for i in range(PROMOTE + 2):  # measured on the threads first, then inline
            await session.write(frame(b"warm %d" % i))
            assert texts(await session.results(2.0)) == [b"warm %d" % i]
        yield runner, session
    finally:
        await session.end("done")
        runner.close()


@pytest.fixture
async def warmed(echo_kinds):
    """(runner, session) of the echo engine, its write and read measured fast (inline)."""
    async with inline_session(echo_kinds) as (runner, session):
        assert runner.fast("write") and runner.fast("read")
        yield runner, session


async def test_frames_of_a_fast_engine_are_written_without_an_await(warmed):
    _runner, session = warmed
    woken = []
    session.listener = woken.append
    assert session.write_soon(frame(b"now")) is None
    assert texts(session.take()) == [b"now"] and woken


async def test_a_frame_waiting_for_a_thread_keeps_the_next_behind_it(warmed):
    _runner, session = warmed
    big = b"b" * (MAX_INLINE_BYTES + 1)  # too big to run inline: an engine thread
    first = session.write_soon(frame(big))
    assert first is not None
    second = session.write_soon(frame(b"small"))
    assert second is not None, "written inline before the frame written first"
    await asyncio.gather(first, second)
    assert texts(session.take()) == [big, b"small"]
    assert session.write_soon(frame(b"inline again")) is None
    assert texts(session.take()) == [b"inline again"]


async def test_an_engine_error_inline_ends_the_session_with_it(warmed):
    _runner, session = warmed
    assert session.write_soon(frame(b"x", status=9)) is None  # 9: not a DataStatus
    assert session.ended and session.error is not None
    with pytest.raises(Exception) as raised:
        session.write_soon(frame(b"after"))
    assert raised.value is session.error


async def write_all(session, frames) -> list[int]:
    """Session.write_many to the end, as a transport does: the indexes it stopped at."""
    stops, start = [], 0
    while start < len(frames):
        later, start = session.write_many(frames, start)
        stops.append(start)
        if later is not None:
            await later
    return stops


async def test_frames_read_together_are_written_inline_in_order(warmed):
    runner, session = warmed
    streak = runner.placement._streak.get("write", 0)
    writes = session.writes
    burst = [frame(b"f%d" % i) for i in range(20)]
    assert session.write_many(burst) == (None, 20)
    assert texts(session.take()) == [b"f%d" % i for i in range(20)]
    assert session.writes == writes + 20
    # every call counted for the placement, as one by one
    assert runner.placement._streak["write"] == streak + 20


async def test_a_frame_for_the_threads_in_a_burst_keeps_its_place(warmed):
    _runner, session = warmed
    big = b"b" * (MAX_INLINE_BYTES + 1)
    burst = [frame(b"a"), frame(b"b"), frame(big), frame(b"c"), frame(b"d")]
    stops = await write_all(session, burst)
    assert stops == [3, 5]  # two inline, the big one awaited, then inline again
    assert texts(session.take()) == [b"a", b"b", big, b"c", b"d"]


async def test_a_frame_after_the_end_raises_after_those_before(warmed):
    _runner, session = warmed
    burst = [frame(b"x"), frame(b"end", DataStatus.END), frame(b"late")]
    with pytest.raises(AigesError) as raised:
        await write_all(session, burst)
    assert raised.value.code == errors.SESSION_ENDED  # the echo's End output ended it
    assert texts(session.take()) == [b"x", b"end"]


async def test_an_engine_error_in_a_burst_keeps_the_results_before_it(warmed):
    _runner, session = warmed
    burst = [frame(b"1"), frame(b"2"), frame(b"bad", status=9), frame(b"4")]
    assert session.write_many(burst) == (None, 4)  # the session ended: the rest dropped
    assert session.ended and session.error is not None
    assert texts(session.take()) == [b"1", b"2"]


async def test_a_call_over_the_inline_limit_ends_the_burst_there(warmed):
    runner, session = warmed
    runner.placement.limit_s = 1e-9  # every call is now slow
    burst = [frame(b"s%d" % i) for i in range(6)]
    stops = await write_all(session, burst)
    # The first frame inline, over the limit: the next is placed on its own (awaited).
    assert stops[0] == 2, "went on inline after a slow call"
    assert texts(session.take()) == [b"s%d" % i for i in range(6)]


@pytest.fixture(params=["c", "py"])
def pushing(request, echo_so, py_examples, tmp_path):
    """The echo engine of each kind, pushing each write's result from a thread of its own."""
    engine = (load_native(echo_so) if request.param == "c"
              else load_python(py_examples / "echo" / "wrapper.py"))
    with counted(engine, tmp_path, push="true"):
        yield engine
    counters = engine.counters()
    assert counters["create"] == counters["destroy"], counters


async def test_results_pushed_meanwhile_are_taken_without_a_loop_turn(pushing):
    """A transport busy reading a burst takes what the engine pushed since (collect),
    to send it with the burst's frames, not after the burst."""
    async with inline_session(pushing, pushed=True) as (_runner, session):
        assert session.write_soon(frame(b"pushed")) is None  # inline: no loop turn
        time.sleep(0.2)  # the loop does not turn: the engine's thread calls back meanwhile
        assert session.queued == 0
        session.collect()
        assert texts(session.take()) == [b"pushed"]


async def test_results_pushed_later_are_handed_over_to_be_sent_at_once(pushing):
    """What an engine's thread pushes after the write reaches the loop later (the C
    queue's fd, or the Python hand-over): the transport is told it may send it at once
    (``listener(True)``), every result that came with it taken together."""
    async with inline_session(pushing, pushed=True) as (_runner, session):
        told: list[bool] = []
        session.listener = told.append
        assert session.write_soon(frame(b"later")) is None
        deadline = time.monotonic() + 5
        while not session.queued and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # the loop turns: the hand-over comes through it
        assert told and told[-1] is True
        assert texts(session.take()) == [b"later"]


async def test_a_bursts_pushed_results_come_in_order_once_it_is_written(pushing):
    """While a burst is written an engine's threads keep their results (a C engine's are
    held in its queue, a Python engine's threads wait for the GIL); once it is written,
    every one comes, in order, without a turn of the loop."""
    async with inline_session(pushing, pushed=True) as (_runner, session):
        burst = [frame(b"%d" % i) for i in range(20)]
        assert session.write_many(burst) == (None, 20)
        got: list[bytes] = []
        deadline = time.monotonic() + 5
        while len(got) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)  # the loop does not turn
            session.collect(len(burst))
            got += texts(session.take())
        assert got == [b"%d" % i for i in range(20)]
