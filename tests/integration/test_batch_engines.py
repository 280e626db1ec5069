"""Engine.exec_batch through the cffi boundary (libecho, libgpusim, libdigits) and for
Python wrappers (echo, digits): each item its own outputs or its own error, a failing
call raised, every output freed (the counters)."""
from __future__ import annotations

from pathlib import Path

import pytest

from aiges.engine import Data, DataType
from aiges.errors import EngineError
from aiges.generation import open_engine
from tests.helpers import counted

ROOT = Path(__file__).resolve().parents[2]
HELDOUT = ROOT / "native_examples" / "digits" / "heldout.bin"


@pytest.fixture(params=["c", "py"])
def echo(request, native_dir, py_examples, tmp_path):
    path = str(native_dir / "libecho.so") if request.param == "c" else \
        str(py_examples / "echo" / "wrapper.py")
    with counted(open_engine(path), tmp_path) as engine:
        yield engine
    assert engine.counters()["live_exec"] == 0


def items(n: int, prefix: str = "req") -> list[list[Data]]:
    return [[Data("input", f"{prefix}-{i}".encode())] for i in range(n)]


def by_key(outputs: list[Data]) -> dict[str, bytes]:
    return {item.key: item.data for item in outputs}


def test_each_item_gets_its_own_answer_and_errors_stay_per_item(echo):
    assert echo.modes.batch
    n = 6
    params = [{"sid": f"s{i}"} for i in range(n)]
    params[2]["fail"] = "7"
    params[4]["show_batch"] = "true"
    results = echo.exec_batch([p["sid"] for p in params], params, items(n))
    assert len(results) == n
    for i, result in enumerate(results):
        if i == 2:
            assert isinstance(result, EngineError)
            assert (result.op, result.engine_code, result.code) == ("exec", 7, 10909)
            continue
        assert by_key(result)["input"] == f"req-{i}".encode()
    assert by_key(results[4])["batch"] == b"6"


def test_a_failing_call_raises_for_the_whole_batch(echo):
    params = [{"sid": "a"}, {"sid": "b", "fail_batch": "9"}, {"sid": "c"}]
    with pytest.raises(EngineError) as info:
        echo.exec_batch(["a", "b", "c"], params, items(3))
    assert (info.value.op, info.value.engine_code, info.value.code) == ("execBatch", 9, 10909)


def test_gpusim_batch(native_dir, tmp_path):
    with counted(open_engine(str(native_dir / "libgpusim.so")), tmp_path,
                 call_ms="1", item_us="10") as engine:
        results = engine.exec_batch(["a", "b"], [{}, {"fail": "5"}], items(2))
        assert by_key(results[0]) == {"input": b"req-0", "batch": b"2"}
        assert isinstance(results[1], EngineError) and results[1].engine_code == 5
        assert by_key(engine.exec("c", {}, [Data("input", b"x")], [])) == \
            {"input": b"x", "batch": b"1"}
    counts = engine.counters()
    assert (counts["live_exec"], counts["batches"], counts["exec"]) == (0, 1, 3)


@pytest.mark.parametrize("kind", ["c", "py"])
def test_digits_batch_answers_as_one_at_a_time(kind, native_dir, py_examples):
    if kind == "py":
        pytest.importorskip("numpy")
    path = str(native_dir / "libdigits.so") if kind == "c" else \
        str(py_examples / "digits" / "wrapper.py")
    engine = open_engine(path)
    engine.init({})
    raw = HELDOUT.read_bytes()
    images = [raw[4 + i * 66: 4 + i * 66 + 64] for i in range(40)]
    data = [[Data("image", img, DataType.IMAGE)] for img in images]
    data[3] = [Data("image", b"short", DataType.IMAGE)]
    try:
        results = engine.exec_batch([f"t{i}" for i in range(40)], [{}] * 40, data)
        for i, result in enumerate(results):
            if i == 3:
                assert isinstance(result, EngineError) and result.engine_code == 50005
                continue
            alone = engine.exec(f"one{i}", {}, data[i], [])
            assert result == alone, i
    finally:
        engine.fini()
        engine.close()
