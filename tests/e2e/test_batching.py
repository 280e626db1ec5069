"""Adaptive batching ([batch], docs/BATCHING.md) against the real aiges-load: gpusim's
throughput with every answer its own, per-item errors, a failing call, the once timeout,
batched and unbatched traffic side by side, and create/destroy balance."""
from __future__ import annotations

import asyncio
import base64
import json
import statistics
import time

import aiohttp
import pytest

from tests.helpers import metric, metric_samples

pytestmark = pytest.mark.e2e

CALL_MS = 20


def body(text: str, params: dict | None = None, header: dict | None = None) -> str:
    return json.dumps({
        "header": {"appid": "test", **(header or {})},
        "parameter": {"svcName": dict(params or {})},
        "payload": {"input": {"encoding": "utf8", "status": 3,
                              "text": base64.b64encode(text.encode()).decode()}}})


async def post(http, service, text: str, **kw) -> tuple[int, dict]:
    async with http.post(service.url + "/v1/svcName", data=body(text, **kw)) as resp:
        return resp.status, await resp.json()


def text_of(doc: dict, key: str = "input") -> str | None:
    item = doc.get("payload", {}).get(key)
    return item["text"] if item else None


async def metrics(http, service) -> dict:
    async with http.get(service.url + "/metrics") as resp:
        return metric_samples(await resp.text())


def config(tmp_path, text: str) -> str:
    path = tmp_path / "batch.toml"
    path.write_text(text)
    return str(path)


# -- throughput --------------------------------------------------------------------------
async def closed_loop(url: str, concurrency: int, seconds: float) -> tuple[int, list, int]:
    """``concurrency`` clients, each sending distinct inputs back to back: (answers,
    latencies in s, answers that were not their own request's)."""
    latencies: list[float] = []
    wrong = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.perf_counter() + seconds

        async def client(c: int) -> None:
            nonlocal wrong
            n = 0
            while (began := time.perf_counter()) < deadline:
                text = f"client-{c}-request-{n}"
                n += 1
                async with session.post(url, data=body(text)) as resp:
                    doc = await resp.json()
                latencies.append(time.perf_counter() - began)
                if resp.status != 200 or text_of(doc) != text:
                    wrong += 1

        await asyncio.gather(*(client(c) for c in range(concurrency)))
    return len(latencies), latencies, wrong


async def test_gpusim_batches_reach_the_throughput_of_full_batches(start, tmp_path, http,
                                                                   native_dir):
    """20 ms per call, 1 instance, maxSize 16, c = 32: at least 0.8 x 16 / 20 ms = 640
    req/s, every answer its own, p50 near two calls (Little's law: with 32 clients and
    16 per call, each request waits for the call before its own, so 2 x call time is
    the floor; the bound allows 25% for HTTP and the event loop)."""
    path = config(tmp_path, f"[fc]\nmax = 1\n[batch]\nmaxSize = 16\n[aiges]\naccessLog = false\n"
                            f"[wrapper]\ncall_ms = {CALL_MS}\nitem_us = 50\n")
    service = start(str(native_dir / "libgpusim.so"), "-c", path)
    url = service.url + "/v1/svcName"
    await closed_loop(url, 32, 0.5)  # warm-up: connections, placement
    tries = []
    for _ in range(3):  # a shared 2-core box: the best of three windows
        answers, latencies, wrong = await closed_loop(url, 32, 3.0)
        assert wrong == 0
        rps, p50 = answers / 3.0, statistics.median(latencies)
        tries.append((round(rps), round(p50 * 1000, 1)))
        if rps >= 640 and p50 <= 2.5 * CALL_MS / 1000:
            break
    else:
        pytest.fail(f"(req/s, p50 ms) of each try: {tries}")
    samples = await metrics(http, service)
    calls = metric(samples, "aiges_batch_size_count")
    assert metric(samples, "aiges_batch_size_sum") / calls > 8  # most calls nearly full
    assert metric(samples, "aiges_batch_calls_total", result="ok") == calls


# -- per request guarantees ------------------------------------------------------------------
@pytest.fixture
def echo_batched(start, tmp_path, echo_engine, counters_file):
    """The echo engine (C and Python), 1 instance, maxSize 8, access log on."""
    def _start(extra: str = "", fc: str = "") -> object:
        path = config(tmp_path, f"[fc]\nmax = 1\n{fc}\n[batch]\nmaxSize = 8\n{extra}\n"
                                f"[wrapper]\ncounters_file = \"{counters_file}\"\n")
        return start(echo_engine, "-c", path)
    return _start


async def behind_a_busy_instance(http, service, requests: list[tuple[str, dict]],
                                 busy_ms: int = 300):
    """The instance held by one slow request while ``requests`` arrive: they queue and
    share the next batch. Returns (the slow one's answer, their answers)."""
    blocker = asyncio.ensure_future(post(http, service, "blocker",
                                         params={"delay_ms": busy_ms}))
    await asyncio.sleep(busy_ms / 3000)
    answers = await asyncio.gather(*(post(http, service, text, params=params)
                                     for text, params in requests))
    return await blocker, answers


