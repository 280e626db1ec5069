"""Streaming sessions over WebSocket and the HTTP session API, with the echo engine.

Every service is stopped after its test and the engine's counters must show each
wrapperCreate matched by one wrapperDestroy.
"""
from __future__ import annotations

import asyncio
import base64
import json

import aiohttp
import pytest

from tests.helpers import read_counters

pytestmark = pytest.mark.e2e


def frame(text: str | None, status: int, key: str = "input", **params) -> dict:
    doc: dict = {"header": {"appid": "test"}, "parameter": {"svcName": params}}
    if text is not None:
        doc["payload"] = {key: {"encoding": "utf8", "status": status,
                                "text": base64.b64encode(text.encode()).decode()}}
    return doc


def chunks(texts: list[str], key: str = "input", **params) -> list[dict]:
    if len(texts) == 1:
        return [frame(texts[0], 3, key, **params)]
    statuses = [0] + [1] * (len(texts) - 2) + [2]
    return [frame(t, s, key, **(params if i == 0 else {}))
            for i, (t, s) in enumerate(zip(texts, statuses, strict=True))]


@pytest.fixture
def serve(balanced, echo_engine):
    """serve(toml_extra, *flags): the echo engine of each kind, checked balanced at the end."""
    return lambda extra="", *flags, push=None: balanced(echo_engine, extra, *flags, push=push)


async def ws_stream(http, service, frames: list[dict], pause: float = 0.0):
    """Sends the frames, then collects every server frame until the server closes."""
    received = []
    async with http.ws_connect(service.url + "/v1/svcName") as ws:
        for doc in frames:
            await ws.send_str(json.dumps(doc))
            if pause:
                await asyncio.sleep(pause)
        async for msg in ws:
            received.append(json.loads(msg.data))
        return received, ws.close_code


def texts(received, key="input"):
    return [(f["header"]["status"], f["payload"][key]["text"]) for f in received
            if key in f.get("payload", {})]


MODES = {"sync-realtime": ("", ()),
         "sync-after-last": ("[aiges]\nrealTimeRlt = false", ()),
         "async": ("", ("--async-mode",)),
         # the engine pushes through the callback, asyncMode off: still delivered
         "pushed": ("", (), True)}


def serve_mode(serve, mode: str):
    extra, flags, *push = MODES[mode]
    return serve(extra, *flags, push=push[0] if push else None)


@pytest.mark.parametrize("mode", MODES)
async def test_websocket_streams_every_result_in_order(http, serve, mode):
    service = serve_mode(serve, mode)
    parts = [f"chunk {i} " for i in range(6)]
    received, code = await ws_stream(http, service, chunks(parts))
    assert code == aiohttp.WSCloseCode.OK
    assert texts(received) == [(0, parts[0])] + [(1, p) for p in parts[1:-1]] + [(2, parts[-1])]
    assert all(f["header"]["code"] == 0 and f["header"]["message"] == "success"
               for f in received)
    assert len({f["header"]["sid"] for f in received}) == 1
    # upstream numbers each output key's results from 1, and acknowledges a first
    # frame that gave no result at once with a frame without payload (status 0)
    results = [f for f in received if "payload" in f]
    assert [f["payload"]["input"]["seq"] for f in results] == [str(i) for i in range(1, 7)]
    acks = [f for f in received if "payload" not in f]
    assert acks in ([], [received[0]]) and all(f["header"]["status"] == 0 for f in acks)
    if mode == "sync-after-last":  # nothing is read before the last input
        assert len(acks) == 1


@pytest.mark.parametrize("mode", ["sync-realtime", "async", "pushed"])
async def test_a_burst_of_frames_sent_back_to_back_loses_nothing(http, serve, mode):
    """10,000 frames sent without waiting for a result (frames read in one burst are
    written inline, their results sent in groups): every result comes, once, in order."""
    service = serve_mode(serve, mode)
    parts = [f"frame {i}" for i in range(10_000)]
    docs = chunks(parts)
    received = []
    async with http.ws_connect(service.url + "/v1/svcName", max_msg_size=0) as ws:
        async def send_all():
            for doc in docs:
                await ws.send_str(json.dumps(doc))

        sender = asyncio.create_task(send_all())
        async for msg in ws:
            received.append(json.loads(msg.data))
        await sender
        assert ws.close_code == aiohttp.WSCloseCode.OK
    assert texts(received) == [(0, parts[0])] + [(1, p) for p in parts[1:-1]] + \
        [(2, parts[-1])]
    results = [f for f in received if "payload" in f]
    assert [f["payload"]["input"]["seq"] for f in results] == \
        [str(i) for i in range(1, len(parts) + 1)]


