"""Work stops when the client leaves, all the way into the engine (wrapperCancel, an aiges
extension): a client that leaves a 2 s engine call after 100 ms makes the echo engine
(C and Python) stop within 200 ms, and its only instance answers the next request at
once; through the fast HTTP path and aiohttp's route, for a WebSocket session whose
client leaves mid-write, and for a once request whose timeout fires."""
from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

from tests.e2e.test_once import body, post
from tests.helpers import metric, metric_samples, read_counters

pytestmark = pytest.mark.e2e

LEAVE_S = 0.1   # the client leaves this long after sending
STOP_S = 0.2    # the engine must have stopped this long after that
CALL_MS = 2000  # what the call would take if nobody stopped it


@pytest.fixture
def serve(start, tmp_path, counters_file):
    """serve(engine, fast, aiges_extra) -> one instance, echo counters in counters_file."""

    def _serve(engine: str, fast: bool = True, extra: str = ""):
        path = tmp_path / "aiges.toml"
        path.write_text(f"[aiges]\nfastHttp = {str(fast).lower()}\n{extra}\n[fc]\nmax = 1\n"
                        f'[wrapper]\ncounters_file = "{counters_file}"\n')
        return start(engine, "-c", str(path), "--no-access-log")

    return _serve


async def stopped_within(counters_file, since: float, limit_s: float, cancelled: int = 1) -> float:
    """Seconds from ``since`` until the engine reports ``cancelled`` calls cut short;
    fails past ``limit_s`` (the counters file is polled: the engine writes it at once)."""
    while True:
        elapsed = time.monotonic() - since
        if read_counters(counters_file).get("cancelled", 0) >= cancelled:
            return elapsed
        assert elapsed < limit_s, f"not stopped {limit_s}s after: {read_counters(counters_file)}"
        await asyncio.sleep(0.005)


async def answered_at_once(http, service) -> None:
    started = time.monotonic()
    status, doc, _ = await post(http, service, body("next"))
    assert status == 200 and doc["header"]["code"] == 0, doc
    assert time.monotonic() - started < 1.0  # not behind the 2 s call


async def leave_once_call(port: int) -> float:
    """A raw client sends a 2 s echo request and closes its socket 100 ms later; the
    time it left."""
    data = json.dumps(body(params={"delay_ms": CALL_MS})).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /v1/svcName HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s"
                 % (len(data), data))
    await writer.drain()
    await asyncio.sleep(LEAVE_S)
    writer.close()
    return time.monotonic()


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "aiohttp"])
async def test_client_that_leaves_stops_the_engine_call(serve, echo_engine, counters_file,
                                                        http, fast):
    service = serve(echo_engine, fast)
    left = await leave_once_call(service.port)
    took = await stopped_within(counters_file, left, STOP_S)
    await answered_at_once(http, service)
    counters = read_counters(counters_file)
    assert (counters["cancels"], counters["cancelled"]) == (1, 1), counters
    async with http.get(service.url + "/metrics") as resp:
        samples = metric_samples(await resp.text())
    assert metric(samples, "aiges_engine_cancels_total", reason="client_left") == 1
    assert "Traceback" not in service.log
    print(f"stopped {took * 1000:.0f} ms after the client left")


async def test_client_that_stays_is_answered_and_nothing_is_cancelled(serve, echo_engine,
                                                                      counters_file, http):
    service = serve(echo_engine)
    status, doc, _ = await post(http, service, body(params={"delay_ms": 200}))
    assert status == 200 and doc["header"]["code"] == 0
    assert read_counters(counters_file)["cancels"] == 0


async def test_once_timeout_cancels_the_call(serve, echo_engine, counters_file, http):
    service = serve(echo_engine, extra="onceTimeout = 300")
    started = time.monotonic()
    status, doc, _ = await post(http, service, body(params={"delay_ms": CALL_MS}))
    assert doc["header"]["code"] == 10102, doc
    await stopped_within(counters_file, started, 0.3 + STOP_S)
    await answered_at_once(http, service)
    async with http.get(service.url + "/metrics") as resp:
        samples = metric_samples(await resp.text())
    assert metric(samples, "aiges_engine_cancels_total", reason="timeout") == 1


