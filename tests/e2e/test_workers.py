"""aiges-load --workers N: a supervisor, N workers on one port, restarts, shutdown, --gpus."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.test_once import body, post

pytestmark = pytest.mark.e2e

GPU_WRAPPER = '''\
import os

from aiges.core.types import DataOnce, DataText
from aiges.dto import Response, ResponseData
from aiges.sdk import WrapperBase


class Wrapper(WrapperBase):
    serviceId = "gpu"
    version = "gpu/1.0.0"

    def wrapperInit(self, config) -> int:
        return 0

    def wrapperFini(self) -> int:
        return 0

    def wrapperError(self, ret: int) -> str:
        return "gpu: failed"

    def wrapperOnceExec(self, params, reqData, usrTag="", persId=0) -> Response:
        out = ResponseData(key="gpu", type=DataText, status=DataOnce)
        out.setData(os.environ.get("CUDA_VISIBLE_DEVICES", "unset").encode())
        return Response(list=[out])
'''


def call(service, doc: dict | None = None) -> tuple[int, str, dict]:
    """One request on a new connection (so SO_REUSEPORT may pick another worker):
    (status, X-Aiges-Worker, JSON answer)."""
    req = urllib.request.Request(service.url + "/v1/svcName",
                                 data=json.dumps(doc or body()).encode())
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, resp.headers.get("X-Aiges-Worker"), json.load(resp)


def log_events(service, event: str) -> list[dict]:
    lines = [json.loads(line) for line in service.log.splitlines() if line.startswith("{")]
    return [line for line in lines if line["event"] == event]


def worker_pids(service) -> list[int]:
    """Once all are ready (/health answers as soon as the first one is)."""
    event = f"ready on {service.url}/v1/svcName (API docs: /docs)"
    wait_for(lambda: log_events(service, event), what=service.log)
    ready = log_events(service, event)
    assert len(ready) == 1, service.log  # one line for all workers
    return ready[0]["worker_pids"]


def gone(pid: int) -> bool:
    """The process has exited (a zombie not yet reaped by init counts as exited)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def wait_for(predicate, timeout: float = 15, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def seen_workers(service, requests: int = 40) -> set[str]:
    seen = set()
    for _ in range(requests):
        status, worker, _ = call(service)
        assert status == 200
        seen.add(worker)
    return seen


def test_requests_spread_over_the_workers(start, echo_so):
    service = start(echo_so, "--workers", "2")
    pids = worker_pids(service)
    assert len(set(pids)) == 2 and service.proc.pid not in pids
    assert log_events(service, "supervisor started")[0]["pid"] == service.proc.pid
    assert seen_workers(service) == {str(pid) for pid in pids}


def test_single_process_has_no_worker_header(start, echo_so):
    service = start(echo_so)
    assert call(service)[1] is None
    assert "supervisor" not in service.log


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGKILL])
def test_a_dead_worker_is_logged_and_restarted_while_the_other_serves(start, echo_so, sig):
    service = start(echo_so, "--workers", "2")
    victim, survivor = worker_pids(service)
    os.kill(victim, sig)
    wait_for(lambda: log_events(service, "worker died"), what="no 'worker died' line")
    died = log_events(service, "worker died")[0]
    assert (died["pid"], died["exit"]) == (victim, sig.name)
    # The port keeps answering while the dead worker is away.
    assert seen_workers(service, 20) <= {str(survivor)} | {
        str(e["pid"]) for e in log_events(service, "worker restarted")}
    wait_for(lambda: log_events(service, "worker restarted"), what="no restart")
    new = log_events(service, "worker restarted")[0]["pid"]
    assert new not in (victim, survivor) and not gone(new)
    wait_for(lambda: str(new) in seen_workers(service, 10), what="restarted worker unused")
    assert service.terminate() == 0


def test_sigterm_drains_every_worker_and_exits_0(start, echo_so):
    service = start(echo_so, "--workers", "2")
    pids = worker_pids(service)
    assert service.terminate() == 0
    assert all(gone(pid) for pid in pids)
    assert len(log_events(service, "engine finished (wrapperFini)")) == 2


async def test_sigterm_under_load_loses_no_request(http, start, echo_so):
    service = start(echo_so, "--workers", "2")
    worker_pids(service)
    requests = [asyncio.create_task(post(http, service, body(f"r{i}", params={"delay_ms": 300})))
                for i in range(20)]
    await asyncio.sleep(0.15)
    service.proc.send_signal(signal.SIGTERM)
    answers = await asyncio.gather(*requests)
    assert [a[0] for a in answers] == [200] * 20
    assert len({a[2]["X-Aiges-Worker"] for a in answers}) == 2
    assert service.wait_exit() == 0


def test_a_killed_supervisor_takes_its_workers_along(start, echo_so):
    service = start(echo_so, "--workers", "2")
    pids = worker_pids(service)
    service.proc.send_signal(signal.SIGKILL)
    service.proc.wait()
    wait_for(lambda: all(gone(pid) for pid in pids), what=f"workers {pids} outlived it")


def test_gpus_are_handed_out_one_per_worker(start, tmp_path):
    wrapper = tmp_path / "wrapper.py"
    wrapper.write_text(GPU_WRAPPER)
    service = start(str(wrapper), "--workers", "2", "--gpus", "0,1")
    pids = worker_pids(service)
    mapping = log_events(service, "gpu mapping")[0]["CUDA_VISIBLE_DEVICES"]
    assert mapping == {"worker 0": "0", "worker 1": "1"}
    answers = {}
    for _ in range(40):
        status, worker, doc = call(service)
        answers.setdefault(worker, set()).add(doc["payload"]["gpu"]["text"])
    assert answers == {str(pids[0]): {"0"}, str(pids[1]): {"1"}}


