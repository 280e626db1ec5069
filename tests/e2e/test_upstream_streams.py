"""Streaming with upstream-style engines (issue 15): the mock engine of each kind returns
a result on EVERY wrapperRead, as upstream's own test engine does, with switches for
never ending, empty reads and calls that hang for good.

What is proven: upstream's read policy (one read per write, read until End after the
last input, a bounded wait for results), that no engine behaviour stalls the service
(/health, once requests and other sessions answer meanwhile), that memory stays
bounded, that SIGTERM always ends the process, and the wire details upstream clients
see (ack frame, seq from 1, /ping).
"""
from __future__ import annotations

import asyncio
import base64
import json
import signal
import time

import aiohttp
import pytest

from tests.helpers import read_counters, rss_mb

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["c", "py"])
def mock_engine(request, native_dir, py_examples) -> str:
    if request.param == "c":
        return str(native_dir / "libmock.so")
    return str(py_examples / "mock" / "wrapper.py")


@pytest.fixture
def mock(balanced, mock_engine):
    """mock(toml_extra, *flags): the mock engine of each kind, checked balanced at the end
    (SIGTERM, exit 0 within drain + 5 s, create == destroy, fini once)."""
    return lambda extra="", *flags: balanced(mock_engine, extra, *flags)


@pytest.fixture
def counters_config(tmp_path, counters_file):
    def write(extra: str = "") -> str:
        path = tmp_path / "aiges.toml"
        path.write_text(f'{extra}\n[wrapper]\ncounters_file = "{counters_file}"\n')
        return str(path)
    return write


def doc(text: str | None, status: int, **params) -> dict:
    out: dict = {"header": {"appid": "test"}, "parameter": {"svcName": params}}
    if text is not None:
        out["payload"] = {"input": {"encoding": "utf8", "status": status,
                                    "text": base64.b64encode(text.encode()).decode()}}
    return out


def three_frames(**params) -> list[dict]:
    return [doc("aaaa", 0, **params), doc("bbbb", 1), doc("cccc", 2)]


async def converse(http, url, frames, limit: int = 1000000):
    """Sends the frames, then collects server frames until the server closes."""
    received = []
    async with http.ws_connect(url + "/v1/svcName") as ws:
        for frame in frames:
            await ws.send_str(json.dumps(frame))
        async for msg in ws:
            received.append(json.loads(msg.data))
            if len(received) >= limit:
                break
        return received, ws.close_code


def statuses(received) -> list[int]:
    return [f["header"]["status"] for f in received if "payload" in f]


async def health_meanwhile(http, url, task) -> int:
    """Polls /health every 50 ms while ``task`` runs; each answer must come within 1 s."""
    answers = 0
    while not task.done():
        async with http.get(url + "/health", timeout=aiohttp.ClientTimeout(total=1)) as resp:
            assert resp.status == 200
        answers += 1
        await asyncio.sleep(0.05)
    return answers


# -- the read policy --------------------------------------------------------------------------
async def test_three_frames_under_the_default_config(http, mock):
    service = mock()
    task = asyncio.ensure_future(converse(http, service.url, three_frames()))
    assert await health_meanwhile(http, service.url, task) >= 1
    received, code = task.result()
    # One read after each intermediate write, reads until End after the last one.
    assert statuses(received) == [0, 1, 2] and code == aiohttp.WSCloseCode.OK
    assert [f["payload"]["result"]["seq"] for f in received] == ["1", "2", "3"]
    assert received[-1]["payload"]["result"]["text"] == "mock result after 12 bytes"


async def test_without_realtime_reads_start_at_the_last_input(http, mock):
    service = mock("[aiges]\nrealTimeRlt = false")
    received, code = await converse(http, service.url, three_frames())
    # The first frame gets upstream's ack (no payload, status 0); then only the final.
    assert received[0] == {"header": {"code": 0, "message": "success",
                                      "sid": received[0]["header"]["sid"], "status": 0}}
    assert statuses(received) == [2] and code == aiohttp.WSCloseCode.OK


async def test_empty_reads_after_the_last_input_are_waited_for(http, mock):
    service = mock()
    received, _ = await converse(http, service.url, three_frames(empty_reads=5))
    assert statuses(received) == [0, 1, 2]


