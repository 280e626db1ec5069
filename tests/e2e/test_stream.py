"""Streaming a file in chunks through the `stream` engine, which keeps running text
statistics: every intermediate result and the final summary arrive, in order, over
WebSocket and over the HTTP session API, for sync (read) and async (callback) engines."""
from __future__ import annotations

import base64
import json
import random
from collections import Counter

import pytest

from tests.helpers import read_counters

pytestmark = pytest.mark.e2e

WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "aiges", "Stream"]


def sample_text(size: int = 20000) -> bytes:
    rng = random.Random(7)
    out = []
    while sum(map(len, out)) < size:
        out.append(rng.choice(WORDS) + rng.choice([" ", " ", "  ", "\n", "\t"]))
    return "".join(out).encode()


def expected_summary(data: bytes, chunks: int) -> dict:
    counts = Counter(w.lower() for w in data.decode().split())
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    return {"chunks": chunks, "bytes": len(data), "words": len(data.split()),
            "lines": data.count(b"\n"), "top": [list(t) for t in top]}


def frames_of(data: bytes, size: int, **params) -> list[dict]:
    parts = [data[i:i + size] for i in range(0, len(data), size)]
    docs = []
    for i, part in enumerate(parts):
        status = 0 if i == 0 else 2 if i == len(parts) - 1 else 1
        docs.append({"header": {"appid": "t"},
                     "parameter": {"svcName": params if i == 0 else {}},
                     "payload": {"text": {"encoding": "utf8", "status": status,
                                          "text": base64.b64encode(part).decode()}}})
    return docs


def check(results: list[dict], data: bytes, chunk: int) -> None:
    """Per-chunk stats grow in order with the bytes written; the last frame is the summary."""
    n = -(-len(data) // chunk)
    stats = [json.loads(r["payload"]["stats"]["text"]) for r in results
             if "stats" in r.get("payload", {})]
    assert [s["chunk"] for s in stats] == list(range(1, n + 1))
    assert [s["bytes"] for s in stats] == [min(i * chunk, len(data)) for i in range(1, n + 1)]
    assert stats[-1]["words"] == len(data.split())
    final = results[-1]
    assert final["header"]["status"] == 2 and final["payload"]["summary"]["status"] == "2"
    assert json.loads(final["payload"]["summary"]["text"]) == expected_summary(data, n)


MODES = {"sync": (), "async": ("--async-mode",), "pushed": ("push",)}  # push: asyncMode off


@pytest.fixture
def stream(start, stream_engine, tmp_path):
    counters = tmp_path / "stream-counters.txt"
    services = []

    def _start(*flags):
        # "push": the engine delivers through the callback without --async-mode
        push = "true" if {"--async-mode", "push"} & set(flags) else "false"
        flags = tuple(f for f in flags if f != "push")
        (tmp_path / "stream.toml").write_text(
            f'[wrapper]\ncounters_file = "{counters}"\npush = "{push}"\n')
        service = start(stream_engine, "-c", str(tmp_path / "stream.toml"), *flags)
        services.append(service)
        return service

    yield _start
    for service in services:
        assert service.terminate() == 0
        c = read_counters(counters)
        assert c["create"] == c["destroy"] and c["live_sessions"] == 0 and c["fini"] == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("params", [{}, {"final_delay_ms": 150}], ids=["now", "late-final"])
async def test_websocket_file_stream(http, stream, mode, params):
    service = stream(*MODES[mode])
    data = sample_text()
    async with http.ws_connect(service.url + "/v1/svcName") as ws:
        for doc in frames_of(data, 1000, **params):
            await ws.send_str(json.dumps(doc))
        results = [json.loads(msg.data) async for msg in ws]
    assert all(r["header"]["code"] == 0 for r in results)
    check(results, data, 1000)


@pytest.mark.parametrize("mode", MODES)
async def test_http_session_file_stream(http, stream, mode):
    service = stream(*MODES[mode])
    data = sample_text(8000)
    docs = frames_of(data, 700, final_delay_ms=100)
    base = service.url + "/v1/svcName/sessions"
    async with http.post(base, json=docs[0]) as resp:
        out = await resp.json()
    sid, results = out["header"]["sid"], out["results"]
    for doc in docs[1:]:
        async with http.post(f"{base}/{sid}", json=doc) as resp:
            out = await resp.json()
            assert resp.status == 200, out
            results += out["results"]
    while not out["header"]["ended"]:
        async with http.get(f"{base}/{sid}", params={"wait_ms": "2000"}) as resp:
            out = await resp.json()
            results += out["results"]
    check(results, data, 700)


async def test_once_summary(http, stream):
    service = stream()
    data = sample_text(3000)
    doc = {"payload": {"text": {"status": 3, "text": base64.b64encode(data).decode()}}}
    async with http.post(service.url + "/v1/svcName", json=doc) as resp:
        out = await resp.json()
    assert json.loads(out["payload"]["summary"]["text"]) == expected_summary(data, 1)


@pytest.mark.parametrize("mode", MODES)
async def test_engine_error_mid_stream_keeps_earlier_results(http, stream, mode):
    service = stream(*MODES[mode])
    data = sample_text(5000)
    async with http.ws_connect(service.url + "/v1/svcName") as ws:
        for doc in frames_of(data, 1000, fail_at_chunk=3)[:3]:
            await ws.send_str(json.dumps(doc))
        results = [json.loads(msg.data) async for msg in ws]
    # an ack (no payload) comes first when the first result was not there at once
    codes = [r["header"]["code"] for r in results if "payload" in r or r["header"]["code"]]
    assert codes == [0, 0, 10907]
    assert "chunk 3" in results[-1]["header"]["message"]
