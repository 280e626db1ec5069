"""wrapperSetCtrl: the meter and trace callbacks, against the real echo library."""
from __future__ import annotations

import gc
import logging
import time

import pytest

from aiges.engine import Data
from aiges.native import load
from aiges.native.cdef import ffi


def wait_for(calls: list, n: int, timeout: float = 5.0) -> list:
    deadline = time.monotonic() + timeout
    while len(calls) < n and time.monotonic() < deadline:
        time.sleep(0.01)  # the engine calls from its own thread
    return calls


@pytest.fixture
def echo(echo_so):
    engine = load(echo_so)
    calls: list[tuple] = []
    engine.set_ctrl(lambda sid, key, count: calls.append(("meter", sid, key, count)),
                    lambda sid, key, value: calls.append(("trace", sid, key, value)))
    engine.init({})
    engine.calls = calls
    yield engine
    engine.fini()  # which forgets the callbacks (test_fini_takes_the_callbacks_back)


def test_exec_meters_and_traces_with_its_sid(echo):
    echo.exec("sid-1", {}, [Data("input", b"x")], [])
    # In any order: meter calls made during a compiled exec are handed over after it.
    assert sorted(echo.calls) == [("meter", "sid-1", "echo_exec", 1),
                                  ("trace", "sid-1", "echo", "exec")]


def test_exec_async_meters_with_its_sid(echo):
    done = []
    echo.exec_async("sid-2", {}, [Data("input", b"x")], [], 1000,
                    lambda items, ret: done.append(ret))
    wait_for(done, 1)
    assert ("meter", "sid-2", "echo_exec", 1) in echo.calls


def test_calls_after_the_request_get_sid_dash(echo):
    echo.exec("sid-3", {"late_ctrl_ms": "20"}, [Data("input", b"x")], [])
    late = wait_for(echo.calls, 5)[2:]
    # A stale usrTag and a NULL one: looked up by value, never read.
    assert late == [("meter", "-", "echo_late", 1), ("trace", "-", "echo", "late"),
                    ("trace", "-", "echo", "late_null")]


def test_a_failing_callback_does_not_reach_the_engine(echo_so, caplog):
    engine = load(echo_so)

    def broken(*args):
        raise RuntimeError("sink down")

    engine.set_ctrl(broken, broken)
    engine.init({})
    try:
        with caplog.at_level(logging.ERROR):
            out = engine.exec("sid-4", {}, [Data("input", b"still served")], [])
        assert out[0].data == b"still served"
        assert "error in engine callback" in caplog.text and "sink down" in caplog.text
    finally:
        engine.fini()


def test_python_engines_take_no_callbacks(py_examples):
    from aiges.python import load as load_py
    engine = load_py(py_examples / "echo" / "wrapper.py")
    engine.set_ctrl(None, None)  # a no-op, not an error


def test_fini_takes_the_callbacks_back(echo_so):
    calls: list = []
    engine = load(echo_so)
    engine.set_ctrl(lambda *a: calls.append(a), lambda *a: calls.append(a))
    engine.init({})
    engine.fini()
    engine.init({})  # the same image, a new life without wrapperSetCtrl
    try:
        engine.exec("sid-5", {}, [Data("input", b"x")], [])
    finally:
        engine.fini()
    assert calls == []


def test_callbacks_outlive_a_closed_engine(echo_so):
    """A library that keeps calling what it was given after its CEngine is gone (here
    one closed without wrapperFini, its image kept by -z nodelete) reaches a callback
    that does nothing, not freed memory."""
    calls: list = []
    old = load(echo_so)
    old.set_ctrl(lambda *a: calls.append(a), lambda *a: calls.append(a))
    old.init({})
    old.close()
    del old
    gc.collect()
    # Callbacks made and freed meanwhile take the memory a freed trampoline had.
    junk = [ffi.callback("int(int)", lambda x: x) for _ in range(2000)]
    del junk
    gc.collect()
    engine = load(echo_so)
    engine.init({})
    try:
        out = engine.exec("sid-6", {}, [Data("input", b"still served")], [])
    finally:
        engine.fini()
    assert out[0].data == b"still served" and calls == []


def test_no_trace_callback_is_handed_over_when_traces_are_not_logged(echo_so):
    engine = load(echo_so)
    real, given = engine._fn["wrapperSetCtrl"], []
    engine._fn["wrapperSetCtrl"] = lambda kind, func: given.append(kind) or real(kind, func)
    calls: list = []
    engine.set_ctrl(lambda *a: calls.append(a), None)
    engine.init({})
    try:
        engine.exec("sid-7", {}, [Data("input", b"x")], [])
    finally:
        engine.fini()
    assert given == [engine._lib.CTMeterCustom] and calls == [("sid-7", "echo_exec", 1)]
