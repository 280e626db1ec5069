"""Hot reload inside one app (no shared library): Python echo wrappers served through
aiohttp's test server; new builds are edited copies of python_examples/echo/wrapper.py."""
from __future__ import annotations

import asyncio
import base64
import logging
import sys

import pytest

from aiges.cli import load_config, parser
from aiges.config import Config
from aiges.python import load as load_python
from aiges.server import create_app
from aiges.service.reload import reload
from aiges.server.state import STATE
from aiges.supervisor import ReloadRound
from tests.helpers import ECHO_WRAPPER, echo_wrapper_build, metric, metric_samples, read_counters

NEXT = "echo/2.0.0-py"


def once_doc(text: str = "hi") -> dict:
    return {"payload": {"input": {"status": 3, "text": base64.b64encode(text.encode()).decode()}}}


def frame(text: str, status: int) -> dict:
    return {"payload": {"input": {"status": status,
                                  "text": base64.b64encode(text.encode()).decode()}}}


@pytest.fixture
def counters(tmp_path):
    """The counters file of one echo version (the wrappers put their version in its name)."""
    return lambda version: read_counters(tmp_path / f"counters-{version.replace('/', '-')}.txt")


@pytest.fixture
async def served(aiohttp_client, tmp_path):
    async def serve(**config):
        wrapper = {"counters_file": str(tmp_path / "counters-{version}.txt")}
        app = create_app(Config(instances=2, wrapper=wrapper, drain_timeout_ms=5000, **config),
                         load_python(ECHO_WRAPPER))
        return await aiohttp_client(app)
    return serve


async def answer_version(client) -> str | None:
    resp = await client.post("/v1/svcName", json=once_doc())
    assert resp.status == 200
    out = (await resp.json())["payload"]
    return out["version"]["text"] if "version" in out else None


async def retired(client) -> None:
    """Until every replaced generation has finished (wrapperFini) and closed."""
    state = client.app[STATE]
    for _ in range(500):
        if not state.generations.retiring:
            return
        await asyncio.sleep(0.01)
    raise TimeoutError("the old generation did not retire")


async def test_admin_reload_is_off_by_default(served):
    client = await served()
    resp = await client.post("/admin/reload", json={})
    assert resp.status == 403
    header = (await resp.json())["header"]
    assert header["code"] == 10120 and "adminReload" in header["message"]
    health = await (await client.get("/health")).json()
    assert (health["version"], health["generation"], health["reloads"]) == ("echo/1.0.0", 1, 0)


async def test_reload_swaps_the_engine_and_says_so(served, tmp_path, counters):
    client = await served(admin_reload=True)
    assert await answer_version(client) is None
    path = echo_wrapper_build(tmp_path / "next", NEXT)
    resp = await client.post("/admin/reload", json={"engine": str(path)})
    assert resp.status == 200, await resp.text()
    out = await resp.json()
    assert out["header"]["code"] == 0
    assert (out["version"], out["generation"], out["reloads"]) == (NEXT, 2, 1)
    assert out["previous"] == {"engine": str(ECHO_WRAPPER), "version": "echo/1.0.0",
                               "generation": 1}
    assert await answer_version(client) == NEXT
    health = await (await client.get("/health")).json()
    # The engine's file name only: /health does not disclose paths ([aiges] healthDetail)
    assert health == {"status": "ok", "engine": path.name, "version": NEXT, "generation": 2,
                      "reloads": 1}
    await retired(client)
    samples = metric_samples(await (await client.get("/metrics")).text())
    assert metric(samples, "aiges_engine_reloads_total", result="ok") == 1
    assert metric(samples, "aiges_engine_info", version=NEXT, path=str(path),
                  generation="2") == 1
    assert metric(samples, "aiges_engine_info", version="echo/1.0.0", path=str(ECHO_WRAPPER),
                  generation="1") == 0
    assert metric(samples, "aiges_engines_retiring") == 0
    old = counters("echo/1.0.0")
    assert (old["init"], old["fini"], old["exec"]) == (1, 1, 1)
    assert counters(NEXT)["fini"] == 0


