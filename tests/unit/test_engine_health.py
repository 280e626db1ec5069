"""EngineHealth (aiges.service.health): wrapperHealth polled off the loop, at most one check
in flight, the reason while it fails, a new generation healthy until its own check; and
PythonEngine.health()."""
from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

from aiges.config import Config
from aiges.metrics import Metrics
from aiges.python import load as load_python
from aiges.service.health import EngineHealth
from tests.helpers import metric, metric_samples

INTERVAL_S = 0.05


class Runner:
    async def call_aside(self, fn, *args):
        return await asyncio.to_thread(fn, *args)


class Engine:
    def __init__(self, answer=(True, "")):
        self.answer, self.calls, self.gate = answer, 0, threading.Event()
        self.gate.set()

    def health(self):
        self.calls += 1
        self.gate.wait()
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def generation(engine, number: int = 1):
    return SimpleNamespace(engine=engine, runner=Runner(), number=number)


def state_with(gen):
    return SimpleNamespace(config=Config(health_interval_s=INTERVAL_S),
                           metrics=Metrics(process=False), generation=gen)


async def polled(health: EngineHealth, times: int = 4) -> None:
    health.start()
    await asyncio.sleep(INTERVAL_S * times)


async def test_a_failing_check_gives_its_reason_until_it_recovers():
    engine = Engine((False, "CUDA error: device-side assert"))
    state = state_with(generation(engine))
    health = EngineHealth(state)
    await polled(health)
    assert health.failing(state.generation) == "CUDA error: device-side assert"
    got = metric_samples(state.metrics.exposition().decode())
    assert metric(got, "aiges_engine_healthy") == 0
    assert metric(got, "aiges_engine_health_failures_total") >= 2
    engine.answer = (True, "")
    await asyncio.sleep(INTERVAL_S * 3)
    assert health.failing(state.generation) is None
    assert metric(metric_samples(state.metrics.exposition().decode()), "aiges_engine_healthy") == 1
    await health.stop()


async def test_a_hung_check_is_a_failure_and_is_not_called_again():
    engine = Engine()
    engine.gate.clear()
    state = state_with(generation(engine))
    health = EngineHealth(state)
    await polled(health, 6)
    assert engine.calls == 1
    assert "did not return" in health.failing(state.generation)
    engine.gate.set()
    await asyncio.sleep(INTERVAL_S * 3)
    assert health.failing(state.generation) is None
    await health.stop()


async def test_an_exception_is_unhealthy_and_a_missing_entry_never_is():
    state = state_with(generation(Engine(RuntimeError("driver gone"))))
    health = EngineHealth(state)
    await polled(health)
    assert health.failing(state.generation) == "RuntimeError: driver gone"
    # A reload: the new generation is healthy until its own check fails; one without
    # a health entry stays healthy.
    state.generation = generation(SimpleNamespace(), 2)
    assert health.failing(state.generation) is None
    await asyncio.sleep(INTERVAL_S * 3)
    assert health.failing(state.generation) is None
    await health.stop()


async def test_interval_zero_never_starts():
    engine = Engine((False, "x"))
    state = state_with(generation(engine))
    state.config.health_interval_s = 0
    health = EngineHealth(state)
    await polled(health)
    assert engine.calls == 0 and health.failing(state.generation) is None
    await health.stop()


def test_python_engine_health(tmp_path):
    base = ("from aiges.sdk import WrapperBase\n"
            "class Wrapper(WrapperBase):\n"
            "    def wrapperOnceExec(self, params, reqData, usrTag='', persId=0):\n"
            "        return None\n")
    answers = {"none": "", "ok": "    def wrapperHealth(self):\n        return True, ''\n",
               "bad": "    def wrapperHealth(self):\n        return False, 'oom'\n",
               "odd": "    def wrapperHealth(self):\n        return 3\n",
               "raise": "    def wrapperHealth(self):\n        raise OSError('gone')\n"}
    got = {}
    for name, method in answers.items():
        path = tmp_path / name / "wrapper.py"
        path.parent.mkdir()
        path.write_text(base + method)
        got[name] = load_python(str(path)).health()
    assert got["none"] is None and got["ok"] == (True, "") and got["bad"] == (False, "oom")
    assert got["odd"][0] is False and got["raise"] == (False, "wrapperHealth raised OSError: gone")
