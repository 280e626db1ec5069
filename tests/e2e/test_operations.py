"""Operations against the real aiges-load (SPEC 5): /metrics, /ready, the access log and
the engine's meter/trace callbacks, with the C echo engine (it calls both on every exec)."""
from __future__ import annotations

import asyncio
import json
import time

import pytest

from tests.e2e.test_once import body, post
from tests.e2e.test_sessions import chunks
from tests.helpers import metric, metric_samples

pytestmark = pytest.mark.e2e


async def scrape(http, service) -> dict:
    async with http.get(service.url + "/metrics") as resp:
        assert resp.status == 200
        return metric_samples(await resp.text())


def log_lines(service) -> list[dict]:
    lines = []
    for line in service.log.splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            pass
    return lines


def wait_log(service, match, timeout: float = 5.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        found = [line for line in log_lines(service) if match(line)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)  # the subprocess writes its log on its own time


async def ws_session(http, service, texts: list[str]) -> list[dict]:
    received = []
    async with http.ws_connect(service.url + "/v1/svcName") as ws:
        for doc in chunks(texts):
            await ws.send_str(json.dumps(doc))
        async for msg in ws:
            received.append(json.loads(msg.data))
    return received


def delta(before: dict, after: dict, name: str, **labels) -> float:
    return metric(after, name, **labels) - metric(before, name, **labels)


@pytest.fixture
def echo(start, echo_so, echo_config):
    return start(echo_so, "-c", str(echo_config), "--instances", "3")


async def test_metrics_count_requests_sessions_and_engine_calls(http, echo):
    before = await scrape(http, echo)
    assert metric(before, "aiges_instances") == 3
    answers = [await post(http, echo, body(f"ok{i}")) for i in range(3)]
    answers += [await post(http, echo, b"{not json"),
                await post(http, echo, body(input={"text": "%%%"}))]
    answers += [await post(http, echo, body(params={"fail": 7})) for _ in range(2)]
    assert [a[0] for a in answers] == [200] * 3 + [400] * 2 + [500] * 2
    received = await ws_session(http, echo, ["a", "b", "c"])
    assert [f["header"]["code"] for f in received] == [0, 0, 0]

    # The session is counted when the server has let go of it, just after the close.
    deadline = time.monotonic() + 5
    while True:
        after = await scrape(http, echo)
        ws_count = delta(before, after, "aiges_requests_total", mode="session_ws", code="0")
        if ws_count or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)

    def d(name, **labels):
        return delta(before, after, name, **labels)

    assert d("aiges_requests_total", mode="once", code="0") == 3
    assert d("aiges_requests_total", mode="once", code="10000") == 1
    assert d("aiges_requests_total", mode="once", code="10001") == 1
    assert d("aiges_requests_total", mode="once", code="10909") == 2
    assert ws_count == 1
    assert d("aiges_request_duration_seconds_count", mode="once") == 7
    assert d("aiges_request_duration_seconds_count", mode="session_ws") == 1
    assert d("aiges_engine_call_duration_seconds_count", op="exec") == 5
    assert d("aiges_engine_call_duration_seconds_count", op="create") == 1
    assert d("aiges_engine_call_duration_seconds_count", op="write") == 3
    assert d("aiges_engine_call_duration_seconds_count", op="read") >= 3
    assert d("aiges_engine_call_duration_seconds_count", op="destroy") == 1
    assert d("aiges_engine_errors_total", op="exec", code="7") == 2
    # wrapperExec meters every call, the failing ones too; bad requests never reach it.
    assert d("aiges_engine_meter_total", key="echo_exec") == 5
    assert metric(after, "aiges_instances_in_use") == 0
    assert metric(after, "aiges_queue_depth") == 0
    assert metric(after, "aiges_sessions_active") == 0
    assert metric(after, "aiges_engine_call_duration_seconds_count", op="init") == 1
    # Where a session's time goes: its first result, and how many it had.
    assert d("aiges_session_first_result_seconds_count", mode="session_ws") == 1
    assert d("aiges_session_results_count", mode="session_ws") == 1
    assert d("aiges_session_results_sum", mode="session_ws") == 3
    assert d("aiges_session_first_result_seconds_sum", mode="session_ws") < 5


