"""aiges on Ray Serve, on a real two-node Ray cluster (tests/ray_serve/conftest.py): the
echo engine (build/native_examples/libecho.so) served by replicas on both nodes,
through Serve's HTTP proxy, with aiges' protocol and errors.

What Ray does when a replica's process is killed, as these tests observe it: the proxy
stops routing to the dead replica at once (a request that picks it is retried on the
live one), so sequential requests keep getting 200 from the other node; Serve's
controller notices the death within seconds and starts a replacement on the same
node, which serves again once its engine is initialised. A request running inside
the killed process at that moment would fail: the tests send one at a time. A replica
whose every instance is stuck fails ``check_health``, and Serve replaces it after three
failed checks in a row.
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from aiges.config import Config
from tests.helpers import AIGES_LOAD

# Ray's own modules warn about pydantic deprecations on import.
pytestmark = [pytest.mark.ray, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

SERVICE = "svcName"


def call(url: str, body: bytes | None = None, method: str = "POST"):
    """(status, headers, body) of one request; HTTP errors are answers too."""
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def request(text: str, **params) -> bytes:
    return json.dumps({"parameter": {SERVICE: params},
                       "payload": {"input": {"text": base64.b64encode(text.encode()).decode()}}}
                      ).encode()


def once(url: str, text: str, **params):
    status, headers, body = call(url, request(text, **params))
    return status, headers, json.loads(body)


def replica(headers) -> tuple[str, int]:
    return headers["X-Aiges-Node"], int(headers["X-Aiges-Worker"])


def test_requests_spread_over_both_nodes_and_a_killed_replica_is_survived(
        ray_cluster, serve_port, echo_so):
    from ray import serve

    from aiges.ray import RayOptions, deploy

    cluster, nodes = ray_cluster
    config = Config(host="127.0.0.1", port=serve_port, instances=2, access_log=False)
    # One replica per node: Serve must place them on both machines.
    deploy(echo_so, config, RayOptions(replicas=2, max_replicas_per_node=1,
                                       proxy_location="HeadOnly"))
    url = f"http://127.0.0.1:{serve_port}/v1/{SERVICE}"
    try:
        served: dict[str, set[int]] = {}
        for i in range(30):
            status, headers, doc = once(url, f"hello {i}")
            assert status == 200 and doc["payload"]["input"]["text"] == f"hello {i}"
            node, pid = replica(headers)
            served.setdefault(node, set()).add(pid)
        assert set(served) == nodes, "requests did not reach a replica on each node"
        assert all(len(pids) == 1 for pids in served.values())

        head = cluster.head_node.node_id
        victim_node = next(n for n in nodes if n != head)
        (victim,) = served[victim_node]
        os.kill(victim, signal.SIGKILL)

        statuses, replacement, started = [], None, time.monotonic()
        while replacement is None:
            assert time.monotonic() - started < 120, "no replacement replica in 120 s"
            status, headers, doc = once(url, "still there?")
            statuses.append(status)
            node, pid = replica(headers)
            assert pid != victim
            if node == victim_node:
                replacement = pid
            time.sleep(0.05)
        # Answered throughout, by the head node's replica until the new one came up.
        assert set(statuses) == {200}, statuses
        print(f"replacement replica after {time.monotonic() - started:.1f} s, "
              f"{len(statuses)} requests answered meanwhile")
    finally:
        serve.delete(SERVICE)


def test_a_replica_whose_every_instance_is_stuck_fails_its_health_check_and_is_replaced(
        ray_cluster, serve_port, native_dir):
    from ray import serve

    from aiges.ray import RayOptions, deploy

    # One instance; a call that outlives its request keeps it (a C call cannot be cut).
    # libfaulty's hang ignores wrapperCancel (libecho's delay_ms would stop at the timeout).
    config = Config(host="127.0.0.1", port=serve_port, instances=1, once_timeout_ms=300,
                    wait_ms=200, drain_timeout_ms=1000, access_log=False)
    deploy(str(native_dir / "libfaulty.so"), config, RayOptions(replicas=1, proxy_location="HeadOnly",
                                       health_check_period_s=1, health_check_timeout_s=5))
    url = f"http://127.0.0.1:{serve_port}/v1/{SERVICE}"
    try:
        status, headers, _ = once(url, "x")
        assert status == 200
        _, stuck = replica(headers)
        status, _, doc = once(url, "x", fault="hang")
        assert (status, doc["header"]["code"]) == (504, 10102)
        assert call(url + "/ready", method="GET")[::2] == (503, b'{"status":"stuck"}')

        started = time.monotonic()
        while True:
            assert time.monotonic() - started < 90, "the stuck replica was not replaced"
            status, headers, body = call(url, request("back?"))
            if status == 200:
                break
            # 429: its one instance is stuck (10110); 503: the replica is being replaced.
            assert status in (429, 503), (status, body)
            time.sleep(0.2)
        assert replica(headers)[1] != stuck
        print(f"stuck replica replaced after {time.monotonic() - started:.1f} s")
    finally:
        serve.delete(SERVICE)


@pytest.fixture
def cli(ray_cluster, serve_port, tmp_path):
    """cli(engine, *flags): aiges-load ENGINE --ray against the cluster, as
    (process, log path); killed (group) at the end if still running."""
    cluster, _ = ray_cluster
    toml = tmp_path / "aiges.toml"
    # drainTimeout: Serve gives a replica it never placed the whole graceful shutdown
    # (drain + 5 s) before it can delete the application.
    toml.write_text('[aiges]\nmaxBody = 4096\ndrainTimeout = 1000\n'
                    '[ray]\nmaxReplicasPerNode = 1\nproxyLocation = "HeadOnly"\n')
    log_path = tmp_path / "aiges-load.log"
    procs = []

    def _start(engine: str, *flags: str):
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [AIGES_LOAD, engine, "-c", str(toml), "--ray", "--address", cluster.address,
                 "--host", "127.0.0.1", "--port", str(serve_port), *flags],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp_path)
        procs.append(proc)
        return proc, log_path

    yield _start
    killed = False
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            killed = True
    if killed:  # nothing of aiges-load's ran: the application stays on the cluster
        from ray import serve

        serve.delete(SERVICE)


def wait_for_line(proc, log_path: Path, text: str, timeout: float = 150) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = log_path.read_text(errors="replace")
        if text in log:
            return log
        assert proc.poll() is None, f"aiges-load exited {proc.returncode}:\n{log}"
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} in {timeout} s:\n{log_path.read_text(errors='replace')}")


def test_aiges_load_ray_serves_the_protocol_and_its_errors_and_stops_on_sigterm(
        cli, ray_cluster, serve_port, echo_so):
    from ray import serve

    proc, log_path = cli(echo_so, "--replicas", "2", "--instances", "2",
                         "--once-timeout-ms", "500")
    url = f"http://127.0.0.1:{serve_port}/v1/{SERVICE}"
    wait_for_line(proc, log_path, f"ready on {url}")

    pids = set()
    for i in range(10):
        status, headers, doc = once(url, "hi", lang="en")
        assert status == 200 and doc["header"]["code"] == 0
        assert json.loads(doc["payload"]["params"]["text"])["lang"] == "en"
        assert headers["Access-Control-Allow-Origin"] == "*"
        pids.add(replica(headers)[1])
    assert len(pids) == 2

    def error(body: bytes | None, method="POST", path=""):
        status, headers, raw = call(url + path, body, method)
        doc = json.loads(raw)
        assert doc["header"]["sid"] is not None and headers["Content-Type"] == "application/json"
        return status, doc["header"]["code"], doc["header"]["message"]

    assert error(b"{not json")[:2] == (400, 10000)
    assert error(b'{"payload":{"input":{"text":"not base64!"}}}')[:2] == (400, 10001)
    assert error(b'{"payload":{}}')[:2] == (400, 10009)
    assert error(b"x" * 5000)[:2] == (413, 10009)  # [aiges] maxBody = 4096
    assert error(None, "GET", "/nowhere")[:2] == (404, 10003)
    status, doc = once(url, "x", fail=7)[0::2]
    assert (status, doc["header"]["code"]) == (500, 10909)
    assert doc["header"]["message"].endswith(";code=7")
    status, doc = once(url, "x", delay_ms=2000)[0::2]  # --once-timeout-ms 500
    assert (status, doc["header"]["code"]) == (504, 10102)
    assert call(url + "/ready", method="GET")[::2] == (200, b'{"status":"ready"}')
    assert call(url + "/health", method="GET")[::2] == (200, b'{"status":"ok"}')
    status, headers, _ = call(url, method="OPTIONS")
    assert status == 204 and "POST" in headers["Access-Control-Allow-Methods"]
    # A WebSocket session is refused before the upgrade with aiges' JSON, not a bare 500.
    status, doc = websocket_upgrade(serve_port, f"/v1/{SERVICE}")
    assert (status, doc["header"]["code"]) == (501, 10003), doc
    assert "--workers" in doc["header"]["message"]

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(90) == 0, log_path.read_text(errors="replace")
    assert SERVICE not in serve.status().applications
    cluster, _ = ray_cluster
    for pid in pids:  # each replica ran wrapperFini before its process ended
        (err,) = Path(cluster.head_node.get_session_dir_path(), "logs").glob(
            f"worker-*-{pid}.err")
        assert "engine finished (wrapperFini)" in err.read_text(errors="replace")


def test_an_engine_that_cannot_start_fails_the_deployment_with_its_text(
        cli, ray_cluster, native_dir):
    from ray import serve

    proc, log_path = cli(str(native_dir / "libinitfail.so"))
    assert proc.wait(150) == 1
    log = log_path.read_text(errors="replace")
    failed = next(json.loads(line) for line in log.splitlines()
                  if '"Ray Serve deployment failed"' in line)
    assert "initfail: model file not found;code=12345" in failed["replica_error"]
    assert SERVICE not in serve.status().applications  # not left failing on the cluster


def websocket_upgrade(port: int, path: str) -> tuple[int, dict]:
    """A WebSocket client's opening handshake (http.client: urllib would send
    Connection: close); the HTTP answer's status and JSON."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={
            "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()})
        resp = conn.getresponse()
        body = resp.read()
        try:
            return resp.status, json.loads(body)
        except ValueError:
            raise AssertionError(f"{resp.status}, not JSON: {body[:300]!r}") from None
    finally:
        conn.close()