@pytest.mark.parametrize("mode", MODES)
async def test_a_single_once_frame(http, serve, mode):
    service = serve_mode(serve, mode)
    received, code = await ws_stream(http, service, chunks(["all at once"]))
    assert texts(received) == [(3, "all at once")] and code == aiohttp.WSCloseCode.OK


async def test_session_ends_when_every_input_has_ended(http, serve):
    service = serve()
    frames = [frame("a0", 0, "a"), frame("b0", 0, "b"), frame("a1", 2, "a"), frame("b1", 2, "b")]
    received, _ = await ws_stream(http, service, frames)
    assert texts(received, "a") == [(0, "a0"), (2, "a1")]
    assert texts(received, "b") == [(0, "b0"), (2, "b1")]
    assert received[-1]["payload"].keys() == {"b"}


async def test_engine_write_error_is_one_error_frame_then_close(http, serve):
    service = serve()
    received, code = await ws_stream(http, service, [frame("x", 0, fail_write=555)])
    assert len(received) == 1
    assert received[0]["header"]["code"] == 10907
    assert received[0]["header"]["message"].endswith(";code=555")
    assert code == aiohttp.WSCloseCode.OK


async def test_create_error(http, serve):
    service = serve()
    received, _ = await ws_stream(http, service, [frame("x", 0, fail_create=9)])
    assert [f["header"]["code"] for f in received] == [10905]


async def test_bad_frame_is_an_error_frame(http, serve):
    service = serve()
    async with http.ws_connect(service.url + "/v1/svcName") as ws:
        await ws.send_str(json.dumps(frame("a", 0)))
        assert (await ws.receive_json())["payload"]["input"]["text"] == "a"
        await ws.send_str("{not json")
        error = await ws.receive_json()
        assert error["header"]["code"] == 10163  # upstream's code for a frame it cannot parse
        assert (await ws.receive()).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_a_bad_frame_in_a_burst_comes_after_the_results_before_it(http, serve):
    """Frames read together are written together: a bad one among them is answered
    with its error only once every frame before it has its result; none after it is
    written."""
    service = serve()
    parts = [f"frame {i}" for i in range(40)]
    wire = [json.dumps(doc) for doc in chunks(parts)]
    wire[30] = "{not json"
    received = []
    async with http.ws_connect(service.url + "/v1/svcName") as ws:
        await ws.send_str(wire[0])
        assert (await ws.receive_json())["payload"]["input"]["text"] == parts[0]
        for text in wire[1:]:  # one burst: aiohttp reads them together
            await ws.send_str(text)
        async for msg in ws:
            received.append(json.loads(msg.data))
    assert texts(received) == [(1, p) for p in parts[1:30]]
    assert received[-1]["header"]["code"] == 10163 and "payload" not in received[-1]


async def test_a_bad_frame_after_the_last_in_a_burst_is_not_read(http, serve):
    """Read one by one, a frame after the session's end was never read: read in the
    same burst as the last frame, it is not answered either; the session ends as
    usual (every result, then a normal close)."""
    service = serve()
    async with http.ws_connect(service.url + "/v1/svcName") as ws:
        await ws.send_str(json.dumps(frame("a", 0)))
        assert (await ws.receive_json())["payload"]["input"]["text"] == "a"
        for text in (json.dumps(frame("b", 1)), json.dumps(frame("c", 2)), "{not json"):
            await ws.send_str(text)
        received = [json.loads(msg.data) async for msg in ws]
        assert ws.close_code == aiohttp.WSCloseCode.OK
    assert texts(received) == [(1, "b"), (2, "c")]
    assert all(f["header"]["code"] == 0 for f in received)


async def test_sessions_beyond_the_pool_get_10110(http, serve):
    service = serve("[fc]\nmax = 1\nwait = 100")
    async with http.ws_connect(service.url + "/v1/svcName") as first:
        await first.send_str(json.dumps(frame("a", 0)))
        await first.receive_json()
        received, _ = await ws_stream(http, service, [frame("b", 0)])
        assert [f["header"]["code"] for f in received] == [10110]
        await first.send_str(json.dumps(frame("z", 2)))
        assert (await first.receive_json())["header"]["status"] == 2
    received, _ = await ws_stream(http, service, chunks(["c", "d"]))
    assert texts(received) == [(0, "c"), (2, "d")]


async def test_idle_session_is_destroyed_after_ttl(http, serve, counters_file):
    service = serve("[fc]\nttl = 300")
    async with http.ws_connect(service.url + "/v1/svcName") as ws:
        await ws.send_str(json.dumps(frame("a", 0)))
        await ws.receive_json()
        error = await asyncio.wait_for(ws.receive_json(), 5)
        assert error["header"]["code"] == 10114
    assert read_counters(counters_file)["live_sessions"] == 0