async def test_errors_stay_with_their_item(http, echo_batched):
    service = echo_batched()
    reqs = [(f"item-{i}", {"show_batch": "true", **({"fail": 7} if i == 2 else {})})
            for i in range(6)]
    (status, _), answers = await behind_a_busy_instance(http, service, reqs)
    assert status == 200
    for i, (status, doc) in enumerate(answers):
        if i == 2:
            assert (status, doc["header"]["code"]) == (500, 10909)
            assert doc["header"]["message"].endswith(";code=7")
        else:
            assert (status, text_of(doc)) == (200, f"item-{i}")
            assert text_of(doc, "batch") == "6"  # the six shared one call
    # The access log: one line per request, batched or not, with its own sid and code.
    await asyncio.sleep(0.2)
    lines = [json.loads(line) for line in service.log.splitlines()
             if line.startswith("{") and '"request"' in line and '"latency_ms"' in line]
    sids = {doc["header"]["sid"]: doc["header"]["code"] for _, doc in answers}
    logged = {line["sid"]: line["code"] for line in lines if line["sid"] in sids}
    assert logged == sids


async def test_a_failing_call_fails_every_item_in_it(http, echo_batched):
    service = echo_batched()
    reqs = [(f"item-{i}", {"fail_batch": 9} if i == 1 else {}) for i in range(4)]
    (status, _), answers = await behind_a_busy_instance(http, service, reqs)
    assert status == 200
    assert [(s, d["header"]["code"]) for s, d in answers] == [(500, 10909)] * 4
    assert all(d["header"]["message"].endswith(";code=9") for _, d in answers)
    status, doc = await post(http, service, "after")  # the service serves on
    assert (status, text_of(doc)) == (200, "after")
    samples = await metrics(http, service)
    assert metric(samples, "aiges_batch_calls_total", result="failed") == 1


async def test_a_call_past_the_once_timeout_fails_its_items_and_holds_its_instance(
        http, echo_batched):
    service = echo_batched("[aiges]\nonceTimeout = 600")
    reqs = [("slow", {"delay_ms": 1500}), ("a", {}), ("b", {})]
    (status, _), answers = await behind_a_busy_instance(http, service, reqs, busy_ms=200)
    assert status == 200
    assert [(s, d["header"]["code"]) for s, d in answers] == [(504, 10102)] * 3
    async with http.get(service.url + "/ready") as resp:
        assert resp.status == 503 and (await resp.json())["status"] == "stuck"
    samples = await metrics(http, service)
    assert metric(samples, "aiges_instances_stuck") == 1
    assert metric(samples, "aiges_batch_calls_total", result="timeout") == 1
    for _ in range(60):  # the call returns about 1.5 s after it began
        async with http.get(service.url + "/ready") as resp:
            if resp.status == 200:
                break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the instance never came back")
    status, doc = await post(http, service, "after")
    assert (status, text_of(doc)) == (200, "after")


async def test_no_instance_in_time_is_429(http, echo_batched):
    service = echo_batched(fc="wait = 100")
    (status, _), answers = await behind_a_busy_instance(http, service, [("late", {})],
                                                        busy_ms=600)
    assert status == 200
    assert [(s, d["header"]["code"]) for s, d in answers] == [(429, 10110)]


# -- mixed traffic, balance ----------------------------------------------------------------------
async def sessions(http, service, texts: list[str]) -> list[list]:
    """One WebSocket session per text, one after the other (maxSessions = max - 1)."""
    received = []
    for text in texts:
        async with http.ws_connect(service.url + "/v1/svcName") as ws:
            await ws.send_str(body(text))
            received.append([text_of(json.loads(msg.data)) async for msg in ws])
    return received


async def test_batched_resource_and_session_traffic_side_by_side(http, balanced, echo_engine):
    """Requests naming a resource (res_id) run alone through wrapperExec, next to full
    batches and sessions; every create has its destroy, every output is freed, fini once."""
    service = balanced(echo_engine, "[fc]\nmax = 3\n[batch]\nmaxSize = 4")
    jobs = []
    for i in range(24):
        if i % 2:
            jobs.append(post(http, service, f"res-{i}", params={"show_batch": "true"},
                             header={"res_id": str(i)}))
        else:
            jobs.append(post(http, service, f"batch-{i}", params={"show_batch": "true",
                                                                    "delay_ms": 20}))
    texts = [f"session-{i}" for i in range(6)]
    *results, streamed = await asyncio.gather(*jobs, sessions(http, service, texts))
    assert streamed == [[text] for text in texts]
    for i, (status, doc) in enumerate(results):
        assert status == 200
        if i % 2:
            assert text_of(doc) == f"res-{i}" and text_of(doc, "psr_ids") == str(i)
            assert text_of(doc, "batch") is None  # wrapperExec: alone
        else:
            assert text_of(doc) == f"batch-{i}" and int(text_of(doc, "batch")) >= 1
    samples = await metrics(http, service)
    assert metric(samples, "aiges_batch_size_sum") == 12  # the batchable ones only


async def test_an_engine_without_the_batch_entry_is_served_unbatched(start, tmp_path, http,
                                                                     native_dir):
    path = config(tmp_path, "[batch]\nmaxSize = 8\n")
    service = start(str(native_dir / "libupper.so"), "-c", path)
    status, doc = await post(http, service, "abc")
    assert status == 200 and doc["header"]["code"] == 0
    assert "maxSize ignored" in service.log