async def leave_session_mid_write(service, params: dict, key: str = "input") -> float:
    """A WebSocket client opens a session whose first write takes 2 s and drops the
    connection 100 ms later, without a closing handshake; the time it left."""
    frame = body(params=params)
    frame["header"]["status"] = 0
    frame["payload"] = {key: {**frame["payload"]["input"], "status": 0}}
    async with aiohttp.ClientSession() as client:
        ws = await client.ws_connect(service.url.replace("http", "ws") + "/v1/svcName")
        await ws.send_str(json.dumps(frame))
        await asyncio.sleep(LEAVE_S)
        ws._response.connection.transport.close()
        return time.monotonic()


async def destroyed(counters_file) -> None:
    """The session's handle is destroyed once its write has returned."""
    deadline = time.monotonic() + 2
    while read_counters(counters_file)["live_sessions"]:
        assert time.monotonic() < deadline, read_counters(counters_file)
        await asyncio.sleep(0.02)


async def test_websocket_client_that_leaves_mid_write_stops_it(serve, echo_engine,
                                                               counters_file, http):
    service = serve(echo_engine)
    left = await leave_session_mid_write(service, {"write_delay_ms": CALL_MS})
    await stopped_within(counters_file, left, STOP_S)
    await answered_at_once(http, service)
    await destroyed(counters_file)
    assert "session failed" not in service.log  # the cancelled write is the expected end
    async with http.get(service.url + "/metrics") as resp:
        samples = metric_samples(await resp.text())
    # Counted as before cancellation existed: a session whose client left (10003).
    assert metric(samples, "aiges_requests_total", mode="session_ws", code="10003") == 1
    assert metric(samples, "aiges_engine_cancels_total", reason="client_left") == 1


async def test_stream_session_that_loses_its_client_stops_mid_chunk(serve, stream_engine,
                                                                     counters_file, http):
    service = serve(stream_engine)
    left = await leave_session_mid_write(service, {"chunk_delay_ms": CALL_MS}, key="text")
    await stopped_within(counters_file, left, STOP_S)
    await destroyed(counters_file)
    async with http.get(service.url + "/metrics") as resp:
        samples = metric_samples(await resp.text())
    assert metric(samples, "aiges_engine_cancels_total", reason="client_left") == 1


async def test_async_engine_call_is_cancelled_too(serve, echo_so, counters_file, http):
    """--async-mode: wrapperExecAsync's work stops early and its callback is ignored."""
    service = serve(echo_so, extra="asyncMode = true")
    left = await leave_once_call(service.port)
    await stopped_within(counters_file, left, STOP_S)
    await answered_at_once(http, service)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "aiohttp"])
async def test_shutdown_cancels_calls_still_running_when_the_drain_time_ends(
        serve, echo_engine, counters_file, fast):
    """SIGTERM with a 10 s call running and a 500 ms drain time: at its end the call is
    cancelled, returns, and the service stops cleanly (exit 0, wrapperFini called)."""
    service = serve(echo_engine, fast, extra="drainTimeout = 500")
    data = json.dumps(body(params={"delay_ms": 10_000})).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    writer.write(b"POST /v1/svcName HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s"
                 % (len(data), data))
    await writer.drain()
    await asyncio.sleep(LEAVE_S)
    started = time.monotonic()
    code = await asyncio.to_thread(service.terminate)
    assert code == 0, service.log
    assert time.monotonic() - started < 5
    counters = read_counters(counters_file)
    assert (counters["cancelled"], counters["fini"], counters["live_exec"]) == (1, 1, 0), counters
    assert "service stopped before the answer" in service.log  # counted as reason="shutdown"
    writer.close()