def test_gpus_with_one_worker_and_workers_from_the_config(start, tmp_path):
    wrapper = tmp_path / "wrapper.py"
    wrapper.write_text(GPU_WRAPPER)
    single = start(str(wrapper), "--gpus", "3")
    assert call(single)[2]["payload"]["gpu"]["text"] == "3"
    config = tmp_path / "workers.toml"
    config.write_text('[aiges]\nworkers = 2\ngpus = "5"\n')
    service = start(str(wrapper), "-c", str(config))
    assert len(worker_pids(service)) == 2
    assert {call(service)[2]["payload"]["gpu"]["text"] for _ in range(10)} == {"5"}


def test_a_worker_failing_at_start_up_stops_the_supervisor(start, native_dir):
    service = start(str(native_dir / "libinitfail.so"), "--workers", "2", ready=False)
    assert service.wait_exit() == 1
    assert "a worker exited during start-up" in service.log


def test_port_in_use_with_workers(start, echo_so):
    first = start(echo_so)
    second = start(echo_so, "--workers", "2", "--port", str(first.port), ready=False)
    assert second.wait_exit() == 1
    assert "cannot listen" in second.log


def supervised(start, engine: str, tmp_path, toml: str = "") -> tuple:
    path = tmp_path / "aiges.toml"
    path.write_text(toml)
    service = start(engine, "--workers", "2", "-c", str(path))
    return service, worker_pids(service)


def try_call(service, doc: dict | None = None, timeout: float = 5) -> str | None:
    """The worker that answered on a new connection, None when none did in time."""
    req = urllib.request.Request(service.url + "/v1/svcName",
                                 data=json.dumps(doc or body()).encode())
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.headers.get("X-Aiges-Worker")
    except OSError:
        return None


def test_a_worker_hung_on_its_event_loop_is_replaced(start, native_dir, tmp_path):
    """An engine call that hangs inline (after a fast streak put exec on the loop)
    stops the worker's loop while its socket keeps getting connections: the supervisor
    sees its beats stop, logs what it ran, kills it and starts another."""
    service, pids = supervised(start, str(native_dir / "libfaulty.so"), tmp_path,
                               "[aiges]\nworkerStallS = 2\n")
    for _ in range(200):  # ~100 fast calls each: exec runs inline on both loops
        assert try_call(service) is not None
    def hang() -> None:
        try_call(service, body(params={"fault": "hang"}), timeout=30)

    sent = time.monotonic()
    threading.Thread(target=hang, daemon=True).start()
    wait_for(lambda: log_events(service, "worker restarted"), timeout=2 + 2 + 5,
             what=service.log)
    stalled = log_events(service, "worker stalled")
    assert len(stalled) == 1, service.log
    assert stalled[0]["pid"] in pids
    assert [call["op"] for call in stalled[0]["running"]] == ["exec"]
    died = log_events(service, "worker died")[0]
    assert (died["exit"], died["reason"], died["restart_in_s"]) == ("SIGKILL", "stalled", 0.0)
    # Detected and replaced within workerStallS + 2 s of the hang.
    assert 2 <= stalled[0]["silent_s"] < 3
    assert time.monotonic() - sent < 2 + 2, time.monotonic() - sent
    answered = [try_call(service, timeout=5) for _ in range(20)]
    assert None not in answered, answered
    metrics = urllib.request.urlopen(service.url + "/metrics", timeout=5).read().decode()
    assert 'aiges_worker_restarts_total{reason="stalled"} 1.0' in metrics
    assert 'aiges_worker_restarts_total{reason="died"} 0.0' in metrics


def test_a_crash_loop_leaves_the_port_served(start, native_dir, tmp_path):
    """A request that crashes its worker, every 0.5 s for 20 s: workers killed by a
    request are restarted at once, so one always listens; the supervisor names the
    request each one died on."""
    service, _ = supervised(start, str(native_dir / "libfaulty.so"), tmp_path)
    poison = body(params={"fault": "crash"})
    stop = time.monotonic() + 20

    def crash() -> None:
        while time.monotonic() < stop:
            try_call(service, poison, timeout=2)
            time.sleep(0.5)

    thread = threading.Thread(target=crash)
    thread.start()
    probes = []
    while time.monotonic() < stop:
        try:
            with urllib.request.urlopen(service.url + "/health", timeout=2) as resp:
                probes.append(resp.status == 200)
        except OSError:
            probes.append(False)
        time.sleep(0.05)
    thread.join()
    died = log_events(service, "worker died")
    assert len(died) >= 20, service.log
    # A probe the crashing worker had already accepted dies with it (SO_REUSEPORT
    # spreads connections over every worker's socket): about 1 in 20 here, 40 crashes
    # in 20 s; with no worker listening, none would pass.
    assert sum(probes) / len(probes) >= 0.9, (sum(probes), len(probes))
    assert all(d["restart_in_s"] == 0 and d["exit"] == "SIGSEGV" for d in died)
    assert all([c["op"] for c in d["running"]] == ["exec"] for d in died)
    assert len({d["running"][0]["sid"] for d in died}) == len(died)
    metrics = urllib.request.urlopen(service.url + "/metrics", timeout=5).read().decode()
    restarts = [line for line in metrics.splitlines()
                if line.startswith('aiges_worker_restarts_total{reason="died"}')]
    assert float(restarts[0].split()[-1]) == len(died)