async def test_no_final_result_within_the_read_wait_is_10114(http, mock):
    service = mock("[aiges]\nreadWait = 300")
    started = time.monotonic()
    received, _ = await converse(http, service.url, three_frames(empty_reads=1000000))
    assert statuses(received) == [0, 1]
    assert received[-1]["header"]["code"] == 10114
    assert "readWait" in received[-1]["header"]["message"]
    assert time.monotonic() - started < 5


async def test_http_session_api_follows_the_same_policy(http, mock):
    service = mock()
    base = service.url + "/v1/svcName/sessions"
    async with http.post(base, json=doc("aaaa", 0)) as resp:
        first = await resp.json()
    sid = first["header"]["sid"]
    assert [f["header"]["status"] for f in first["results"]] == [0]
    async with http.post(f"{base}/{sid}", json=doc("bb", 2)) as resp:
        answer = await resp.json()
    # The final result and the end come with the answer to the last write.
    assert answer["header"]["ended"] is True
    assert [f["header"]["status"] for f in answer["results"]] == [2]


async def test_pushed_results_need_no_async_flag(http, mock):
    # The engine pushes through the callback of wrapperCreate; asyncMode is off.
    service = mock()
    received, code = await converse(http, service.url, three_frames(push="1"))
    assert statuses(received) == [0, 1, 2] and code == aiohttp.WSCloseCode.OK


async def test_pushed_results_with_the_async_flag(http, mock):
    service = mock("", "--async-mode")
    received, code = await converse(http, service.url, three_frames(push="1"))
    assert statuses(received) == [0, 1, 2] and code == aiohttp.WSCloseCode.OK


# -- nothing stalls the service ---------------------------------------------------------------
async def test_an_engine_that_never_ends_is_ended_by_the_session_timeout(http, mock):
    service = mock("[ws]\nsessionTimeout = 2")
    rss_before = rss_mb(service.proc.pid)
    task = asyncio.ensure_future(converse(http, service.url, three_frames(never_end="1")))
    await asyncio.sleep(0.3)
    # Meanwhile: health, a once request and another session are answered.
    async with http.post(service.url + "/v1/svcName", json=doc("x", 3)) as resp:
        assert resp.status == 200
    other, _ = await converse(http, service.url, three_frames())
    assert statuses(other) == [0, 1, 2]
    assert await health_meanwhile(http, service.url, task) >= 5
    received, _ = task.result()
    assert len(received) > 3  # data on every read, until the time limit
    assert received[-1]["header"]["code"] == 10114
    assert "longer than 2s" in received[-1]["header"]["message"]
    assert rss_mb(service.proc.pid) - rss_before < 60


async def test_a_client_that_never_reads_costs_no_memory(http, mock):
    service = mock("[ws]\nsessionTimeout = 3")
    rss_before = rss_mb(service.proc.pid)
    async with http.ws_connect(service.url + "/v1/svcName") as ws:
        for frame in three_frames(never_end="1"):
            await ws.send_str(json.dumps(frame))
        await asyncio.sleep(2)  # the engine has data on every read; nobody takes it
        async with http.get(service.url + "/health") as resp:
            assert resp.status == 200
        assert rss_mb(service.proc.pid) - rss_before < 60


async def test_sessions_keep_an_instance_for_once_requests(http, mock, counters_config):
    service = mock("[fc]\nmax = 2\nwait = 100")
    async with http.ws_connect(service.url + "/v1/svcName") as first:
        await first.send_str(json.dumps(doc("a", 0)))
        await first.receive_json()
        refused, _ = await converse(http, service.url, [doc("b", 0)])
        assert [f["header"]["code"] for f in refused] == [10110]
        async with http.post(service.url + "/v1/svcName", json=doc("x", 3)) as resp:
            assert resp.status == 200
        await first.send_str(json.dumps(doc("z", 2)))
        assert (await first.receive_json())["header"]["status"] == 2


async def test_max_sessions_zero_lets_sessions_take_every_instance(http, mock):
    service = mock("[fc]\nmax = 2\nwait = 100\nmaxSessions = 0")
    async with http.ws_connect(service.url + "/v1/svcName") as first:
        await first.send_str(json.dumps(doc("a", 0)))
        await first.receive_json()
        second, _ = await converse(http, service.url, three_frames())
        assert statuses(second) == [0, 1, 2]
        await first.send_str(json.dumps(doc("z", 2)))
        assert (await first.receive_json())["header"]["status"] == 2


