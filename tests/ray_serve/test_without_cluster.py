"""aiges-load --ray's deploy timeout and signals, where no cluster is needed: what the
cluster lacks (aiges.ray.capacity), the option, and a signal while ray.init blocks."""
from __future__ import annotations

import signal
import subprocess
import time

import pytest

from aiges import config
from aiges.cli import parser
from aiges.ray import capacity
from aiges.ray import options as ray_options
from aiges.ray.options import RayOptions
from tests.helpers import AIGES_LOAD

NODE = {"CPU": 2.0, "memory": 1e9}


@pytest.mark.parametrize("need, count, per_node, nodes, free, text", [
    # a cluster without GPUs
    ({"GPU": 1, "CPU": 1}, 1, None, [NODE, NODE], {"CPU": 4},
     "no node has 1 GPU free: the cluster has 0 of 0 GPU free"),
    # GPUs, all taken
    ({"GPU": 1}, 1, None, [{"GPU": 2}], {"GPU": 0.5},
     "no node has 1 GPU free: the cluster has 0.5 of 2 GPU free"),
    # enough in all, too little on any one node
    ({"GPU": 2}, 1, None, [{"GPU": 1}, {"GPU": 1}], {"GPU": 2},
     "no node has 2 GPU free: the cluster has 2 of 2 GPU free, at most 1 on one node"),
    # room for some of the replicas
    ({"CPU": 1}, 5, None, [NODE, NODE], {"CPU": 4},
     "5 replicas need 5 CPU: the cluster has 4 of 4 CPU free"),
    ({"a100": 1}, 1, None, [NODE], {"CPU": 2}, "no node has 1 a100 free"),
    # one replica per node on two nodes
    ({"CPU": 1}, 3, 1, [NODE, NODE], {"CPU": 4},
     "3 replicas, at most 1 per node, need 3 nodes that can take one: the cluster has 2"),
    ({"CPU": 1}, 2, 1, [NODE, NODE], {"CPU": 4}, ""),
    ({}, 1, None, [NODE], {}, ""),
])
def test_shortfall_names_the_missing_resource(need, count, per_node, nodes, free, text):
    got = capacity.shortfall(need, count, per_node, nodes, free)
    assert got.startswith(text) and bool(got) == bool(text), got


def test_a_replica_needs_gpus_first_and_starts_with_the_initial_count():
    o = RayOptions(gpus_per_replica=0.5, resources={"a100": 1}, cpus_per_replica=0)
    assert list(capacity.replica_need(o).items()) == [("GPU", 0.5), ("a100", 1)]
    assert capacity.initial_replicas(RayOptions()) == 1
    assert capacity.initial_replicas(RayOptions(min_replicas=2, max_replicas=4)) == 2
    assert capacity.initial_replicas(RayOptions(replicas=3, min_replicas=2,
                                                max_replicas=4)) == 3


def test_the_deploy_timeout_comes_from_the_flag_or_the_ray_section():
    assert RayOptions().deploy_timeout_s == 120
    cfg = config.Config(ray={"deployTimeout": 30})
    assert ray_options.from_args(cfg, parser().parse_args(["lib.so", "--ray"])) \
        .deploy_timeout_s == 30
    args = parser().parse_args(["lib.so", "--ray", "--ray-deploy-timeout", "2.5"])
    assert ray_options.from_args(cfg, args).deploy_timeout_s == 2.5
    with pytest.raises(config.ConfigError, match="deploy timeout must be more than 0"):
        ray_options.load({"deployTimeout": 0})


def test_a_signal_while_connecting_exits_at_once(tmp_path, echo_so):
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install '.[ray]'")
    log_path = tmp_path / "aiges-load.log"
    with log_path.open("wb") as log:
        # Nothing listens there: ray.init retries inside C++ for about 40 s.
        proc = subprocess.Popen([AIGES_LOAD, echo_so, "--ray", "--address", "127.0.0.1:9"],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while "Connecting to existing Ray cluster" not in log_path.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 128 + signal.SIGTERM
        assert "stopped while connecting to Ray" in log_path.read_text(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_timeout_says_what_the_cluster_lacked_else_what_serve_said_else_how_far():
    from types import SimpleNamespace

    from aiges.ray.run import _timed_out

    def status(message="", states=None):
        deployment = SimpleNamespace(message=message, replica_states=states or {})
        return SimpleNamespace(deployments={"svcName": deployment})

    assert str(_timed_out(status("slow"), 2, "no node has 1 GPU free")) == \
        "the application did not start within 2 s: no node has 1 GPU free"
    assert str(_timed_out(status("taken more than 30s to initialize"), 60, "")).endswith(
        "60 s: taken more than 30s to initialize")
    failed = _timed_out(status(states={"STARTING": 1, "RUNNING": 1}), 120, "")
    assert "replicas {'STARTING': 1, 'RUNNING': 1}: an engine that takes longer to " \
           "initialise needs a longer --ray-deploy-timeout" in str(failed)
    assert failed.details["replicas"] == {"STARTING": 1, "RUNNING": 1}


def test_a_ray_replica_routes_from_the_table():
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install '.[ray]'")
    from aiges.ray.replica import replica_routes, route_name

    table = replica_routes("svc")
    assert route_name(table, "POST", "/v1/svc") == "once"
    # Serve's proxy sends a replica only the paths under its prefix.
    assert route_name(table, "GET", "/v1/svc/ready") == "ready"
    assert route_name(table, "GET", "/v1/svc/health") == "health"
    assert route_name(table, "GET", "/ready") is None
    # The session API is refused (501) whatever the method; plain GET is no route (404).
    assert route_name(table, "PUT", "/v1/svc/sessions/ab12") == "writeSession"
    assert route_name(table, "GET", "/v1/svc") is None
