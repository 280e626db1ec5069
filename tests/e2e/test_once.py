"""One-shot requests against the real aiges-load with the echo engine (SPEC 3)."""
from __future__ import annotations

import asyncio
import base64
import json
import time

import pytest

from tests.helpers import read_counters

pytestmark = pytest.mark.e2e


def body(text: str = "hello", params: dict | None = None, header: dict | None = None,
         **inputs) -> dict:
    payload = inputs or {"input": {"encoding": "utf8", "status": 3,
                                   "text": base64.b64encode(text.encode()).decode()}}
    return {"header": {"appid": "test", **(header or {})},
            "parameter": {"svcName": {**(params or {}),
                                      "input": {"encoding": "utf8", "format": "plain"}}},
            "payload": payload}


async def post(http, service, doc, path="/v1/svcName"):
    data = doc if isinstance(doc, (bytes, str)) else json.dumps(doc)
    async with http.post(service.url + path, data=data) as resp:
        return resp.status, await resp.json(), resp.headers


@pytest.fixture
def echo(start, echo_engine, echo_config):
    return start(echo_engine, "-c", str(echo_config))


async def test_readme_request_echoes_the_input(http, echo):
    status, doc, headers = await post(http, echo, body("hello aiges"))
    assert status == 200
    assert doc["header"]["code"] == 0 and doc["header"]["status"] == 3
    assert doc["payload"]["input"] == {"encoding": "utf8", "format": "plain", "seq": "0",
                                       "status": "3", "text": "hello aiges"}
    params = json.loads(doc["payload"]["params"]["text"])
    assert params == {"sid": doc["header"]["sid"]}
    assert headers["Access-Control-Allow-Origin"] == "*"


async def test_params_are_plain_text_and_res_id_reaches_the_engine(http, echo):
    doc = body(params={"rate": 16000, "ratio": 0.25, "fast": True, "name": "x"},
               header={"res_id": "7"})
    status, out, _ = await post(http, echo, doc)
    assert status == 200
    params = json.loads(out["payload"]["params"]["text"])
    assert params == {"sid": out["header"]["sid"], "rate": "16000", "ratio": "0.25",
                      "fast": "true", "name": "x"}
    assert out["payload"]["psr_ids"]["text"] == "7"


async def test_binary_inputs_and_descs_round_trip(http, echo):
    raw = bytes(range(256))
    doc = body(pcm={"audio": base64.b64encode(raw).decode(), "sample_rate": 16000,
                    "encoding": "raw", "status": 3})
    status, out, _ = await post(http, echo, doc)
    assert status == 200
    assert base64.b64decode(out["payload"]["pcm"]["audio"]) == raw
    assert out["payload"]["pcm"]["sample_rate"] == "16000"


@pytest.mark.parametrize("doc, status, code", [
    (b"{not json", 400, 10000),
    (body(input={"text": "%%%"}), 400, 10001),
    (body(input={"encoding": "utf8"}), 400, 10009),
    ({"header": {}, "payload": {}}, 400, 10009),
])
async def test_bad_requests_get_4xx_and_the_service_keeps_serving(http, echo, doc, status, code):
    got, out, headers = await post(http, echo, doc)
    assert (got, out["header"]["code"]) == (status, code)
    assert out["header"]["message"] and out["header"]["sid"]
    assert headers["Content-Type"].startswith("application/json")
    assert (await post(http, echo, body()))[0] == 200


@pytest.mark.parametrize("method, path", [("GET", "/v2/other"), ("POST", "/v1/otherService"),
                                          ("DELETE", "/v1/svcName/x")])
async def test_unknown_routes_get_a_json_404(http, echo, method, path):
    async with http.request(method, echo.url + path) as resp:
        assert resp.status == 404
        assert (await resp.json())["header"]["code"] == 10003


async def test_cors_preflight(http, echo):
    async with http.options(echo.url + "/v1/svcName",
                            headers={"Origin": "http://x", "Access-Control-Request-Method": "POST"}
                            ) as resp:
        assert resp.status == 204
        assert "POST" in resp.headers["Access-Control-Allow-Methods"]


async def test_engine_error_carries_code_and_text(http, echo):
    status, out, _ = await post(http, echo, body(params={"fail": 4321}))
    assert status == 500
    assert out["header"]["code"] == 10909
    assert out["header"]["message"].endswith(";code=4321")
    assert "echo" in out["header"]["message"]


