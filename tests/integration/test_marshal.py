"""The compiled marshalling (aiges/native/marshal.c) against the Python one over the
ABI-mode library (aiges/native/lists.py): the same outputs, errors and refusals.

The echo engine answers with every input, its params as JSON and its psrIds, so a
difference in what either path hands the engine shows in its outputs.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sysconfig
import threading

import pytest

from aiges.engine import Data, DataStatus, DataType
from aiges.errors import EngineError
from aiges.native import library, lists, load, marshal
from aiges.native.cdef import ffi
from tests.helpers import counted, wait_pushed


@pytest.fixture
def echo(echo_so, tmp_path):
    with counted(load(echo_so), tmp_path) as engine:
        yield engine
    assert engine.counters()["live_exec"] == 0  # every output freed, by either path


def test_the_compiled_module_is_built_where_a_compiler_is():
    """``pip install -e .`` (make install) builds it: a missing module here, with a
    compiler present, is a broken build, not a fallback."""
    if shutil.which(sysconfig.get_config_var("CC").split()[0]) is None:
        pytest.skip("no C compiler: the ABI-mode path is the only one")
    assert marshal.compiled(), "aiges.native._marshal was not built: pip install -e ."


def both(engine, tag, params, data, psr_ids):
    """(compiled, Python) results of one exec, each a list of outputs or the error."""
    def run(fn):
        try:
            return fn(tag, params, data, psr_ids)
        except Exception as exc:  # noqa: BLE001 - compared below
            return type(exc), str(exc)

    if engine._exec is None:
        pytest.skip("aiges.native._marshal is not built (no compiler)")
    return run(engine.exec), run(engine._exec_abi)


CASES = {
    "small": ({"sid": "s1"}, [Data("input", b"hello", DataType.TEXT, DataStatus.ONCE,
                                   {"encoding": "utf8"})], []),
    "nothing": ({}, [], []),
    "unicode and empty": ({"sid": "s", "名": "值 ✓", "empty": ""},
                          [Data("ключ", b"", DataType.TEXT, DataStatus.BEGIN, {}),
                           Data("b", bytes(range(256)), DataType.AUDIO, DataStatus.END,
                                {"sample_rate": "16000", "encoding": "raw"})], [0, 7]),
    "past the stack sizes": ({f"p{i}": str(i) * i for i in range(40)},
                             [Data(f"k{i}", b"x" * i, i % 5, i % 4,
                                   {f"d{j}": "v" for j in range(i % 3)}) for i in range(12)],
                             list(range(20)) + [4294967295]),
    "big input": ({"sid": "big"}, [Data("audio", bytes(range(256)) * 4096, DataType.AUDIO,
                                        DataStatus.ONCE, {})], [1]),
    "engine error": ({"fail": "321"}, [], []),
    "empty answer": ({"empty": "true"}, [Data("a", b"1", 0, 3, {})], []),
    "psr id out of range": ({}, [], [4294967296]),
    "negative psr id": ({}, [], [-1]),
    "bytearray data": ({}, [Data("a", bytearray(b"xy"), 0, 3, {})], []),
}


@pytest.mark.parametrize("case", list(CASES))
def test_compiled_and_abi_paths_agree(echo, case):
    params, data, psr_ids = CASES[case]
    compiled, python = both(echo, "tag-" + case, params, data, psr_ids)
    assert compiled == python
    if case == "engine error":
        assert compiled[0] is EngineError and "code=321" in compiled[1]
    elif case in ("small", "big input"):
        assert compiled[0] == data[0]


def test_inputs_the_compiled_path_does_not_take_fall_back(echo):
    """Nothing reaches the engine from C for these: the Python path runs them."""
    if echo._exec is None:
        pytest.skip("aiges.native._marshal is not built (no compiler)")
    call = echo._exec.call
    with pytest.raises(marshal.Fallback):
        call(1, {}, [], [-1])
    with pytest.raises(marshal.Fallback):
        call(1, {"k": 1}, [], [])
    with pytest.raises(marshal.Fallback):
        call(1, {}, [Data("a", bytearray(b"x"))], [])
    with pytest.raises(marshal.Fallback):
        call(1, {}, ("not a list",), [])
    assert echo.counters().get("exec", 0) == 0


def test_abi_mode_can_be_chosen(echo_so, monkeypatch):
    monkeypatch.setenv("AIGES_MARSHAL", "abi")
    engine = load(echo_so)
    assert engine._exec is None
    engine.init({})
    assert [d.key for d in engine.exec("t", {"sid": "t"}, [], [])] == ["params"]
    engine.fini()


FRAMES = [
    [Data("in", b"one", DataType.TEXT, DataStatus.BEGIN, {"encoding": "utf8"})],
    [],
    [Data("in", b"", DataType.AUDIO, DataStatus.CONTINUE, {}),
     Data("other", bytes(range(256)), DataType.IMAGE, DataStatus.CONTINUE, {"k": "v"})],
    [Data(f"k{i}", b"x" * i, 0, 1, {"d": str(i)}) for i in range(10)],
    [Data("in", bytearray(b"falls back"), 0, 2, {})],
]


def test_session_write_and_read_agree_with_the_abi_path(echo):
    """Two sessions fed the same frames, one through the compiled write and read, the
    other through the Python ones: the same outputs, read after every frame."""
    if echo._session_calls is None:
        pytest.skip("aiges.native._marshal is not built (no compiler)")
    compiled = echo.create("c", {"sid": "c"}, [], None)
    python = echo.create("p", {"sid": "p"}, [], None)
    for frame in FRAMES:
        echo.write(compiled, frame)
        echo._write_abi(python, frame)
        assert echo.read(compiled) == echo._read_abi(python)
    assert echo.read(compiled) is None and echo._read_abi(python) is None
    assert echo.debug_info(compiled) == echo.debug_info(python).replace("sid=p", "sid=c")
    echo.destroy(compiled)
    echo.destroy(python)


def _pushed_by(engine, tag: str, frames: list) -> list:
    """(code, outputs) of each result the echo engine pushed for ``frames`` written to one
    session (its worker thread, push=true), taken from the C queue where it has one."""
    got, done = [], threading.Event()

    def on_result(items, ret):
        got.append((ret, items))
        if len(got) == len(frames):
            done.set()

    session = engine.create(tag, {"sid": tag}, [], on_result)
    for frame in frames:
        engine.write(session, frame)
    assert wait_pushed(engine, done, 5), got
    engine.destroy(session)
    counters = engine.counters()
    assert counters["create"] == counters["destroy"], counters
    return got


def test_pushed_outputs_queued_in_c_agree_with_the_abi_path(echo_so, tmp_path, monkeypatch):
    """What a session's engine pushes through the result callback: copied and queued by
    pushed.c, or copied by the Python callback (AIGES_MARSHAL=abi), the same outputs in
    the same order."""
    if not marshal.compiled():
        pytest.skip("aiges.native._marshal is not built (no compiler)")
    frames = [frame for frame in FRAMES if frame]  # a frame without data pushes nothing
    with counted(load(echo_so), tmp_path, push="true") as engine:
        assert engine.pushed is not None
        compiled = _pushed_by(engine, "c", frames)
    monkeypatch.setenv("AIGES_MARSHAL", "abi")
    with counted(load(echo_so, private=True), tmp_path, push="true") as engine:
        assert engine.pushed is None
        python = _pushed_by(engine, "p", frames)
    assert compiled == python and all(ret == 0 and items for ret, items in compiled)


def _push(queue: marshal.Pushed, tag: int, items: list | None, ret: int = 0) -> None:
    """Call the C callback as an engine would, with ``items`` as its DataList."""
    keep: list = []
    resp = lists.data_list(items, keep) if items is not None else ffi.NULL
    return queue.entry(ffi.cast("void*", tag), resp, ret)


@contextlib.contextmanager
def opened(queue: marshal.Pushed, *tags: int):
    """``tags`` as the usrTags of open sessions, closed after."""
    for tag in tags:
        queue.open(tag)
    try:
        yield
    finally:
        for tag in tags:
            queue.close(tag)


def test_the_c_queue_copies_every_field_and_keeps_the_order():
    queue = marshal.pushed()
    if queue is None:
        pytest.skip("aiges.native._marshal is not built (no compiler)")
    queue.take()  # nothing left from another test
    outputs = [items for _, (_, items, _) in CASES.items() if items] + [
        [Data("", b"", DataType.TEXT, DataStatus.ONCE, {"": "no key", "k": ""})]]
    with opened(queue, *range(1000, 1000 + len(outputs)), 2000):
        for n, items in enumerate(outputs):
            assert _push(queue, 1000 + n, items) == 0
        assert _push(queue, 2000, None, 10105) == 0  # an engine's error: no outputs
        assert os.read(queue.fd, 8)  # readable once results wait
        taken = queue.take()
    assert [tag for tag, _, _ in taken] == [1000 + n for n in range(len(outputs))] + [2000]
    for (_, ret, items), sent in zip(taken, outputs):
        assert ret == 0 and items == sent
    assert taken[-1][1:] == (10105, None)
    assert queue.take() == []


def test_a_take_clears_the_fd_it_was_woken_by():
    """The loop's take after the fd was seen readable clears it with no read of its own:
    also a write that came after the take before it (an engine thread's, on its way when
    that take ran), else the loop would be woken for it again and again."""
    queue = marshal.pushed()
    if queue is None:
        pytest.skip("aiges.native._marshal is not built (no compiler)")
    queue.take()
    with opened(queue, 5000):
        assert _push(queue, 5000, [Data("k", b"one")]) == 0
        assert [tag for tag, _, _ in queue.take(readable=True)] == [5000]
        with pytest.raises(BlockingIOError):
            os.read(queue.fd, 8)  # cleared by the take
        os.write(queue.fd, (1).to_bytes(8, "little"))  # a late write, nothing queued
        assert queue.take() == []  # not seen readable: left for the loop's wake-up
        assert queue.take(readable=True) == []
        with pytest.raises(BlockingIOError):
            os.read(queue.fd, 8)


def test_a_callback_for_no_open_session_is_answered_minus_one(caplog):
    """A late or unknown usrTag is refused at once with -1 (SPEC 1), nothing queued; the
    next take logs how many were."""
    queue = marshal.pushed()
    if queue is None:
        pytest.skip("aiges.native._marshal is not built (no compiler)")
    queue.take()
    assert _push(queue, 3000, [Data("k", b"never opened")]) == -1
    with opened(queue, 3001):
        assert _push(queue, 3001, [Data("k", b"open")]) == 0
    assert _push(queue, 3001, [Data("k", b"late")]) == -1  # closed: late
    with caplog.at_level(logging.WARNING, logger="aiges.native.marshal"):
        taken = queue.take()
    assert [(tag, items[0].data) for tag, _, items in taken] == [(3001, b"open")]
    assert [r.callbacks for r in caplog.records if "unknown or finished" in r.message] == [2]
    # Many sessions open at once, some closed meanwhile: each answered as it stands.
    tags = range(4000, 4000 + 16 * 300, 16)
    with opened(queue, *tags):
        for tag in tags[::2]:
            queue.close(tag)
        answers = [_push(queue, tag, [Data("k", b"x")]) for tag in tags]
    assert answers == [-1, 0] * (len(tags) // 2)
    assert [tag for tag, _, _ in queue.take()] == list(tags[1::2])


def test_a_held_queue_delays_engine_threads_but_never_blocks_them(echo_so, tmp_path):
    """While the loop holds the queue an engine's thread waits before queueing, at most
    about a millisecond a result: an engine whose write waits for its own thread is
    slowed, not deadlocked. The holding thread itself never waits."""
    queue = marshal.pushed()
    if queue is None:
        pytest.skip("aiges.native._marshal is not built (no compiler)")
    queue.take()
    frames = [frame for frame in FRAMES if frame]
    queue.hold(True)
    try:
        with opened(queue, 7):
            _push(queue, 7, [Data("inline", b"x")])  # the holder's own callback: no wait
            assert [tag for tag, _, _ in queue.take()] == [7]
        with counted(load(echo_so), tmp_path, push="true") as engine:
            got = _pushed_by(engine, "held", frames)  # each result waited out the hold
    finally:
        queue.hold(False)
    assert [ret for ret, _ in got] == [0] * len(frames)


def test_meter_calls_during_a_compiled_exec_arrive_as_through_the_callback(echo_so):
    """The engine's meter calls during a compiled exec stay in C and are handed over
    after it, with the call's sid; through the Python path they come one callback at a
    time. The same calls either way."""
    engine = load(echo_so)
    calls: list = []
    engine.set_ctrl(lambda sid, key, count: calls.append((sid, key, count)), None)
    engine.init({})
    try:
        if engine._exec is None or engine._ctrl.slot < 0:
            pytest.skip("aiges.native._marshal is not built (no compiler)")
        engine.exec("c-1", {}, [Data("input", b"x")], [])
        compiled = list(calls)
        calls.clear()
        engine._exec_abi("c-1", {}, [Data("input", b"x")], [])
        assert compiled == calls == [("c-1", "echo_exec", 1)]
        calls.clear()
        with pytest.raises(EngineError):  # metered, then failed: the count still arrives
            engine.exec("c-2", {"fail": "7"}, [], [])
        assert calls == [("c-2", "echo_exec", 1)]
    finally:
        engine.fini()


def test_results_taken_from_a_handler_keep_their_order():
    """A handler that takes the queue again (a session ended by its result, destroyed
    inline) does not overtake the results the take under way still holds."""
    queue = marshal.pushed()
    if queue is None:
        pytest.skip("aiges.native._marshal is not built (no compiler)")
    queue.take()
    pushed = library._Pushed(queue)
    tags = library._Tags()
    got: list[bytes] = []

    def handler(items, ret):
        got.append(items[0].data)
        if len(got) == 1:
            _push(queue, addr, [Data("k", b"4")])  # comes after those taken already
            pushed.take()

    _buf, addr = tags.open("ordered", handler, once=False)
    pushed.open(addr, tags)
    try:
        for n in (b"1", b"2", b"3"):
            _push(queue, addr, [Data("k", n)])
        pushed.take()
        pushed.take()
    finally:
        pushed.close(addr)
        tags.close(addr)
    assert got == [b"1", b"2", b"3", b"4"]
