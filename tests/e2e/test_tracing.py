"""OpenTelemetry tracing against the real aiges-load: spans exported by OTLP/HTTP to an
in-process collector continue the caller's W3C trace (``traceparent``) and are
parented as docs/OPERATIONS.md ("Tracing") says, for once requests over the fast
path and over aiohttp's route, a queued one, a failed one, batched ones, and
sessions over WebSocket and the HTTP session API, and the Open Inference Protocol over
HTTP and gRPC. Without the OTEL environment nothing is traced and the engine's params
are untouched."""
from __future__ import annotations

import asyncio
import base64
import json
import secrets

import pytest

from tests.collector import Collector
from tests.helpers import metric, metric_samples

pytestmark = pytest.mark.e2e

REQUEST = "POST /v1/svcName"


@pytest.fixture
async def collector():
    collector = await Collector().start()
    yield collector
    await collector.stop()


def otel_env(collector: Collector) -> dict:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "50"}


def caller() -> tuple[str, str, str]:
    """(trace id, the caller's span id, its traceparent header)."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, span_id, f"00-{trace_id}-{span_id}-01"


def body(text: str, **params) -> str:
    return json.dumps({
        "header": {"appid": "test"}, "parameter": {"svcName": params},
        "payload": {"input": {"encoding": "utf8", "status": 3,
                              "text": base64.b64encode(text.encode()).decode()}}})


async def post(http, service, traceparent: str | None, chunked: bool = False, **params):
    """(status, answer); ``chunked``: a chunked body, which the fast path hands to aiohttp."""
    headers = {"traceparent": traceparent} if traceparent else {}
    async with http.post(service.url + "/v1/svcName", data=body("hi", **params).encode(),
                         headers=headers, chunked=chunked or None) as resp:
        return resp.status, await resp.json()


def engine_params(doc: dict) -> dict:
    return json.loads(doc["payload"]["params"]["text"])


def one(spans, name: str):
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, (name, [(s.name, s.parent_id) for s in spans])
    return found[0]


def named(name: str, count: int = 1):
    return lambda trace: sum(s.name == name for s in trace) >= count


async def trace_of(collector: Collector, trace_id: str, *checks) -> list:
    await collector.wait_for(lambda _: all(c(collector.trace(trace_id)) for c in checks))
    return collector.trace(trace_id)


def within(child, parent) -> bool:
    return parent.start_ns <= child.start_ns <= child.end_ns <= parent.end_ns


async def test_once_requests_continue_the_callers_trace(start, echo_engine, collector, http):
    service = start(echo_engine, env=otel_env(collector))
    assert f"tracing on: spans exported to {collector.url}/v1/traces" in service.log
    for chunked in (False, True):  # the fast path, then aiohttp's route
        trace_id, parent, traceparent = caller()
        status, doc = await post(http, service, traceparent, chunked=chunked)
        assert status == 200, doc
        trace = await trace_of(collector, trace_id, named(REQUEST), named("aiges.engine exec"))
        request = one(trace, REQUEST)
        assert (request.parent_id, request.kind, request.error) == (parent, 2, False)
        assert request.attributes["aiges.sid"] == doc["header"]["sid"]
        assert request.attributes["aiges.code"] == 0
        assert request.attributes["http.response.status_code"] == 200
        assert request.service == "svcName"
        engine = one(trace, "aiges.engine exec")
        assert engine.parent_id == request.span_id and within(engine, request)
        # The engine got its call span's traceparent, to parent spans of its own.
        assert engine_params(doc)["traceparent"] == f"00-{trace_id}-{engine.span_id}-01"


async def test_a_request_without_traceparent_starts_a_trace(start, native_dir, collector, http):
    service = start(str(native_dir / "libecho.so"), env=otel_env(collector))
    status, doc = await post(http, service, None)
    sid = doc["header"]["sid"]
    spans = await collector.wait_for(lambda spans: any(
        s.attributes.get("aiges.sid") == sid and s.name == REQUEST for s in spans))
    request = next(s for s in spans if s.name == REQUEST and s.attributes["aiges.sid"] == sid)
    assert request.parent_id == ""
    assert engine_params(doc)["traceparent"].split("-")[1] == request.trace_id


async def in_use(http, service, count: int) -> None:
    for _ in range(200):
        async with http.get(service.url + "/metrics") as resp:
            if metric(metric_samples(await resp.text()), "aiges_instances_in_use") == count:
                return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never {count} instances in use")


async def test_a_queued_and_a_failed_request(start, native_dir, collector, http):
    service = start(str(native_dir / "libecho.so"), "--instances", "1",
                    env=otel_env(collector))
    first, queued = caller(), caller()
    slow = asyncio.create_task(post(http, service, first[2], delay_ms=500))
    await in_use(http, service, 1)  # the slow one holds the only instance
    status, _ = await post(http, service, queued[2])
    assert status == 200 and (await slow)[0] == 200
    trace = await trace_of(collector, queued[0], named(REQUEST), named("aiges.queue_wait"),
                           named("aiges.engine exec"))
    request, wait = one(trace, REQUEST), one(trace, "aiges.queue_wait")
    assert wait.parent_id == request.span_id and within(wait, request)
    assert wait.end_ns - wait.start_ns > 50e6  # it waited for the slow one's instance
    assert wait.end_ns <= one(trace, "aiges.engine exec").start_ns
    assert not any(s.name == "aiges.queue_wait" for s in collector.trace(first[0]))

    failed = caller()
    status, doc = await post(http, service, failed[2], fail=7)
    assert status == 500 and doc["header"]["code"] == 10909
    trace = await trace_of(collector, failed[0], named(REQUEST), named("aiges.engine exec"))
    request, engine = one(trace, REQUEST), one(trace, "aiges.engine exec")
    assert request.error and request.attributes["aiges.code"] == 10909
    assert request.attributes["http.response.status_code"] == 500
    assert request.message == doc["header"]["message"]
    assert engine.error and engine.attributes["aiges.engine.code"] == 7


async def test_batched_requests_each_get_their_share(start, tmp_path, native_dir, collector,
                                                     http):
    config = tmp_path / "batch.toml"
    config.write_text("[batch]\nmaxSize = 4\nmaxDelayMs = 300\n")
    service = start(str(native_dir / "libecho.so"), "-c", str(config), env=otel_env(collector))
    callers = [caller() for _ in range(3)]
    answers = await asyncio.gather(*(post(http, service, c[2], show_batch="true")
                                     for c in callers))
    assert any(doc["payload"]["batch"]["text"] != "1" for _, doc in answers), answers
    for (trace_id, parent, _), (status, doc) in zip(callers, answers):
        assert status == 200
        trace = await trace_of(collector, trace_id, named(REQUEST),
                               named("aiges.engine execBatch"))
        request, batch = one(trace, REQUEST), one(trace, "aiges.engine execBatch")
        assert request.parent_id == parent and batch.parent_id == request.span_id
        assert batch.attributes["aiges.batch.size"] == int(doc["payload"]["batch"]["text"])
        assert engine_params(doc)["traceparent"] == f"00-{trace_id}-{batch.span_id}-01"


def frame(text: str, status: int) -> str:
    return json.dumps({"header": {"appid": "test"}, "parameter": {"svcName": {}},
                       "payload": {"input": {"encoding": "utf8", "status": status,
                                             "text": base64.b64encode(text.encode()).decode()}}})


def check_session(trace, parent: str, mode: str, writes: int):
    session = one(trace, "aiges.session")
    assert (session.parent_id, session.kind, session.error) == (parent, 2, False)
    assert session.attributes["aiges.session.mode"] == mode
    assert session.attributes["aiges.session.frames_in"] == writes
    assert session.attributes["aiges.code"] == 0
    calls = [s for s in trace if s.name.startswith("aiges.engine ")]
    names = [s.name.removeprefix("aiges.engine ") for s in calls]
    assert names.count("create") == names.count("destroy") == 1, names
    assert names.count("write") == writes, names
    for span in calls:
        assert span.parent_id == session.span_id and within(span, session), span
    return session


async def test_a_websocket_session_is_one_span_with_its_engine_calls(start, echo_engine,
                                                                     collector, http):
    service = start(echo_engine, env=otel_env(collector))
    trace_id, parent, traceparent = caller()
    async with http.ws_connect(service.url + "/v1/svcName",
                               headers={"traceparent": traceparent}) as ws:
        await ws.send_str(frame("a", 0))
        await ws.send_str(frame("b", 2))
        received = [json.loads(msg.data) async for msg in ws]
    assert received[-1]["header"]["status"] == 2, received
    trace = await trace_of(collector, trace_id, named("aiges.session"),
                           named("aiges.engine destroy"))
    session = check_session(trace, parent, "session_ws", 2)
    assert session.attributes["aiges.sid"] == received[0]["header"]["sid"]


async def test_an_http_api_session_is_traced_too(start, native_dir, collector, http):
    service = start(str(native_dir / "libecho.so"), env=otel_env(collector))
    trace_id, parent, traceparent = caller()
    async with http.post(service.url + "/v1/svcName/sessions", data=frame("a", 0),
                         headers={"traceparent": traceparent}) as resp:
        sid = (await resp.json())["header"]["sid"]
    async with http.post(f"{service.url}/v1/svcName/sessions/{sid}", data=frame("b", 2)) as resp:
        assert (await resp.json())["header"]["ended"] is True  # the last frame ended it
    trace = await trace_of(collector, trace_id, named("aiges.session"),
                           named("aiges.engine destroy"))
    check_session(trace, parent, "session_http", 2)


async def test_without_the_otel_environment_nothing_is_traced(start, native_dir, collector,
                                                              http):
    # An OTEL variable that asks for no exporter does not switch tracing on.
    service = start(str(native_dir / "libecho.so"), env={"OTEL_SERVICE_NAME": "x"})
    status, doc = await post(http, service, caller()[2])
    assert status == 200 and "traceparent" not in engine_params(doc)
    assert "tracing on" not in service.log
    disabled = start(str(native_dir / "libecho.so"),
                     env={**otel_env(collector), "OTEL_SDK_DISABLED": "true"})
    status, doc = await post(http, disabled, caller()[2])
    assert status == 200 and "traceparent" not in engine_params(doc)
    await asyncio.sleep(0.5)
    assert collector.posts == 0 and "tracing on" not in disabled.log


async def test_oip_requests_continue_the_callers_trace_over_http_and_grpc(
        start, native_dir, collector):
    """The Open Inference Protocol's transports hand the core their headers / metadata:
    tritonclient's infer over HTTP (/v2) and over gRPC continues the caller's trace."""
    import numpy as np
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    from tests.helpers import free_port

    grpc_port = free_port()
    service = start(str(native_dir / "libecho.so"), "--grpc-port", str(grpc_port),
                    env=otel_env(collector))
    for kind, url, route in (
            (httpclient, f"127.0.0.1:{service.port}", "/v2/models/svcName/infer"),
            (grpcclient, f"127.0.0.1:{grpc_port}",
             "/inference.GRPCInferenceService/ModelInfer")):
        client = kind.InferenceServerClient(url)
        try:
            tensor = kind.InferInput("text", [1], "BYTES")
            tensor.set_data_from_numpy(np.array([b"hi"], dtype=object))
            trace_id, parent, traceparent = caller()
            await asyncio.to_thread(client.infer, "svcName", [tensor],
                                    headers={"traceparent": traceparent})
        finally:
            client.close()
        trace = await trace_of(collector, trace_id, named("aiges.engine exec"))
        request = next(s for s in trace if s.parent_id == parent)
        assert request.kind == 2 and not request.error, (kind.__name__, request)
        engine = one(trace, "aiges.engine exec")
        assert engine.parent_id == request.span_id and within(engine, request)
        assert request.attributes["http.route"] == route, request.attributes