async def test_an_open_http_session_finishes_on_the_old_engine(served, tmp_path, counters):
    client = await served(admin_reload=True)
    base = "/v1/svcName/sessions"
    sid = (await (await client.post(base, json=frame("one ", 0))).json())["header"]["sid"]
    path = echo_wrapper_build(tmp_path / "next", NEXT)
    assert (await client.post("/admin/reload", json={"engine": str(path)})).status == 200
    state = client.app[STATE]
    assert [g.number for g in state.generations.retiring] == [1]  # waits for the session
    samples = metric_samples(await (await client.get("/metrics")).text())
    assert metric(samples, "aiges_sessions_active") == 1
    assert metric(samples, "aiges_engines_retiring") == 1
    out = await (await client.post(f"{base}/{sid}", json=frame("two", 2))).json()
    for _ in range(20):
        if out["header"]["ended"]:
            break
        out = await (await client.get(f"{base}/{sid}", params={"wait_ms": "200"})).json()
    assert out["header"]["ended"] is True
    await retired(client)
    old = counters("echo/1.0.0")
    assert (old["create"], old["destroy"], old["fini"]) == (1, 1, 1)
    assert counters(NEXT)["create"] == 0
    assert (await client.get(f"{base}/{sid}")).status == 404  # ended: 10101 as before


BROKEN = "from aiges.sdk import WrapperBase\n\nclass Wrapper(WrapperBase:\n"


async def test_failed_reloads_leave_the_old_engine_serving(served, tmp_path, counters):
    client = await served(admin_reload=True)
    cases = [
        ({"engine": str(tmp_path / "nothere.py")}, 422, 10901, "no such file"),
        ({"engine": str(echo_wrapper_build(tmp_path / "syntax", NEXT, source=BROKEN))},
         422, 10901, "SyntaxError"),
        ({"engine": str(echo_wrapper_build(tmp_path / "initfail", NEXT, init_ret=7))},
         500, 10901, "wrapperInit failed: echo: failure requested;code=7"),
        (b"{not json", 400, 10000, "not JSON"),
        ({"engine": 5}, 400, 10107, "engine must be a path"),
    ]
    for body, status, code, text in cases:
        kw = {"data": body, "headers": {"Content-Type": "application/json"}} \
            if isinstance(body, bytes) else {"json": body}
        resp = await client.post("/admin/reload", **kw)
        header = (await resp.json())["header"]
        assert (resp.status, header["code"]) == (status, code), header
        assert text in header["message"]
        if status >= 422:
            assert "generation 1, echo/1.0.0, keeps serving" in header["message"]
    assert await answer_version(client) is None
    health = await (await client.get("/health")).json()
    assert (health["generation"], health["reloads"]) == (1, 0)
    samples = metric_samples(await (await client.get("/metrics")).text())
    assert metric(samples, "aiges_engine_reloads_total", result="failed") == 3
    assert metric(samples, "aiges_engine_reloads_total", result="ok") == 0
    assert counters(NEXT)["fini"] == 0  # the engine whose init failed: never finished


async def test_one_reload_at_a_time(served, tmp_path):
    client = await served(admin_reload=True)
    slow = echo_wrapper_build(tmp_path / "slow", NEXT, init_delay_s=0.5)
    first = asyncio.create_task(client.post("/admin/reload", json={"engine": str(slow)}))
    await asyncio.sleep(0.2)
    busy = await client.post("/admin/reload", json={})
    assert busy.status == 409 and "already running" in (await busy.json())["header"]["message"]
    assert await answer_version(client) is None  # served meanwhile by generation 1
    assert (await first).status == 200
    assert await answer_version(client) == NEXT


async def test_shutdown_during_a_reload_finishes_every_generation_once(served, tmp_path,
                                                                      counters, caplog):
    client = await served()
    state = client.app[STATE]
    slow = echo_wrapper_build(tmp_path / "slow", NEXT, init_delay_s=0.3)
    reloading = asyncio.create_task(reload(state, str(slow), "test"))
    await asyncio.sleep(0.1)
    with caplog.at_level(logging.INFO):
        await client.close()  # shutdown: waits for the reload, then finishes both
    assert (await reloading)["generation"] == 2
    for version in ("echo/1.0.0", NEXT):
        assert (counters(version)["init"], counters(version)["fini"]) == (1, 1)
    finished = [r.generation for r in caplog.records
                if r.getMessage() == "engine finished (wrapperFini)"]
    assert sorted(finished) == [1, 2]
    assert state.generations.all()[0].finished


