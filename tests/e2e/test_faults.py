"""Faults of a real engine (native_examples/faulty) and limits, against the real
aiges-load: what the client sees, and that the service keeps serving (or, for a
crash, dies with the signal). docs/RELIABILITY.md lists every row proven here.
"""
from __future__ import annotations

import asyncio
import json
import signal

import aiohttp
import pytest

from tests.e2e.test_once import body, post
from tests.e2e.test_sessions import frame, ws_stream
from tests.helpers import read_counters

pytestmark = pytest.mark.e2e

# Modes of one-shot requests: flags of aiges-load.
ONCE = {"sync": (), "async": ("--async-mode",)}


@pytest.fixture
def faulty(start, native_dir, tmp_path, counters_file):
    """faulty(fc_extra, *flags, instances=2) -> a Service of libfaulty with a counters
    file; ``fc_extra`` goes at the end of the [fc] section (and may open others)."""

    def _start(extra: str = "", *flags: str, instances: int = 2, wait: int = 200):
        path = tmp_path / "faulty.toml"
        # The loader hands every session a callback: sessions are read unless async.
        push = "true" if "--async-mode" in flags else "false"
        path.write_text(f'[aiges]\nonceTimeout = 500\ndrainTimeout = 1000\n'
                        f'[fc]\nmax = {instances}\nwait = {wait}\n{extra}\n'
                        f'[wrapper]\ncounters_file = "{counters_file}"\npush = "{push}"\n')
        return start(str(native_dir / "libfaulty.so"), "-c", str(path), *flags)

    return _start


def fault(name: str, **params) -> dict:
    return body(params={"fault": name, **params})


async def ready(http, service) -> tuple[int, str]:
    async with http.get(service.url + "/ready") as resp:
        return resp.status, (await resp.json())["status"]


def stops_cleanly(service, counters_file) -> dict:
    assert service.terminate() == 0, service.log
    counters = read_counters(counters_file)
    assert counters["fini"] == 1 and counters["hung"] == 0, counters
    assert counters["live_exec"] == 0 and counters["live_sessions"] == 0, counters
    assert counters["fini_saw_live_sessions"] == 0, counters
    return counters


# (request, HTTP status, header.code for sync, for async, message).
# Async engine errors pushed through the callback are 10910; an invalid output
# status is 10909 in both modes (docs/RELIABILITY.md).
ENGINE_FAULTS = {
    "error": (fault("error", code=4242), 500, 10909, 10910,
              "faulty: requested error;code=4242"),
    "bad_status": (fault("bad_status"), 500, 10909, 10909,
                   "invalid output status 7 of 'result'"),
    "refused": (fault("nonsense"), 500, 10909, 10909, "faulty: invalid fault, ms or code"),
    "slow": (fault("slow", ms=2000), 504, 10102, 10102, "gave no result within 0.5s"),
}


@pytest.mark.parametrize("mode", ONCE)
@pytest.mark.parametrize("case", ENGINE_FAULTS)
async def test_engine_faults_get_an_error_and_the_service_keeps_serving(
        http, faulty, counters_file, mode, case):
    doc, status, sync_code, async_code, message = ENGINE_FAULTS[case]
    service = faulty("", *ONCE[mode])
    got, out, _ = await post(http, service, doc)
    assert (got, out["header"]["code"]) == (status, async_code if mode == "async"
                                            else sync_code), out
    assert message in out["header"]["message"]
    got, out, _ = await post(http, service, body())
    assert got == 200 and out["payload"]["result"]["text"] == "ok"
    stops_cleanly(service, counters_file)  # outputs freed, nothing left hanging


@pytest.mark.parametrize("mode", ONCE)
async def test_empty_output_is_a_success(http, faulty, mode):
    service = faulty("", *ONCE[mode])
    status, out, _ = await post(http, service, fault("empty"))
    assert (status, out["header"]["code"], out["payload"]) == (200, 0, {})


@pytest.mark.parametrize("mode", ONCE)
async def test_hung_calls_take_instances_out_until_fini_ends_them(http, faulty, counters_file,
                                                                  mode):
    service = faulty("", *ONCE[mode])
    for expected in ["ready", "stuck"]:
        status, out, _ = await post(http, service, fault("hang"))
        assert (status, out["header"]["code"]) == (504, 10102)
        assert (await ready(http, service))[1] == expected
    assert await ready(http, service) == (503, "stuck")
    status, out, headers = await post(http, service, body())
    assert (status, out["header"]["code"]) == (429, 10110) and int(headers["Retry-After"]) >= 1
    async with http.get(service.url + "/metrics") as resp:
        assert "aiges_instances_stuck 2.0" in await resp.text()
    assert read_counters(counters_file)["hung"] == 2
    # SIGTERM: the drain time runs out, wrapperFini (on a thread of its own) ends the
    # hangs, the instances come back, exit 0.
    stops_cleanly(service, counters_file)
    assert "returned after its request timed out" in service.log


async def test_missing_callback_times_out_and_frees_the_instance(http, faulty):
    service = faulty("", "--async-mode", instances=1)
    for _ in range(3):
        status, out, _ = await post(http, service, fault("never_callback"))
        assert (status, out["header"]["code"]) == (504, 10102)
    assert await ready(http, service) == (200, "ready")
    assert (await post(http, service, body()))[0] == 200


