"""Operations without a shared library: metrics, readiness, the access log, usrTag lookup.

The app-level tests serve the Python echo wrapper through aiohttp's test client.
"""
from __future__ import annotations

import base64
import json
import logging
import threading
from pathlib import Path

import pytest
from aiohttp.test_utils import make_mocked_request

from aiges.cli import load_config, parser
from aiges.config import Config
from aiges.metrics import Metrics
from aiges.native.library import _Tags
from aiges.python import load as load_python
from aiges.server import create_app
from aiges.server.ops import ready
from aiges.server.state import STATE
from tests.helpers import metric, metric_samples

ECHO_PY = Path(__file__).resolve().parents[2] / "python_examples" / "echo" / "wrapper.py"


def samples(metrics: Metrics) -> dict:
    return metric_samples(metrics.exposition().decode())


def test_metrics_count_by_label():
    m = Metrics(process=False)
    m.request("once", 0, 0.003)
    m.request("once", 0, 0.2)
    m.request("once", 10909, 0.5)
    m.request("session_ws", 0, 42.0)
    m.engine_call("exec", 0.0004)
    m.engine_error("exec", 7)
    m.meter("echo_exec", 3)
    m.meter("echo_exec", 1)
    got = samples(m)
    assert metric(got, "aiges_requests_total", mode="once", code="0") == 2
    assert metric(got, "aiges_requests_total", mode="once", code="10909") == 1
    assert metric(got, "aiges_request_duration_seconds_count", mode="once") == 3
    assert metric(got, "aiges_request_duration_seconds_bucket", mode="once", le="0.005") == 1
    assert metric(got, "aiges_request_duration_seconds_bucket", mode="session_ws", le="60.0") == 1
    assert metric(got, "aiges_engine_call_duration_seconds_count", op="exec") == 1
    assert metric(got, "aiges_engine_errors_total", op="exec", code="7") == 1
    assert metric(got, "aiges_engine_meter_total", key="echo_exec") == 4


