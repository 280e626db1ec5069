"""Whether the cluster can place the replicas of a deployment, and if not, what it lacks.

Serve keeps a replica that no node can take pending for good (on a cluster with an
autoscaler, a new node may still come), and says why only after a while, in words
about its own scheduler. aiges-load --ray reads the cluster's resources before it
deploys and names the missing one: in a warning at once, and in the error when the
deploy timeout ends the wait.
"""
from __future__ import annotations

import logging
import math

from aiges.ray.options import RayOptions

log = logging.getLogger(__name__)


def replica_need(o: RayOptions) -> dict[str, float]:
    """What one replica asks Ray for; GPUs first, as they are the usual shortage."""
    need = {"GPU": o.gpus_per_replica, **o.resources, "CPU": o.cpus_per_replica}
    return {name: amount for name, amount in need.items() if amount > 0}


def initial_replicas(o: RayOptions) -> int:
    if o.autoscaling:
        return o.replicas if o.replicas is not None else o.min_replicas
    return o.replicas or 1


def shortfall(need: dict[str, float], count: int, per_node: int | None,
              nodes: list[dict[str, float]], free: dict[str, float]) -> str:
    """Why ``count`` replicas needing ``need`` each cannot all be placed, or "".
    ``nodes``: each live node's total resources; ``free``: the cluster's unused ones
    (Ray reports free resources per cluster only: less than one replica's need free in
    all means that no node has it)."""
    for name, amount in need.items():
        total = sum(node.get(name, 0.0) for node in nodes)
        largest = max((node.get(name, 0.0) for node in nodes), default=0.0)
        available = free.get(name, 0.0)
        if available < amount or largest < amount:
            text = (f"no node has {_n(amount)} {name} free: the cluster has "
                    f"{_n(available)} of {_n(total)} {name} free")
            spread = largest < amount <= available  # enough in all, too little on each
            return text + (f", at most {_n(largest)} on one node" if spread else "")
        if count * amount > available:
            return (f"{count} replicas need {_n(count * amount)} {name}: the cluster has "
                    f"{_n(available)} of {_n(total)} {name} free")
    if per_node:
        fit = sum(all(node.get(k, 0.0) >= v for k, v in need.items()) for node in nodes)
        if fit * per_node < count:
            return (f"{count} replicas, at most {per_node} per node, need "
                    f"{math.ceil(count / per_node)} nodes that can take one: the cluster "
                    f"has {fit}")
    return ""


def cluster_shortfall(ray, o: RayOptions) -> str:
    """``shortfall`` for these options on the connected cluster, read now."""
    try:
        nodes = [dict(n["Resources"]) for n in ray.nodes() if n.get("Alive")]
        free = ray.available_resources()
    except Exception as exc:  # a diagnosis only: it must never stop the deployment
        log.debug("cannot read the cluster's resources", extra={"error": str(exc)})
        return ""
    return shortfall(replica_need(o), initial_replicas(o), o.max_replicas_per_node, nodes,
                     free)


def _n(amount: float) -> str:
    return f"{amount:g}"
