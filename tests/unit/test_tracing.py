"""aiges.tracing: when tracing is on, what is imported when it is off, and the Tracing
object's spans with an in-memory exporter (no collector, no server)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from time import perf_counter

import pytest
from multidict import CIMultiDict

from aiges.errors import AigesError, EngineError
from aiges.server.head import read_head
from aiges.tracing import wanted

REPO = Path(__file__).resolve().parents[2]
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT}-01"


@pytest.mark.parametrize("env, exporters", [
    ({}, None),
    ({"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"}, None),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, ["otlp"]),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ["otlp"]),
    ({"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
    ({"OTEL_TRACES_EXPORTER": " OTLP , console "}, ["otlp", "console"]),
    ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, None),
    ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, None),
    ({"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "otlp"}, ["otlp"]),
])
def test_the_environment_decides(env, exporters):
    assert wanted(env) == exporters


OFF_SCRIPT = """
import asyncio, sys
from aiohttp import web
from aiges.config import Config
from aiges.generation import open_engine
from aiges.server import create_app
from aiges.service import NATIVE, once
from aiges.server.state import STATE

async def main():
    app = create_app(Config(), open_engine(sys.argv[1]))
    runner = web.AppRunner(app)
    await runner.setup()
    state = app[STATE]
    assert state.tracing is None
    body = b'{"header":{},"parameter":{"svcName":{}},"payload":{"input":{"text":"aGk=","status":3}}}'
    answer = once.begin(state, NATIVE, body, "/v1/svcName", 0.0,
                        carrier={"traceparent": sys.argv[2]})
    if isinstance(answer, once.Pending):
        answer = await answer.finish()
    assert answer.status == 200, answer
    assert b"traceparent" not in answer.body  # the engine's params are untouched
    await runner.cleanup()