def test_replicas_no_node_can_take_fail_at_the_deploy_timeout_naming_the_resource(
        cli, echo_so):
    from ray import serve

    proc, log_path = cli(echo_so, "--gpus-per-replica", "1", "--ray-deploy-timeout", "2")
    assert proc.wait(60) == 1, log_path.read_text(errors="replace")
    log = log_path.read_text(errors="replace")
    failed = next(json.loads(line) for line in log.splitlines()
                  if "did not start within 2 s" in line)
    assert "no node has 1 GPU free: the cluster has 0 of 0 GPU free" in failed["event"]
    assert SERVICE not in serve.status().applications


def test_sigint_while_replicas_wait_for_placement_stops_and_deletes_the_application(
        cli, echo_so):
    from ray import serve

    assert SERVICE not in serve.status().applications
    proc, log_path = cli(echo_so, "--gpus-per-replica", "1")  # the default timeout, 120 s
    started = time.monotonic()
    while SERVICE not in serve.status().applications:  # deployed, waiting for a GPU
        assert time.monotonic() - started < 60, log_path.read_text(errors="replace")
        assert proc.poll() is None, log_path.read_text(errors="replace")
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(20)
    except subprocess.TimeoutExpired:
        raise AssertionError("SIGINT ignored while deploying:\n"
                             + log_path.read_text(errors="replace")) from None
    log = log_path.read_text(errors="replace")
    assert code == 128 + signal.SIGINT, log
    assert "stopped before the application was ready" in log
    assert SERVICE not in serve.status().applications


def test_build_reads_the_ray_section_for_serve_config_files(tmp_path, echo_so):
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install '.[ray]'")
    from ray.serve import Application

    from aiges.ray import build

    toml = tmp_path / "aiges.toml"
    toml.write_text("[ray]\nreplicas = 3\n")
    assert isinstance(build({"engine": echo_so, "config": str(toml)}), Application)
    with pytest.raises(Exception, match="replica is not a known key"):
        toml.write_text("[ray]\nreplica = 3\n")
        build({"engine": echo_so, "config": str(toml)})