# -- the transports' share of a session -------------------------------------------------------
async def test_a_websocket_sid_is_unknown_to_the_http_session_api(http, mock):
    service = mock()
    async with http.ws_connect(service.url + "/v1/svcName") as ws:
        await ws.send_str(json.dumps(doc("a", 0)))
        sid = (await ws.receive_json())["header"]["sid"]
        async with http.get(f"{service.url}/v1/svcName/sessions/{sid}") as resp:
            assert resp.status == 404 and (await resp.json())["header"]["code"] == 10008
        async with http.delete(f"{service.url}/v1/svcName/sessions/{sid}") as resp:
            assert resp.status == 404
        await ws.send_str(json.dumps(doc("z", 2)))
        assert (await ws.receive_json())["header"]["status"] == 2


async def test_ping_echoes_like_upstream(http, mock):
    service = mock()
    async with http.ws_connect(service.url + "/ping") as ws:
        await ws.send_str("ping")
        assert await ws.receive_str() == "pong"
        await ws.send_str("hello")
        assert await ws.receive_str() == "hello"


# -- SIGTERM always ends the process ----------------------------------------------------------
def stop_in_time(service, drain_s: float) -> tuple[int, float]:
    started = time.monotonic()
    service.proc.send_signal(signal.SIGTERM)
    rc = service.wait_exit(drain_s + 5)
    return rc, time.monotonic() - started


@pytest.mark.parametrize("hang", ["read", "write"])
async def test_sigterm_ends_a_session_call_stuck_for_good(http, start, mock_engine,
                                                          counters_config, hang):
    service = start(mock_engine, "-c", counters_config("[aiges]\ndrainTimeout = 1000"))
    async with http.ws_connect(service.url + "/v1/svcName") as ws:
        await ws.send_str(json.dumps(doc("a", 0, hang=hang)))
        await asyncio.sleep(0.3)
        rc, seconds = stop_in_time(service, 1.0)
    assert rc != 0 and seconds < 6, (rc, seconds)
    log = service.log
    assert "engine calls still running" in log or "did not finish in time" in log
    assert f'"op":"{hang}"' in log


async def test_sigterm_ends_a_once_call_stuck_for_good(http, start, mock_engine,
                                                      counters_config):
    service = start(mock_engine, "-c", counters_config("[aiges]\ndrainTimeout = 1000"))
    request = asyncio.ensure_future(http.post(service.url + "/v1/svcName",
                                              json=doc("x", 3, hang="exec")))
    await asyncio.sleep(0.5)
    rc, seconds = stop_in_time(service, 1.0)
    assert rc != 0 and seconds < 6, (rc, seconds)
    assert '"op":"exec"' in service.log
    request.cancel()


async def test_sigterm_ends_a_call_stuck_on_the_event_loop(http, start, mock_engine,
                                                          counters_config):
    # Fast reads run inline on the loop once measured; one that then hangs for good
    # blocks the loop, and /health with it: the signal is still heard.
    service = start(mock_engine, "-c", counters_config("[aiges]\ndrainTimeout = 1000"))
    for _ in range(30):  # enough fast reads and writes to be measured inline
        received, _ = await converse(http, service.url, three_frames())
        assert statuses(received) == [0, 1, 2]
    async with http.ws_connect(service.url + "/v1/svcName") as ws:
        await ws.send_str(json.dumps(doc("a", 0, hang="read")))
        await asyncio.sleep(0.5)
        rc, seconds = stop_in_time(service, 1.0)
    assert rc != 0 and seconds < 6, (rc, seconds)
    assert '"op":"read"' in service.log


async def test_sigterm_mid_session_of_a_healthy_engine_exits_0(http, start, mock_engine,
                                                              counters_config,
                                                              counters_file):
    service = start(mock_engine, "-c", counters_config("[aiges]\ndrainTimeout = 500"))
    async with http.ws_connect(service.url + "/v1/svcName") as ws:
        await ws.send_str(json.dumps(doc("a", 0, never_end="1")))
        await ws.receive_json()
        rc, seconds = stop_in_time(service, 0.5)
    assert rc == 0 and seconds < 5.5, (rc, seconds)
    counters = read_counters(counters_file)
    assert counters["create"] == counters["destroy"] == 1 and counters["fini"] == 1

