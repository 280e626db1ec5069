"""The cffi boundary against real libraries built from native_examples/."""
from __future__ import annotations

import gc
import threading

import pytest

from aiges.engine import Data, DataStatus, DataType, Modes
from aiges.errors import EngineError, EngineLoadError
from aiges.native import load
from tests.helpers import counted, wait_pushed


@pytest.fixture
def echo(echo_so, tmp_path):
    # push: sessions created with a callback deliver through it (else they are read)
    with counted(load(echo_so), tmp_path, model="m", push="true") as engine:
        yield engine
    assert engine.counters()["live_exec"] == 0
    assert engine.counters()["live_sessions"] == 0


def test_modes_and_version(echo, native_dir):
    assert echo.modes == Modes(once_sync=True, once_async=True, session=True, batch=True)
    assert echo.version() == "echo/1.0.0"
    upper = load(native_dir / "libupper.so")
    assert upper.modes == Modes(once_sync=True, once_async=False, session=False)


@pytest.mark.parametrize("name, words", [
    ("libmissing.so", ["wrapperExecFree", "once-sync (wrapperExec + wrapperExecFree)"]),
    ("libnoinit.so", ["missing symbol(s) wrapperInit"]),
    ("libmangled.so", ["_Z11wrapperInitP9ParamList", "_Z11wrapperExecPKcP9ParamListP8DataList",
                       'lacks extern "C"']),
])
def test_refusals_name_the_symbol(native_dir, name, words):
    with pytest.raises(EngineLoadError) as info:
        load(native_dir / name)
    for word in words:
        assert word in str(info.value)


def test_exec_round_trip(echo):
    raw = bytes(range(256)) * 4096  # 1 MiB, handed over without a copy
    out = echo.exec("tag-1", {"sid": "tag-1", "k": "v"},
                    [Data("a", b"text", DataType.TEXT, DataStatus.ONCE, {"encoding": "utf8"}),
                     Data("b", raw, DataType.AUDIO, DataStatus.END, {}),
                     Data("empty", b"", DataType.TEXT, DataStatus.ONCE, {})], [1, 4294967295])
    by_key = {d.key: d for d in out}
    assert by_key["a"] == Data("a", b"text", DataType.TEXT, DataStatus.ONCE, {"encoding": "utf8"})
    assert by_key["b"].data == raw and by_key["b"].type == DataType.AUDIO
    assert by_key["empty"].data == b""
    assert by_key["params"].data == b'{"sid":"tag-1","k":"v"}'
    assert by_key["psr_ids"].data == b"1,4294967295"
    assert echo.counters()["execfree"] == 1


def test_exec_without_inputs_passes_null(echo):
    out = echo.exec("t", {}, [], [])
    assert [d.key for d in out] == ["params"] and out[0].data == b"{}"


def test_engine_error_carries_op_code_and_text(echo):
    with pytest.raises(EngineError) as info:
        echo.exec("t", {"fail": "321"}, [], [])
    err = info.value
    assert (err.op, err.engine_code, err.code, err.http_status) == ("exec", 321, 10909, 500)
    assert err.message == "echo: failure requested;code=321"


def call_async(engine, params, timeout=2.0):
    results, done = [], threading.Event()

    def on_result(items, ret):
        results.append((items, ret, threading.current_thread().name))
        done.set()

    token = engine.exec_async("tag", params, [Data("in", b"x")], [], 1000, on_result)
    done.wait(timeout)
    return token, results


def test_exec_async_from_an_engine_thread(echo):
    _, results = call_async(echo, {"sid": "s"})
    (items, ret, thread), = results
    assert ret == 0 and items[0].data == b"x"
    assert thread != threading.current_thread().name


def test_inline_and_duplicate_callbacks(echo):
    _, results = call_async(echo, {"inline": "true"})
    assert results[0][2] == threading.current_thread().name
    _, results = call_async(echo, {"callback_twice": "true"})
    threading.Event().wait(0.1)
    assert len(results) == 1  # the second callback found its tag finished


def test_forgotten_tag_ignores_the_late_callback(echo):
    results = []
    token = echo.exec_async("t", {"delay_ms": "100"}, [], [], 1000,
                            lambda items, ret: results.append(ret))
    echo.forget(token)
    gc.collect()
    threading.Event().wait(0.3)
    assert results == [] and echo.counters()["callbacks"] == 1


def test_sync_session(echo):
    session = echo.create("sid-1", {"sid": "sid-1"}, [], None)
    echo.write(session, [Data("in", b"one", status=DataStatus.BEGIN)])
    echo.write(session, [Data("in", b"two", status=DataStatus.END)])
    out = echo.read(session)
    assert [(d.data, d.status) for d in out] == [(b"one", 0), (b"two", 2)]
    assert echo.read(session) is None
    assert "writes=2" in echo.debug_info(session)
    echo.destroy(session)
    assert echo.counters()["destroy"] == 1


def test_async_session_pushes_in_order(echo):
    got, done = [], threading.Event()

    def on_result(items, ret):
        got.extend(d.data for d in items)
        if len(got) == 5:
            done.set()

    session = echo.create("sid-2", {}, [], on_result)
    for i in range(5):
        echo.write(session, [Data("in", str(i).encode(), status=DataStatus.CONTINUE)])
    assert wait_pushed(echo, done, 2)
    echo.destroy(session)
    assert got == [b"0", b"1", b"2", b"3", b"4"]


def test_session_errors(echo):
    with pytest.raises(EngineError) as info:
        echo.create("s", {"fail_create": "8"}, [], None)
    assert (info.value.op, info.value.code) == ("create", 10905)
    session = echo.create("s", {"fail_write": "9"}, [], None)
    with pytest.raises(EngineError) as info:
        echo.write(session, [Data("in", b"x")])
    assert info.value.code == 10907
    echo.destroy(session)


def test_init_failure(native_dir):
    engine = load(native_dir / "libinitfail.so")
    with pytest.raises(EngineError) as info:
        engine.init({})
    assert info.value.code == 10901
    assert info.value.message == "initfail: model file not found;code=12345"