async def test_late_callback_is_ignored(http, faulty, counters_file):
    service = faulty("", "--async-mode")
    status, out, _ = await post(http, service, fault("late_callback", ms=900))
    assert (status, out["header"]["code"]) == (504, 10102)
    await asyncio.sleep(0.8)
    assert (await post(http, service, body()))[0] == 200
    assert "unknown or finished usrTag" in service.log
    assert stops_cleanly(service, counters_file)["callbacks"] == 2


@pytest.mark.parametrize("name, sig", [("crash", signal.SIGSEGV), ("abort", signal.SIGABRT)])
async def test_crash_kills_the_single_process_with_the_signal(http, faulty, name, sig):
    service = faulty()
    with pytest.raises(aiohttp.ClientError):
        await post(http, service, fault(name))
    assert service.wait_exit() == -sig


class TestSessions:
    @pytest.mark.parametrize("mode", ONCE)
    async def test_null_handle_is_a_create_error(self, http, faulty, counters_file, mode):
        service = faulty("", *ONCE[mode])
        received, _ = await ws_stream(http, service, [frame("a", 0, fault="null_handle")])
        assert [f["header"]["code"] for f in received] == [10905]
        async with http.post(service.url + "/v1/svcName/sessions",
                             data=json.dumps(frame(None, 0, fault="null_handle"))) as resp:
            assert resp.status == 500 and (await resp.json())["header"]["code"] == 10905
        stops_cleanly(service, counters_file)

    @pytest.mark.parametrize("mode, code", [("sync", 10908), ("async", 10910)])
    async def test_bad_status_is_an_engine_error_frame(self, http, faulty, counters_file,
                                                       mode, code):
        service = faulty("", *ONCE[mode])
        received, close = await ws_stream(http, service, [frame("a", 3, fault="bad_status")])
        assert [f["header"]["code"] for f in received] == [code]
        assert "invalid output status 7" in received[0]["header"]["message"]
        counters = stops_cleanly(service, counters_file)
        assert counters["create"] == counters["destroy"] == 1

    async def test_frame_over_max_frame_is_an_error_frame_and_close(self, http, faulty,
                                                                    counters_file):
        service = faulty("[ws]\nmaxFrame = 1024")
        async with http.ws_connect(service.url + "/v1/svcName") as ws:
            await ws.send_str(json.dumps(frame("a", 0)))
            assert (await ws.receive_json())["header"]["code"] == 0
            await ws.send_str(json.dumps(frame("x" * 4096, 2)))
            error = await ws.receive_json()
            assert error["header"]["code"] == 10009 and "maxFrame" in error["header"]["message"]
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1009
        received, _ = await ws_stream(http, service, [frame("b", 3)])
        assert [f["header"]["status"] for f in received] == [2]
        stops_cleanly(service, counters_file)

    async def test_sessions_beyond_max_sessions_get_10110(self, http, faulty, counters_file):
        service = faulty("maxSessions = 1")
        async with http.ws_connect(service.url + "/v1/svcName") as first:
            await first.send_str(json.dumps(frame("a", 0)))
            await first.receive_json()
            received, _ = await ws_stream(http, service, [frame("b", 0)])
            assert [f["header"]["code"] for f in received] == [10110]
            # The second instance stays free for one-shot requests.
            assert (await post(http, service, body()))[0] == 200
            await first.send_str(json.dumps(frame("z", 2)))
            assert (await first.receive_json())["header"]["status"] == 2
        stops_cleanly(service, counters_file)


async def test_sigterm_under_load_answers_everything_then_fini(http, faulty, counters_file):
    service = faulty(instances=8, wait=3000)
    once = [asyncio.create_task(post(http, service, fault("slow", ms=300))) for _ in range(12)]
    finishing = await http.ws_connect(service.url + "/v1/svcName")
    idle = await http.ws_connect(service.url + "/v1/svcName")
    for ws in (finishing, idle):
        await ws.send_str(json.dumps(frame("a", 0)))
        assert (await ws.receive_json())["header"]["status"] == 1
    await asyncio.sleep(0.1)
    service.proc.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.1)
    async with aiohttp.ClientSession() as fresh:  # no new connection is accepted
        with pytest.raises(aiohttp.ClientConnectorError):
            await ready(fresh, service)
    # An open session may still finish within the drain time...
    await finishing.send_str(json.dumps(frame("z", 2)))
    assert (await finishing.receive_json())["header"]["status"] == 2
    assert (await finishing.receive()).type == aiohttp.WSMsgType.CLOSE
    # ...one that does not is closed with 1001 (going away) at its end.
    msg = await asyncio.wait_for(idle.receive(), 5)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1001
    answers = await asyncio.gather(*once)
    assert [a[0] for a in answers] == [200] * 12  # every accepted request answered
    assert service.wait_exit() == 0, service.log
    counters = read_counters(counters_file)
    assert counters["create"] == counters["destroy"] == 2
    assert counters["fini"] == 1 and counters["fini_saw_live_sessions"] == 0
    assert counters["exec"] == counters["execfree"] == 12 and counters["live_exec"] == 0
    await finishing.close()
    await idle.close()
