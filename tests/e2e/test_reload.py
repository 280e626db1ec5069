"""Hot reload of the real aiges-load: SIGHUP and POST /admin/reload under traffic, broken
new builds, and --workers. The new builds are libecho_next.so and an edited copy of the
Python echo wrapper: both answer with a "version" node, and keep counters files of their
own (counters_file has "{version}" in it)."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import time

import aiohttp
import pytest

from tests.e2e.test_once import body, post
from tests.e2e.test_workers import call, log_events, wait_for, worker_pids
from tests.helpers import ECHO_WRAPPER, echo_wrapper_build, metric, metric_samples, \
    read_counters

pytestmark = pytest.mark.e2e

OLD = "echo/1.0.0"
NEXT = {"c": "echo/2.0.0-next", "py": "echo/2.0.0-py"}


def frame(text: str, status: int) -> str:
    return json.dumps({"payload": {"input": {"status": status, "text": base64.b64encode(
        text.encode()).decode()}}})


def replace(path, new) -> None:
    """Put a new build at ``path`` the safe way: a copy beside it, renamed over it (the
    running engine keeps its own file)."""
    staged = path.with_name(path.name + ".new")
    shutil.copyfile(new, staged)
    os.replace(staged, path)


@pytest.fixture
def reloadable(start, tmp_path, native_dir):
    """reloadable(kind, *flags) -> (service, engine path, new build, counters(version)):
    the echo engine copied to its own dir, admin reload on, private copies in tmp/."""
    def _serve(kind: str, *flags: str):
        engine_dir = tmp_path / "engine"
        engine_dir.mkdir()
        if kind == "c":
            engine = engine_dir / "libecho.so"
            shutil.copyfile(native_dir / "libecho.so", engine)
            new = native_dir / "libecho_next.so"
        else:
            engine = engine_dir / "wrapper.py"
            shutil.copyfile(ECHO_WRAPPER, engine)
            new = echo_wrapper_build(tmp_path / "next", NEXT["py"])
        config = tmp_path / "aiges.toml"
        config.write_text(f'[aiges]\nadminReload = true\ndrainTimeout = 20000\n[wrapper]\n'
                          f'counters_file = "{tmp_path}/counters-{{version}}.txt"\n')
        (tmp_path / "tmp").mkdir()
        service = start(str(engine), "-c", str(config), *flags,
                        env={"TMPDIR": str(tmp_path / "tmp")})

        def counters(version: str) -> dict:
            return read_counters(tmp_path / f"counters-{version.replace('/', '-')}.txt")

        return service, engine, new, counters
    return _serve


async def traffic(http, service, stop: asyncio.Event, answers: list) -> None:
    """One client's once requests back to back: (HTTP status, version node or None)."""
    while not stop.is_set():
        status, doc, _ = await post(http, service, body("x"))
        answers.append((status, doc.get("payload", {}).get("version", {}).get("text")))


async def health(http, service) -> dict:
    async with http.get(service.url + "/health") as resp:
        return await resp.json()


def events(service) -> list[dict]:
    return [json.loads(line) for line in service.log.splitlines() if line.startswith("{")]