def test_a_reload_imports_the_wrapper_afresh(tmp_path):
    path = echo_wrapper_build(tmp_path / "w", NEXT)
    first = load_python(path)
    path.write_text(path.read_text().replace(NEXT, "echo/3.0.0"))
    cached = load_python(path, private=False)
    fresh = load_python(path, private=True)
    assert fresh.version() == "echo/3.0.0" and cached.version() == "echo/3.0.0"
    assert type(fresh.wrapper) is not type(cached.wrapper)
    module = type(fresh.wrapper).__module__
    assert module in sys.modules and module != type(first.wrapper).__module__
    fresh.close()
    assert module not in sys.modules  # a replaced wrapper's module can be freed
    assert sys.path.count(str(path.parent)) == 1


def test_admin_reload_config_and_flag(tmp_path):
    (tmp_path / "aiges.toml").write_text("[aiges]\nadminReload = true\n")
    args = parser().parse_args(["x.so", "-c", str(tmp_path / "aiges.toml")])
    assert load_config(args).admin_reload is True
    args = parser().parse_args(["x.so", "-c", str(tmp_path / "aiges.toml"), "--no-admin-reload"])
    assert load_config(args).admin_reload is False
    assert load_config(parser().parse_args(["x.so", "--admin-reload"])).admin_reload is True
    assert Config().admin_reload is False


def test_a_reload_round_waits_for_every_worker():
    ok = {"ok": True, "version": "v2"}
    rnd = ReloadRound([11, 12, 13])
    assert not rnd.add(11, ok)
    assert not rnd.add(11, {"ok": False, "error": "again"})  # only the first report counts
    assert not rnd.add(99, ok)  # not asked (started after the SIGHUP)
    assert not rnd.add(12, {"ok": False, "error": "wrapperInit failed"})
    assert rnd.waiting == [13]
    assert rnd.add(13, None)  # exited
    assert rnd.done
    assert rnd.reloaded() == {"11": "v2"}
    assert rnd.failed() == {"12": "wrapperInit failed",
                            "13": "the worker exited before it reloaded"}


async def test_admin_reload_refuses_other_origins_and_wants_json(served):
    # A page of another origin can send a text/plain POST without a preflight: refused,
    # and nothing in the answer lets that page read it.
    client = await served(admin_reload=True)
    resp = await client.post("/admin/reload", data="{}", headers={
        "Content-Type": "text/plain", "Origin": "http://evil.example"})
    assert resp.status == 415 and "application/json" in (await resp.json())["header"]["message"]
    assert "Access-Control-Allow-Origin" not in resp.headers
    preflight = await client.options("/admin/reload", headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in preflight.headers
    assert "Access-Control-Allow-Origin" in (await client.options("/v1/svcName")).headers
    assert await answer_version(client) is None  # nothing was reloaded


async def test_admin_token_when_set(served):
    client = await served(admin_reload=True, admin_token="s3cret")
    assert (await client.post("/admin/reload", json={})).status == 403
    resp = await client.post("/admin/reload", json={},
                             headers={"X-Aiges-Admin-Token": "wrong"})
    assert resp.status == 403 and "X-Aiges-Admin-Token" in (await resp.json())["header"]["message"]
    resp = await client.post("/admin/reload", json={},
                             headers={"X-Aiges-Admin-Token": "s3cret"})
    assert resp.status == 200 and "Access-Control-Allow-Origin" not in resp.headers


async def test_health_names_no_path_and_server_no_versions(served):
    client = await served()
    resp = await client.get("/health")
    assert (await resp.json())["engine"] == "wrapper.py"
    assert resp.headers["Server"] == "aiges"
    detail = await served(health_detail=True)
    assert (await (await detail.get("/health")).json())["engine"] == str(ECHO_WRAPPER)