async def test_empty_output_is_a_success_with_no_payload(http, echo):
    status, out, _ = await post(http, echo, body(params={"empty": True}))
    assert status == 200 and out["payload"] == {}


async def test_body_too_large_is_413(http, start, echo_engine, tmp_path):
    (tmp_path / "small.toml").write_text("[aiges]\nmaxBody = 1024\n")
    service = start(echo_engine, "-c", str(tmp_path / "small.toml"))
    status, out, _ = await post(http, service, body("x" * 4096))
    assert status == 413 and out["header"]["code"] == 10009
    assert (await post(http, service, body("small")))[0] == 200


async def test_busy_pool_answers_429_with_retry_after(http, start, echo_engine, tmp_path):
    (tmp_path / "one.toml").write_text("[fc]\nmax = 1\nwait = 100\n")
    service = start(echo_engine, "-c", str(tmp_path / "one.toml"))
    slow = asyncio.create_task(post(http, service, body(params={"delay_ms": 1500})))
    await asyncio.sleep(0.3)
    status, out, headers = await post(http, service, body())
    assert (status, out["header"]["code"]) == (429, 10110)
    assert int(headers["Retry-After"]) >= 1
    assert (await slow)[0] == 200
    assert (await post(http, service, body()))[0] == 200


async def test_sync_timeout_is_504_and_the_instance_comes_back(http, start, echo_engine, tmp_path):
    (tmp_path / "t.toml").write_text("[fc]\nmax = 1\nwait = 3000\n[aiges]\nonceTimeout = 300\n")
    service = start(echo_engine, "-c", str(tmp_path / "t.toml"))
    status, out, _ = await post(http, service, body(params={"delay_ms": 1000}))
    assert (status, out["header"]["code"]) == (504, 10102)
    # The only instance is still inside wrapperExec: the next request waits for it.
    status, out, _ = await post(http, service, body())
    assert status == 200 and out["payload"]["input"]["text"] == "hello"


class TestAsyncMode:
    @pytest.fixture
    def service(self, start, echo_so, echo_config):
        return start(echo_so, "-c", str(echo_config), "--async-mode", "--once-timeout-ms", "500")

    async def test_result_comes_through_the_callback(self, http, service, counters_file):
        status, out, _ = await post(http, service, body("via callback", header={"res_id": "5"}))
        assert status == 200
        assert out["payload"]["input"]["text"] == "via callback"
        assert out["payload"]["psr_ids"]["text"] == "5"
        assert read_counters(counters_file)["async"] >= 1

    @pytest.mark.parametrize("flag", ["inline", "callback_twice"])
    async def test_reentrant_and_duplicate_callbacks(self, http, service, flag):
        status, out, _ = await post(http, service, body(params={flag: True}))
        assert status == 200 and out["payload"]["input"]["text"] == "hello"

    async def test_missing_callback_times_out_and_frees_the_instance(self, http, service):
        for _ in range(3):
            status, out, _ = await post(http, service, body(params={"no_callback": True}))
            assert (status, out["header"]["code"]) == (504, 10102)
        assert (await post(http, service, body()))[0] == 200

    async def test_late_callback_is_ignored(self, http, service):
        status, _, _ = await post(http, service, body(params={"delay_ms": 800}))
        assert status == 504
        await asyncio.sleep(0.8)  # the late callback arrives now, for a forgotten tag
        assert (await post(http, service, body("after")))[1]["payload"]["input"]["text"] == "after"
        # On a loaded machine the engine's thread may call back a little later still.
        deadline = time.monotonic() + 5
        while "unknown or finished usrTag" not in service.log:
            assert time.monotonic() < deadline, service.log[-2000:]
            await asyncio.sleep(0.05)

    async def test_callback_error(self, http, service):
        status, out, _ = await post(http, service, body(params={"fail": 77}))
        assert (status, out["header"]["code"]) == (500, 10910)
        assert out["header"]["message"].endswith(";code=77")


async def test_cpp_engine_serves(http, start, native_dir):
    service = start(str(native_dir / "libupper.so"))
    status, out, _ = await post(http, service, body("Hello C++"))
    assert status == 200 and out["payload"]["input"]["text"] == "HELLO C++"