def test_metrics_updated_from_many_threads_lose_nothing():
    """Request and engine-call metrics are kept per thread without a lock and summed
    at scrape time."""
    m = Metrics(process=False)

    def work():
        for _ in range(2000):
            m.request("once", 0, 0.0001)
            m.engine_call("exec", 0.00001)
            m.meter("k", 1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    work()
    for t in threads:
        t.join()
    got = samples(m)
    assert metric(got, "aiges_requests_total", mode="once", code="0") == 10000
    assert metric(got, "aiges_request_duration_seconds_count", mode="once") == 10000
    assert metric(got, "aiges_request_duration_seconds_bucket", mode="once", le="0.001") == 10000
    assert metric(got, "aiges_engine_call_duration_seconds_count", op="exec") == 10000
    assert metric(got, "aiges_engine_meter_total", key="k") == 10000
    assert abs(metric(got, "aiges_request_duration_seconds_sum", mode="once") - 1.0) < 1e-6


def test_each_metrics_has_its_own_registry():
    a, b = Metrics(process=False), Metrics(process=False)
    a.meter("k", 1)
    assert metric(samples(a), "aiges_engine_meter_total", key="k") == 1
    assert metric(samples(b), "aiges_engine_meter_total", key="k") == 0


def test_engine_chosen_labels_are_capped_and_negative_meters_ignored():
    m = Metrics(process=False)
    for i in range(250):
        m.meter(f"key{i}", 1)
    m.meter("key0", -5)
    got = samples(m)
    assert metric(got, "aiges_engine_meter_total", key="key0") == 1
    assert metric(got, "aiges_engine_meter_total", key="other") == 50
    assert len([k for k in got if k[0] == "aiges_engine_meter_total"]) == 201


def test_tags_map_addresses_to_sids_without_reading_memory():
    tags = _Tags(retired=4)
    buf, addr = tags.open("sid-1")
    assert tags.sid(addr) == "sid-1"
    assert tags.claim(addr) is None          # no result handler: not a callback tag
    assert tags.sid(addr) == "sid-1"
    tags.close(addr)
    assert tags.sid(addr) == "-" and tags.sid(0) == "-" and tags.sid(12345) == "-"


def test_access_log_is_on_by_default_and_flags_switch_it():
    assert Config().access_log is True
    assert load_config(parser().parse_args(["x.so"])).access_log is True
    assert load_config(parser().parse_args(["x.so", "--no-access-log"])).access_log is False
    assert load_config(parser().parse_args(["x.so", "--access-log"])).access_log is True


async def test_ready_is_503_starting_before_init():
    app = create_app(Config(instances=1), load_python(ECHO_PY))  # not started: no init yet
    response = await ready(make_mocked_request("GET", "/ready", app=app))
    assert response.status == 503 and json.loads(response.body) == {"status": "starting"}


def once_doc(text: str = "hi", **params) -> dict:
    return {"parameter": {"svcName": params},
            "payload": {"input": {"status": 3, "text": base64.b64encode(text.encode()).decode()}}}


@pytest.fixture
async def served(aiohttp_client):
    async def serve(**config):
        app = create_app(Config(instances=2, **config), load_python(ECHO_PY))
        return await aiohttp_client(app)
    return serve


async def scrape(client) -> dict:
    resp = await client.get("/metrics")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
    return metric_samples(await resp.text())


async def test_ready_health_and_drain(served):
    client = await served()
    resp = await client.get("/ready")
    assert resp.status == 200 and await resp.json() == {"status": "ready"}
    client.app[STATE].lifecycle.begin_drain()
    resp = await client.get("/ready")
    assert resp.status == 503 and await resp.json() == {"status": "draining"}
    assert (await client.get("/health")).status == 200


async def test_once_requests_count_by_code(served):
    client = await served()
    before = await scrape(client)
    assert metric(before, "aiges_instances") == 2
    assert (await client.post("/v1/svcName", json=once_doc())).status == 200
    assert (await client.post("/v1/svcName", data=b"{no")).status == 400
    assert (await client.post("/v1/svcName", json=once_doc(fail=5))).status == 500
    after = await scrape(client)
    for code, n in (("0", 1), ("10000", 1), ("10909", 1)):
        assert metric(after, "aiges_requests_total", mode="once", code=code) == n
    assert metric(after, "aiges_request_duration_seconds_count", mode="once") == 3
    assert metric(after, "aiges_engine_errors_total", op="exec", code="5") == 1
    assert metric(after, "aiges_engine_call_duration_seconds_count", op="exec") == 2
    assert metric(after, "aiges_engine_call_duration_seconds_count", op="init") == 1
    assert metric(after, "aiges_instances_in_use") == 0


async def test_http_sessions_count_at_their_end(served):
    client = await served()
    base = "/v1/svcName/sessions"
    frame = {"payload": {"input": {"status": 0, "text": base64.b64encode(b"a").decode()}}}
    out = await (await client.post(base, json=frame)).json()
    sid = out["header"]["sid"]
    assert metric(await scrape(client), "aiges_sessions_active") == 1
    frame["payload"]["input"]["status"] = 2
    out = await (await client.post(f"{base}/{sid}", json=frame)).json()
    for _ in range(10):  # the end is reported once wrapperDestroy has returned
        if out["header"]["ended"]:
            break
        out = await (await client.get(f"{base}/{sid}", params={"wait_ms": "500"})).json()
    assert out["header"]["ended"] is True
    assert (await client.post(base, data=b"{no")).status == 400
    got = await scrape(client)
    assert metric(got, "aiges_requests_total", mode="session_http", code="0") == 1
    assert metric(got, "aiges_requests_total", mode="session_http", code="10000") == 1
    assert metric(got, "aiges_sessions_active") == 0
    assert metric(got, "aiges_engine_call_duration_seconds_count", op="write") == 2


@pytest.mark.parametrize("on", [True, False])
async def test_access_log_line_per_request(served, caplog, on):
    client = await served(access_log=on)
    with caplog.at_level(logging.INFO, logger="aiges.access"):
        resp = await client.post("/v1/svcName", json=once_doc())
        sid = (await resp.json())["header"]["sid"]
    lines = [r for r in caplog.records if r.name == "aiges.access"]
    if not on:
        assert lines == []
        return
    (line,) = lines
    assert (line.sid, line.route, line.mode, line.code) == (sid, "/v1/svcName", "once", 0)
    assert line.latency_ms > 0