async def test_client_silence_hits_the_read_timeout(http, serve):
    service = serve("[ws]\nreadTimeout = 0.3")
    async with http.ws_connect(service.url + "/v1/svcName") as ws:
        await ws.send_str(json.dumps(frame("a", 0)))
        await ws.receive_json()
        assert (await asyncio.wait_for(ws.receive_json(), 5))["header"]["code"] == 10114


async def test_disconnect_mid_stream_destroys_at_once(http, serve, counters_file):
    service = serve()
    async with http.ws_connect(service.url + "/v1/svcName") as ws:
        await ws.send_str(json.dumps(frame("a", 0)))
        await ws.receive_json()
        assert read_counters(counters_file)["live_sessions"] == 1
    for _ in range(100):
        if read_counters(counters_file)["live_sessions"] == 0:
            break
        await asyncio.sleep(0.02)
    assert read_counters(counters_file)["destroy"] == 1


async def test_results_after_the_last_frame_are_delivered(http, serve):
    # Async engine delaying each delivery: every result comes after the client's last frame.
    service = serve("", "--async-mode")
    parts = ["x", "y", "z"]
    received, code = await ws_stream(http, service, chunks(parts, delay_ms=100))
    assert texts(received) == [(0, "x"), (1, "y"), (2, "z")]
    assert code == aiohttp.WSCloseCode.OK


async def test_shutdown_closes_open_sockets_with_1001(http, serve, tmp_path):
    service = serve("[aiges]\ndrainTimeout = 300")
    async with http.ws_connect(service.url + "/v1/svcName") as ws:
        await ws.send_str(json.dumps(frame("a", 0)))
        await ws.receive_json()
        service.proc.send_signal(15)
        msg = await asyncio.wait_for(ws.receive(), 5)
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1001


class TestHttpSessionApi:
    async def call(self, http, method, url, doc=None, **params):
        data = json.dumps(doc) if doc is not None else None
        async with http.request(method, url, data=data, params=params) as resp:
            return resp.status, await resp.json()

    @pytest.mark.parametrize("mode", MODES)
    async def test_create_write_poll_delete(self, http, serve, mode):
        service = serve_mode(serve, mode)
        base = service.url + "/v1/svcName/sessions"
        status, out = await self.call(http, "POST", base, frame("one ", 0))
        assert status == 200 and out["header"]["code"] == 0
        sid = out["header"]["sid"]
        got = [r["payload"]["input"]["text"] for r in out["results"]]
        status, out = await self.call(http, "POST", f"{base}/{sid}", frame("two ", 1))
        got += [r["payload"]["input"]["text"] for r in out["results"]]
        status, out = await self.call(http, "POST", f"{base}/{sid}", frame("three", 2))
        got += [r["payload"]["input"]["text"] for r in out["results"]]
        while not out["header"]["ended"]:
            status, out = await self.call(http, "GET", f"{base}/{sid}", wait_ms=2000)
            assert status == 200
            got += [r["payload"]["input"]["text"] for r in out["results"]]
        assert got == ["one ", "two ", "three"]
        status, out = await self.call(http, "GET", f"{base}/{sid}")
        assert (status, out["header"]["code"]) == (404, 10101)

    async def test_create_without_a_frame_then_delete(self, http, serve, counters_file):
        service = serve()
        base = service.url + "/v1/svcName/sessions"
        status, out = await self.call(http, "POST", base)
        sid = out["header"]["sid"]
        assert status == 200 and out["results"] == []
        status, out = await self.call(http, "GET", f"{base}/{sid}", wait_ms=50)
        assert status == 200 and out["results"] == [] and not out["header"]["ended"]
        status, out = await self.call(http, "DELETE", f"{base}/{sid}")
        assert status == 200 and out["header"]["code"] == 0
        assert read_counters(counters_file)["live_sessions"] == 0
        status, out = await self.call(http, "POST", f"{base}/{sid}", frame("x", 2))
        assert (status, out["header"]["code"]) == (404, 10101)

    async def test_unknown_session(self, http, serve):
        service = serve()
        status, out = await self.call(http, "GET", service.url + "/v1/svcName/sessions/nope")
        assert (status, out["header"]["code"]) == (404, 10008)

    async def test_engine_error_is_reported(self, http, serve):
        service = serve()
        base = service.url + "/v1/svcName/sessions"
        status, out = await self.call(http, "POST", base, frame("x", 0, fail_write=12))
        assert (status, out["header"]["code"]) == (500, 10907)

    async def test_idle_session_expires(self, http, serve):
        service = serve("[fc]\nttl = 200")
        base = service.url + "/v1/svcName/sessions"
        _, out = await self.call(http, "POST", base, frame("x", 0))
        await asyncio.sleep(0.5)
        status, out = await self.call(http, "GET", f"{base}/{out['header']['sid']}")
        assert status in (404, 408) and out["header"]["code"] in (10101, 10114)
