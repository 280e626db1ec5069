"""Readiness that sees the engine: wrapperHealth (C) / WrapperBase.wrapperHealth (Python),
polled every [aiges] healthIntervalS off the event loop; /ready is 503 with the engine's
reason while it fails, and 200 again once it recovers. /health stays 200."""
from __future__ import annotations

import asyncio
import time

import pytest

from tests.e2e.test_once import body, post
from tests.helpers import metric, metric_samples

INTERVAL_S = 1
PY_FAULTY = '''
from aiges.dto import Response
from aiges.sdk import WrapperBase


class Wrapper(WrapperBase):
    """A Python engine with the faulty sample's health switch."""
    reason = ""

    def wrapperOnceExec(self, params, reqData, usrTag="", persId=0):
        if params.get("fault") == "unhealthy":
            self.reason = "pyfaulty: simulated device error"
        elif params.get("fault") == "healthy":
            self.reason = ""
        return Response(list=[])

    def wrapperHealth(self):
        return not self.reason, self.reason
'''


@pytest.fixture(params=["c", "py"])
def faulty_engine(request, native_dir, tmp_path) -> tuple[str, str]:
    """(engine path, the reason its unhealthy switch reports)."""
    if request.param == "c":
        return str(native_dir / "libfaulty.so"), "faulty: simulated device error"
    path = tmp_path / "pyfaulty" / "wrapper.py"
    path.parent.mkdir()
    path.write_text(PY_FAULTY)
    return str(path), "pyfaulty: simulated device error"


def config(tmp_path, interval: float = INTERVAL_S) -> str:
    path = tmp_path / "aiges.toml"
    path.write_text(f"[aiges]\nhealthIntervalS = {interval}\n")
    return str(path)


async def get(http, service, path: str) -> tuple[int, str]:
    async with http.get(service.url + path) as resp:
        return resp.status, await resp.text()


async def ready_within(http, service, status: int, seconds: float) -> tuple[int, dict, float]:
    """Polls /ready until it answers ``status`` (at most ``seconds``): its last answer
    and how long it took."""
    started = time.monotonic()
    while True:
        async with http.get(service.url + "/ready") as resp:
            got, doc = resp.status, await resp.json()
        waited = time.monotonic() - started
        if got == status or waited > seconds:
            return got, doc, waited
        await asyncio.sleep(0.05)


async def switch(http, service, fault: str) -> None:
    status, doc, _ = await post(http, service, body(params={"fault": fault}))
    assert status == 200, doc


async def test_unhealthy_switch_turns_ready_503_with_the_reason_and_back(
        http, start, tmp_path, faulty_engine):
    engine, reason = faulty_engine
    service = start(engine, "-c", config(tmp_path))
    assert (await get(http, service, "/ready"))[0] == 200
    await switch(http, service, "unhealthy")
    status, doc, waited = await ready_within(http, service, 503, INTERVAL_S + 1)
    assert status == 503 and waited <= INTERVAL_S + 1, (status, doc, waited)
    assert doc["status"] == "unhealthy" and reason in doc["detail"], doc
    assert (await get(http, service, "/health"))[0] == 200  # liveness is not readiness
    samples = metric_samples((await get(http, service, "/metrics"))[1])
    assert metric(samples, "aiges_engine_healthy") == 0
    assert metric(samples, "aiges_engine_health_failures_total") >= 1
    # Requests are still served: readiness only steers new traffic away.
    await switch(http, service, "healthy")
    status, doc, waited = await ready_within(http, service, 200, INTERVAL_S + 1)
    assert status == 200 and doc == {"status": "ready"}, (doc, waited)
    samples = metric_samples((await get(http, service, "/metrics"))[1])
    assert metric(samples, "aiges_engine_healthy") == 1
    assert service.terminate() == 0, service.log
    log = service.log
    # One line each way, however many polls failed meanwhile.
    assert log.count("engine unhealthy: /ready answers 503") == 1, log
    assert log.count("engine healthy again") == 1, log


async def test_an_engine_without_wrapper_health_stays_ready(http, start, tmp_path, native_dir):
    service = start(str(native_dir / "libupper.so"), "-c", config(tmp_path))
    await asyncio.sleep(INTERVAL_S * 2.5)
    assert (await get(http, service, "/ready"))[0] == 200
    samples = metric_samples((await get(http, service, "/metrics"))[1])
    assert metric(samples, "aiges_engine_healthy") == 1
    assert metric(samples, "aiges_engine_health_failures_total") == 0
    assert service.terminate() == 0, service.log


async def test_interval_zero_never_polls(http, start, tmp_path, native_dir):
    service = start(str(native_dir / "libfaulty.so"), "-c", config(tmp_path, 0))
    await switch(http, service, "unhealthy")
    await asyncio.sleep(1.5)
    assert (await get(http, service, "/ready"))[0] == 200
    assert service.terminate() == 0, service.log