asyncio.run(main())
loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
assert not loaded, loaded
print("clean")
"""


def test_off_nothing_of_opentelemetry_is_imported():
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}  # no OTEL_* at all
    out = subprocess.run([sys.executable, "-c", OFF_SCRIPT,
                          str(REPO / "python_examples" / "echo" / "wrapper.py"), TRACEPARENT],
                         env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "clean" in out.stdout, out.stderr


def test_asked_for_but_not_installed_is_off_with_a_warning():
    script = ("import sys, logging\n"
              "logging.basicConfig(level=logging.INFO)\n"
              "sys.modules['opentelemetry'] = None\n"
              "from aiges.tracing import from_env\n"
              "assert from_env('svc', {'OTEL_TRACES_EXPORTER': 'console'}) is None\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "pip install 'aiges[otel]'" in out.stderr and "tracing off" in out.stderr


def test_the_fast_path_head_keeps_the_trace_headers():
    head = (b"POST /v1/svcName HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n"
            b"Traceparent: " + TRACEPARENT.encode() + b" \r\ntracestate: a=1\r\n\r\n{}")
    found = read_head(head, b"POST /v1/svcName HTTP/1.1\r\n")
    assert found.trace == {"traceparent": TRACEPARENT, "tracestate": "a=1"}
    plain = read_head(b"POST /v1/svcName HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
                      b"POST /v1/svcName HTTP/1.1\r\n")
    assert plain.trace is None


# -- the Tracing object --------------------------------------------------------------------
otel = pytest.importorskip("opentelemetry.sdk.trace")


@pytest.fixture
def traced():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from aiges.tracing.spans import Tracing

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield Tracing(provider, "svcName"), exporter
    provider.shutdown()


def spans(exporter) -> dict:
    return {s.name: s for s in exporter.get_finished_spans()}


@pytest.mark.parametrize("carrier", [
    {"traceparent": TRACEPARENT},                               # the fast path's
    CIMultiDict({"TraceParent": TRACEPARENT, "X-Other": "1"}),  # aiohttp's headers
    [("traceparent", TRACEPARENT), ("user-agent", "grpc")],     # gRPC metadata
])
def test_the_callers_context_from_any_carrier(traced, carrier):
    tracing, _ = traced
    from opentelemetry import trace
    ctx = trace.get_current_span(tracing.extract(carrier)).get_span_context()
    assert (f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}", ctx.is_remote) == (TRACE_ID, PARENT,
                                                                              True)


def test_a_once_request_and_its_engine_call(traced):
    tracing, exporter = traced
    tracing.start_once("s1", "/v1/svcName", perf_counter(), {"traceparent": TRACEPARENT})
    params = {"sid": "s1"}
    got = []
    tracing.engine_call("exec", "s1", lambda *args: got.append(args[1]) or [],
                        ("s1", params, [], []))
    tracing.end_once("s1", None)
    found = spans(exporter)
    request, call = found["POST /v1/svcName"], found["aiges.engine exec"]
    assert request.parent.span_id == int(PARENT, 16)
    assert request.context.trace_id == call.context.trace_id == int(TRACE_ID, 16)
    assert call.parent.span_id == request.context.span_id
    assert got[0]["traceparent"] == f"00-{TRACE_ID}-{call.context.span_id:016x}-01"
    assert params == {"sid": "s1"}  # the request's own params are not changed


def test_calls_of_no_request_are_not_traced(traced):
    tracing, exporter = traced
    assert tracing.engine_call("init", "", lambda cfg: 0, ({"a": "1"},)) == 0
    assert tracing.engine_call("exec", "gone", lambda *a: a[1], ("gone", {}, [], [])) == {}
    assert exporter.get_finished_spans() == ()


def test_failures_carry_the_codes(traced):
    tracing, exporter = traced
    tracing.start_once("s1", "/v1/svcName", perf_counter(), None)
    error = EngineError("exec", 7, "boom")
    with pytest.raises(EngineError):
        tracing.engine_call("exec", "s1", lambda *a: (_ for _ in ()).throw(error),
                            ("s1", {}, [], []))
    tracing.end_once("s1", error)
    found = spans(exporter)
    request, call = found["POST /v1/svcName"], found["aiges.engine exec"]
    assert request.parent is None  # no traceparent: a trace of its own
    assert not request.status.is_ok and request.status.description == "boom;code=7"
    assert request.attributes["aiges.code"] == 10909
    assert request.attributes["http.response.status_code"] == 500
    assert call.attributes["aiges.engine.code"] == 7 and not call.status.is_ok


class _Session:
    def __init__(self, sid):
        self.sid, self.writes, self.seq, self.first_result_s, self.error = sid, 2, 3, 0.01, None


def test_a_session_its_reads_and_queue_wait(traced):
    tracing, exporter = traced
    tracing.start_session("s2", "session_ws", {"traceparent": TRACEPARENT})
    token = tracing.current.set("s2")
    tracing.queue_waited(0.01)
    tracing.current.reset(token)
    tracing.queue_waited(0.01)  # no sid in this context: nothing
    created = []
    tracing.engine_call("create", "s2", lambda *a: created.append(a[1]) or "h",
                        ("s2", {"x": "1"}, [], None))
    assert tracing.engine_call("read", "s2", lambda h: [], ("h",)) == []
    assert tracing.engine_call("read", "s2", lambda h: ["item"], ("h",)) == ["item"]
    tracing.opened("s2", 0)
    tracing.end_session(_Session("s2"))
    finished = exporter.get_finished_spans()
    names = sorted(s.name for s in finished)
    assert names == ["aiges.engine create", "aiges.engine read", "aiges.queue_wait",
                     "aiges.session"]
    session = spans(exporter)["aiges.session"]
    assert session.attributes["aiges.engine.empty_reads"] == 1
    assert session.attributes["aiges.session.frames_in"] == 2
    assert session.attributes["aiges.instance"] == 0
    assert all(s.parent.span_id == session.context.span_id for s in finished if s is not session)
    assert "traceparent" in created[0]


def test_a_batch_call_gives_each_request_its_span(traced):
    tracing, exporter = traced
    for sid in ("a", "b"):
        tracing.start_once(sid, "/v1/svcName", perf_counter(), None)
    seen = []

    def batch(sids, params, data):
        seen.extend(params)
        return [[], EngineError("execBatch", 3, "bad item")]

    tracing.engine_call("exec_batch", "a,b", batch, (["a", "b"], [{}, {}], [[], []]))
    for sid in ("a", "b"):
        tracing.end_once(sid, None)
    calls = [s for s in exporter.get_finished_spans() if s.name == "aiges.engine execBatch"]
    assert len(calls) == 2 and [s.attributes["aiges.batch.size"] for s in calls] == [2, 2]
    assert [c.status.is_ok for c in calls] == [True, False]
    assert [p["traceparent"].split("-")[2] for p in seen] == [
        f"{c.context.span_id:016x}" for c in calls]


def test_closing_exports_what_is_left(traced):
    import asyncio
    tracing, exporter = traced
    tracing.start_once("s1", "/v1/svcName", perf_counter(), None)
    tracing.end_once("s1", AigesError(10110, "busy"))
    asyncio.run(tracing.close(1.0))
    assert [s.name for s in exporter.get_finished_spans()] == ["POST /v1/svcName"]


def test_an_unsampled_trace_makes_no_child_spans_but_reaches_the_engine(traced):
    tracing, exporter = traced
    unsampled = f"00-{TRACE_ID}-{PARENT}-00"
    tracing.start_once("s1", "/v1/svcName", perf_counter(), {"traceparent": unsampled})
    token = tracing.current.set("s1")
    tracing.queue_waited(0.01)
    tracing.current.reset(token)
    got = []
    tracing.engine_call("exec", "s1", lambda *args: got.append(args[1]), ("s1", {}, [], []))
    tracing.end_once("s1", None)
    assert exporter.get_finished_spans() == ()
    assert got[0]["traceparent"].startswith(f"00-{TRACE_ID}-")
    assert got[0]["traceparent"].endswith("-00")
