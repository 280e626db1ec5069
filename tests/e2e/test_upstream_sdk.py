"""Upstream's streaming wrappers, unchanged, under aiges-load (issue 18).

Each example in tests/e2e/upstream_wrappers/ is a verbatim copy of an upstream wrapper
built on the SDK's stream helpers: aiges.stream (SessionManager + StreamHandleThread),
aiges.callback + aiges.worker + aiges.concurrent (ailab), its own thread pool with
aiges_embed.callback (awesome-wrapper), aiges.types + aiges_embed (the SDK's own
mock). One service per example streams over WebSocket and then over the HTTP session
API, and must stop cleanly on SIGTERM. Mocks of torch/PIL/langchain go on PYTHONPATH.
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent / "upstream_wrappers"
MOCKS = HERE / "mocks"
PNG = (HERE / "aiges_demo_stream_test" / "test_data" / "0.png").read_bytes()


def mocked_env(**extra: str) -> dict:
    path = os.pathsep.join(filter(None, [str(MOCKS), os.environ.get("PYTHONPATH", "")]))
    return {"PYTHONPATH": path, **extra}


def frame(key: str, kind: str, raw: bytes, status: int, **params) -> dict:
    doc: dict = {"header": {"appid": "test"}, "parameter": {"svcName": params},
                 "payload": {key: {"encoding": "png" if kind == "image" else "utf8",
                                   "status": status, kind: base64.b64encode(raw).decode()}}}
    return doc


@dataclass
class Example:
    folder: str
    frames: list[dict]
    per_frame: list[int]   # results each frame yields before the next one is sent
    key: str               # the output key
    env: dict | None = None

    @property
    def wrapper(self) -> str:
        return str(HERE / self.folder / "wrapper.py")


def texts(key: str, frames: list[tuple[str, str]]) -> list[dict]:
    statuses = [0] + [1] * (len(frames) - 2) + [2] if len(frames) > 1 else [3]
    return [frame(key, "text", t.encode(), s, **params)
            for (t, params), s in zip(frames, statuses, strict=True)]


EXAMPLES = {
    # SessionManager pool of one handle; 20 pushed results per write (Begin..End). The
    # session ends when the client's input has ended too: one frame, status End.
    "aiges_demo_stream_test": Example(
        "aiges_demo_stream_test", [frame("img", "image", PNG, 2, ctl="ok")], [20], "output_img"),
    # aiges.callback(resp, usrTag, sid) from an aiges.worker.Worker kept in a FixedPool.
    "ailab_chatgpt_langchain": Example(
        "ailab_chatgpt_langchain",
        texts("message", [("hi", {"api_key": "sk-test"}), ("how", {}), ("bye", {})]),
        [1, 1, 1], "response"),
    # Its own thread pool, aiges_embed.callback(resp, usrTag); results follow input status.
    "awesome_wrapper_noob_stream": Example(
        "awesome_wrapper_noob_stream", texts("input", [("hi", {}), ("there", {}), ("end", {})]),
        [1, 1, 1], "result", {"THREAD_POOL_SIZE": "2"}),
    # aiges.types + aiges_embed; wrapperCreate(params, sid) of 2022, a StreamHandleThread.
    "sdk_stream_mock": Example(
        "sdk_stream_mock", [frame("data", "image", PNG, s) for s in (0, 1, 2)], [1, 1, 1],
        "boxes"),
}


def outputs(results: list[dict], key: str) -> list[tuple[int, str]]:
    return [(r["header"]["status"], r["payload"][key].get("text") or
             r["payload"][key].get("image")) for r in results if key in r.get("payload", {})]


async def over_websocket(http, service, example: Example) -> tuple[list[dict], int]:
    """Sends one frame, waits for its results, then the next; collects until close."""
    results = []
    async with http.ws_connect(service.url + "/v1/svcName") as ws:
        for doc, count in zip(example.frames, example.per_frame, strict=True):
            await ws.send_str(json.dumps(doc))
            want = len(results) + count
            while len(results) < want:
                got = await ws.receive_json(timeout=10)
                assert got["header"]["code"] == 0, got
                if "payload" in got:  # not the ack of a first frame
                    results.append(got)
        assert (await ws.receive(timeout=10)).type.name in ("CLOSE", "CLOSED")
        return results, ws.close_code


async def over_http(http, service, example: Example) -> list[dict]:
    """The same conversation through POST/GET /v1/svcName/sessions."""
    base = service.url + "/v1/svcName/sessions"
    results: list[dict] = []
    sid, ended, want = None, False, 0
    for doc, count in zip(example.frames, example.per_frame, strict=True):
        url = base if sid is None else f"{base}/{sid}"
        for _ in range(20):
            async with http.post(url, data=json.dumps(doc)) as resp:
                out = await resp.json()
            # SessionManager wrappers free their handle on their own thread just after the
            # last result of the previous session (upstream's design): a create may come
            # a moment too early and find none (10905).
            if sid is not None or out["header"]["code"] != 10905:
                break
            await asyncio.sleep(0.05)
        assert resp.status == 200, out
        sid = out["header"]["sid"]
        results += out["results"]
        ended = out["header"].get("ended", False)
        want += count
        while len(results) < want and not ended:
            async with http.get(f"{base}/{sid}", params={"wait_ms": "5000"}) as resp:
                out = await resp.json()
                assert resp.status == 200, out
            results += out["results"]
            ended = out["header"]["ended"]
    assert ended
    return results


@pytest.mark.parametrize("name", EXAMPLES)
async def test_upstream_stream_wrapper_over_websocket_and_http(http, start, name):
    example = EXAMPLES[name]
    service = start(example.wrapper, env=mocked_env(**(example.env or {})))
    ws_results, code = await over_websocket(http, service, example)
    assert code == 1000
    http_results = await over_http(http, service, example)
    for results in (ws_results, http_results):
        got = outputs(results, example.key)
        assert len(got) == sum(example.per_frame), got
        assert got[-1][0] in (2, 3), got  # the session ended on the wrapper's final result
        check_content(name, got)
    assert service.terminate() == 0, service.log


def check_content(name: str, got: list[tuple[int, str]]) -> None:
    if name == "aiges_demo_stream_test":
        assert [s for s, _ in got] == [0] + [1] * 18 + [2]
        assert json.loads(got[0][1]) == {"result": 7, "msg": "result is: 7"}
    elif name == "ailab_chatgpt_langchain":
        # upstream's wrapper leaves the default status (Once) on the answer to End
        assert got == [(1, "mock answer 1 to: hi"), (1, "mock answer 2 to: how"),
                       (3, "mock answer 3 to: bye")]
    elif name == "awesome_wrapper_noob_stream":
        assert [(s, json.loads(t)) for s, t in got] == [
            (0, {"data": "hi", "length": 2}), (1, {"data": "there", "length": 5}),
            (2, {"data": "end", "length": 3})]
    else:
        assert [s for s, _ in got] == [0, 1, 2]
        assert all(base64.b64decode(data) == PNG for _, data in got)


def test_self_run_of_aiges_demo_logs_an_undeclared_key_and_passes(tmp_path):
    # Upstream's run_stream only logs what check_resp finds; the demo pushes
    # "output_img" though its UserResponse declares "result".
    wrapper = EXAMPLES["aiges_demo_stream_test"].wrapper
    out = subprocess.run([sys.executable, wrapper], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60, env={**os.environ, **mocked_env()})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "output_img is not declared in responseCls" in out.stderr
    assert "wrapper.py has been verified" in out.stderr
    assert not (tmp_path / "log").exists()


def test_schema_of_the_ailab_wrapper_runs_without_pydantic(tmp_path):
    # Its __main__ is `Wrapper(legacy=False).schema()`.
    wrapper = EXAMPLES["ailab_chatgpt_langchain"].wrapper
    out = subprocess.run([sys.executable, "-c", f"""
import runpy, json, sys
sys.modules['pydantic'] = sys.modules['jinja2'] = None   # must not be needed
ns = runpy.run_path({wrapper!r}, run_name="wrapper")
print(ns["Wrapper"](legacy=False).schema())
"""], cwd=tmp_path, capture_output=True, text=True, timeout=60, env={**os.environ, **mocked_env()})
    assert out.returncode == 0, out.stderr
    meta = json.loads(out.stdout)["meta"]
    assert (meta["serviceId"], meta["version"], meta["route"], meta["call_type"]) == \
        ("chatgpt", "backup.0", "/backup.0/private/chatgpt", 1)
    assert meta["chatgpt"] == {"input": {"message": {"dataType": "text"}},
                               "accept": {"response": {"dataType": "text"}}}