async def until(predicate, timeout: float = 15, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("kind", ["c", "py"])
@pytest.mark.parametrize("trigger", ["signal", "admin"])
async def test_reload_under_traffic_loses_no_request_and_no_session(http, reloadable, tmp_path,
                                                                    kind, trigger):
    service, engine, new, counters = reloadable(kind)
    new_version = NEXT[kind]
    async with http.ws_connect(service.url + "/v1/svcName") as ws:
        await ws.send_str(frame("one ", 0))
        assert json.loads((await ws.receive()).data)["payload"]["input"]["text"] == "one "
        stop = asyncio.Event()
        clients: list[list] = [[] for _ in range(4)]
        tasks = [asyncio.create_task(traffic(http, service, stop, c)) for c in clients]
        await until(lambda: all(len(c) >= 3 for c in clients), what="no traffic")
        if trigger == "signal":
            replace(engine, new)  # a new build at the same path
            service.proc.send_signal(signal.SIGHUP)
        else:
            async with http.post(service.url + "/admin/reload",
                                 json={"engine": str(new)}) as resp:
                out = await resp.json()
                assert resp.status == 200, out
            assert (out["version"], out["generation"]) == (new_version, 2)
        await until(lambda: any(e["event"] == "engine reloaded" for e in events(service)),
                    what=service.log)
        assert (await health(http, service))["version"] == new_version
        await asyncio.sleep(0.3)
        # The old engine waits for the open session: not finished, one live handle.
        assert counters(OLD)["live_sessions"] == 1 and counters(OLD)["fini"] == 0
        await ws.send_str(frame("two ", 1))
        await ws.send_str(frame("three", 2))
        results = [json.loads(msg.data) async for msg in ws]
        assert [r["payload"]["input"]["text"] for r in results] == ["two ", "three"]
        assert ws.close_code == aiohttp.WSCloseCode.OK
        await until(lambda: any(e["event"] == "replaced engine closed" for e in events(service)),
                    what=service.log)
        await until(lambda: all(c[-1][1] == new_version for c in clients), what="no switch")
        stop.set()
        await asyncio.gather(*tasks)
    answers = [a for client in clients for a in client]
    assert [status for status, _ in answers] == [200] * len(answers)
    for client in clients:  # each client switches once, for good
        versions = [v for _, v in client]
        switch = versions.index(new_version)
        assert set(versions[:switch]) == {None} and set(versions[switch:]) == {new_version}
    old, now = counters(OLD), counters(new_version)
    # The session stayed on the old engine; its handles were all gone before wrapperFini.
    assert (old["create"], old["destroy"], old["live_sessions"], old["live_exec"]) == (1, 1, 0, 0)
    assert (old["init"], old["fini"]) == (1, 1)
    assert old["exec"] == sum(v is None for _, v in answers)
    assert now["exec"] == sum(v == new_version for _, v in answers) and now["create"] == 0
    lines = [(e["event"], e.get("generation")) for e in events(service)]
    assert lines.index(("engine finished (wrapperFini)", 1)) < lines.index(
        ("replaced engine closed", 1))
    assert list((tmp_path / "tmp").iterdir()) == []  # private copies: deleted once mapped
    assert service.terminate() == 0
    now = counters(new_version)
    assert (now["init"], now["fini"], now["live_exec"]) == (1, 1, 0)


async def test_a_broken_new_build_leaves_the_old_engine_serving(http, reloadable, native_dir,
                                                                tmp_path):
    service, engine, _, counters = reloadable("c")
    for library, status, text in [
            ("libmissing.so", 422, "missing symbol(s) wrapperExecFree"),
            ("libinitfail.so", 500, "wrapperInit failed: initfail: model file not found;"
                                    "code=12345")]:
        async with http.post(service.url + "/admin/reload",
                             json={"engine": str(native_dir / library)}) as resp:
            header = (await resp.json())["header"]
        assert (resp.status, header["code"]) == (status, 10901)
        assert text in header["message"] and "echo/1.0.0, keeps serving" in header["message"]
    replace(engine, native_dir / "libinitfail.so")
    service.proc.send_signal(signal.SIGHUP)
    failed = "engine reload failed; the old engine keeps serving"
    await until(lambda: len([e for e in events(service) if e["event"] == failed]) == 3,
                what=service.log)
    assert "initfail: model file not found" in [e for e in events(service)
                                                if e["event"] == failed][-1]["error"]
    status, doc, _ = await post(http, service, body("still here"))
    assert status == 200 and doc["payload"]["input"]["text"] == "still here"
    assert "version" not in doc["payload"]
    assert (await health(http, service))["generation"] == 1
    async with http.get(service.url + "/metrics") as resp:
        samples = metric_samples(await resp.text())
    assert metric(samples, "aiges_engine_reloads_total", result="failed") == 3
    assert metric(samples, "aiges_engine_info", version=OLD, path=str(engine),
                  generation="1") == 1
    assert list((tmp_path / "tmp").iterdir()) == []  # refused copies are deleted
    assert service.terminate() == 0
    assert (counters(OLD)["init"], counters(OLD)["fini"]) == (1, 1)


def test_every_worker_reloads_on_sighup_to_the_supervisor(start, tmp_path, native_dir):
    engine = tmp_path / "libecho.so"
    shutil.copyfile(native_dir / "libecho.so", engine)
    service = start(str(engine), "--workers", "2")
    pids = worker_pids(service)
    replace(engine, native_dir / "libecho_next.so")
    service.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: log_events(service, "engine reloaded on every worker"), what=service.log)
    versions = log_events(service, "engine reloaded on every worker")[0]["versions"]
    assert versions == {str(pid): NEXT["c"] for pid in pids}
    seen = {}
    for _ in range(40):  # new connections: both workers answer, both with the new build
        status, worker, doc = call(service)
        seen.setdefault(worker, set()).add(doc["payload"].get("version", {}).get("text"))
    assert seen == {str(pid): {NEXT["c"]} for pid in pids}
    replace(engine, native_dir / "libinitfail.so")
    service.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: log_events(service, "engine reload failed on some workers"),
             what=service.log)
    failed = log_events(service, "engine reload failed on some workers")[0]["failed"]
    assert set(failed) == {str(pid) for pid in pids}
    assert all("code=12345" in why for why in failed.values())
    assert call(service)[2]["payload"]["version"]["text"] == NEXT["c"]
    assert service.terminate() == 0
    assert len(log_events(service, "engine finished (wrapperFini)")) == 4  # 2 per worker
