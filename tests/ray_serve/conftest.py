"""A local Ray cluster of two nodes (Ray's own cluster_utils), once per test module,
on loopback only, with Serve's proxy on the head node."""
from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from tests.helpers import free_port

# Read by Ray once, when it is imported, and inherited by every process of the cluster
# (and by aiges-load started by a test):
os.environ.update({
    # Every address 127.0.0.1: Ray would otherwise advertise the machine's own IP.
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    # The proxy on the head node would send every request to the replica beside it
    # while that one has room; the tests want to see Serve balance over both nodes.
    "RAY_SERVE_PROXY_PREFER_LOCAL_NODE_ROUTING": "0",
    "RAY_SERVE_PROXY_PREFER_LOCAL_AZ_ROUTING": "0",
    "RAY_DEDUP_LOGS": "0",
})

NODE_ARGS = {"num_cpus": 2, "node_ip_address": "127.0.0.1", "include_dashboard": False}


@pytest.fixture(scope="module")
def ray_cluster():
    """(cluster, the two node ids); this process is connected as a driver. Two logical
    CPUs per node: one replica each, whatever the machine has."""
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install '.[ray]'")
    from ray import serve
    from ray.cluster_utils import Cluster

    # Ray's files (sessions, logs, sockets, the current cluster's address) in a directory
    # of the test's own, removed at the end; short, as socket paths must fit 107 bytes.
    temp_dir = tempfile.mkdtemp(prefix="aiges-ray-")
    os.mkdir(os.path.join(temp_dir, "ray"))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAY_TMPDIR", temp_dir)
        cluster = Cluster()
        try:
            cluster.add_node(**NODE_ARGS)  # the head
            cluster.add_node(**NODE_ARGS)
            cluster.wait_for_nodes()
            ray.init(address=cluster.address)
            nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
            assert len(nodes) == 2
            yield cluster, nodes
        finally:
            if ray.is_initialized():
                serve.shutdown()
                ray.shutdown()
            cluster.shutdown()
            shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def serve_port() -> int:
    """Serve's HTTP proxy port: fixed for the cluster's life once Serve has started."""
    return free_port()
