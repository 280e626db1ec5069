"""wrapperCancel through both engine kinds (the cffi boundary and a Python Wrapper): a
2 s echo call for a tag stops within 200 ms of cancel(tag) with the engine's error; an
engine without the entry says so (``cancellable``) and cancel() calls nothing."""
from __future__ import annotations

import threading
import time

import pytest

from aiges.errors import EngineError
from aiges.native import load as load_native
from aiges.python import load as load_python

PY_PLAIN = '''
from aiges.dto import Response
from aiges.sdk import WrapperBase


class Wrapper(WrapperBase):
    def wrapperOnceExec(self, params, reqData, usrTag="", persId=0):
        return Response(list=[])
'''


@pytest.fixture
def echo(echo_kinds):
    return echo_kinds


def test_a_cancelled_call_returns_early_with_the_engine_error(echo):
    assert echo.cancellable
    outcome = {}

    def run():
        try:
            echo.exec("tag-1", {"sid": "tag-1", "delay_ms": "2000"}, [], [])
        except EngineError as exc:
            outcome["error"] = exc
        outcome["at"] = time.monotonic()

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.1)
    assert echo.cancel("someone-else") == 0
    cancelled_at = time.monotonic()
    assert echo.cancel("tag-1") == 0
    thread.join(5)
    assert outcome["at"] - cancelled_at < 0.2
    assert outcome["error"].engine_code == 30007 and "cancel" in outcome["error"].text
    assert (echo.counters()["cancels"], echo.counters()["cancelled"]) == (2, 1)


def test_engines_without_the_entry(native_dir, tmp_path):
    gpusim = load_native(native_dir / "libgpusim.so")
    assert not gpusim.cancellable and gpusim.cancel("x") == 0
    gpusim.close()
    (tmp_path / "wrapper.py").write_text(PY_PLAIN)
    plain = load_python(tmp_path / "wrapper.py")
    assert not plain.cancellable and plain.cancel("x") == 0