async def test_queue_wait_is_a_histogram_of_the_requests_that_waited(http, echo):
    """Three instances, six requests of 0.3 s at once: three wait about 0.3 s."""
    before = await scrape(http, echo)
    answers = await asyncio.gather(*(post(http, echo, body(params={"delay_ms": 300}))
                                     for _ in range(6)))
    assert [a[0] for a in answers] == [200] * 6
    after = await scrape(http, echo)
    assert delta(before, after, "aiges_queue_wait_seconds_count") == 3
    assert 0.6 < delta(before, after, "aiges_queue_wait_seconds_sum") < 3


async def test_log_lines_carry_the_sid(http, echo):
    sids = [(await post(http, echo, body(f"t{i}")))[1]["header"]["sid"] for i in range(3)]
    failed = (await post(http, echo, body(params={"fail": 9})))[1]["header"]["sid"]
    await ws_session(http, echo, ["x", "y"])
    sessions = wait_log(echo, lambda line: line.get("event") == "session")
    lines = log_lines(echo)
    traces = {line["sid"] for line in lines
              if line.get("event") == "engine trace" and line.get("value") == "exec"}
    assert set(sids) | {failed} <= traces
    access = {line["sid"]: line for line in lines if line.get("logger") == "aiges.access"}
    for sid in sids:
        assert access[sid]["mode"] == "once" and access[sid]["code"] == 0
        assert access[sid]["route"] == "/v1/svcName" and access[sid]["latency_ms"] > 0
    assert access[failed]["code"] == 10909 and access[failed]["error"].endswith(";code=9")
    (session,) = sessions
    assert (session["mode"], session["code"], session["frames_in"], session["frames_out"]) \
        == ("session_ws", 0, 2, 2)
    assert session["duration_ms"] > 0


async def test_meter_and_trace_outside_a_request_get_sid_dash(http, echo):
    before = await scrape(http, echo)
    status, out, _ = await post(http, echo, body(params={"late_ctrl_ms": 100}))
    assert status == 200
    late = wait_log(echo, lambda line: line.get("value") == "late_null")
    lines = [line for line in log_lines(echo)
             if line.get("event") == "engine trace" and line["value"].startswith("late")]
    assert {(line["sid"], line["value"]) for line in lines} == {("-", "late"),
                                                                ("-", "late_null")}
    assert late and late[0]["level"] == "info"
    after = await scrape(http, echo)
    assert delta(before, after, "aiges_engine_meter_total", key="echo_late") == 1
    assert (await post(http, echo, body("still up")))[0] == 200


async def test_no_access_log(http, start, echo_so):
    service = start(echo_so, "--no-access-log")
    assert (await post(http, service, body()))[0] == 200
    assert (await post(http, service, b"{bad"))[0] == 400
    await ws_session(http, service, ["a"])
    wait_log(service, lambda line: line.get("event") == "engine trace")
    lines = log_lines(service)
    assert not [line for line in lines if line.get("logger") == "aiges.access"]
    assert [line for line in lines if line.get("event") == "engine trace"]


async def test_ready_then_not_ready_from_the_start_of_shutdown(http, echo):
    async with http.get(echo.url + "/ready") as resp:
        assert resp.status == 200 and await resp.json() == {"status": "ready"}
    async with http.get(echo.url + "/health") as resp:
        assert resp.status == 200
    slow = asyncio.create_task(post(http, echo, body("slow", params={"delay_ms": 800})))
    await asyncio.sleep(0.2)
    echo.proc.send_signal(15)
    status, out, _ = await slow
    assert status == 200 and out["payload"]["input"]["text"] == "slow"
    assert echo.wait_exit() == 0
    events = [line.get("event") for line in log_lines(echo)]
    # Readiness dropped while the slow request was still in flight.
    drain = events.index("shutting down: not ready, draining in-flight requests")
    answered = next(i for i, line in enumerate(log_lines(echo))
                    if line.get("sid") == out["header"]["sid"] and line.get("event") == "request")
    assert drain < answered
