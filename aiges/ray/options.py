"""The Ray Serve side of the configuration: the ``[ray]`` section of aiges.toml and the
``--ray`` flags, checked, and turned into Serve's deployment options.

Everything here is passed through to Ray Serve: aiges chooses only defaults that fit an
engine (each replica takes as many requests at once as it has instances).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from aiges.config import Config, ConfigError

PROXY_LOCATIONS = ("EveryNode", "HeadOnly", "Disabled")


@dataclass
class RayOptions:
    # ray.init(address=...): "" = RAY_ADDRESS if set, else a new local Ray;
    # "auto" = the cluster this machine belongs to; "ray://head:10001" = Ray Client.
    address: str = ""
    replicas: int | None = None          # fixed replica count (default 1)
    gpus_per_replica: float = 0.0        # Ray sets CUDA_VISIBLE_DEVICES for each replica
    cpus_per_replica: float = 1.0
    resources: dict[str, float] = field(default_factory=dict)  # custom resources a replica needs
    # Autoscaling: both bounds turn it on (replicas is then the initial count).
    min_replicas: int | None = None
    max_replicas: int | None = None
    target_ongoing_requests: float | None = None  # per replica, what autoscaling aims at
    max_ongoing_requests: int | None = None       # per replica; default [fc] max
    max_replicas_per_node: int | None = None      # 1 spreads replicas over the machines
    proxy_location: str = "EveryNode"             # where Serve runs its HTTP proxies
    health_check_period_s: float | None = None
    health_check_timeout_s: float | None = None
    # aiges-load --ray: how long the replicas may take to be placed and to initialise
    # their engines before it gives up, names what is missing and deletes the application.
    deploy_timeout_s: float = 120.0

    @property
    def autoscaling(self) -> bool:
        return self.min_replicas is not None or self.max_replicas is not None


# [ray] key -> (RayOptions field, converter)
KEYS = {
    "address": ("address", str),
    "replicas": ("replicas", int),
    "gpusPerReplica": ("gpus_per_replica", float),
    "cpusPerReplica": ("cpus_per_replica", float),
    "resources": ("resources", lambda t: {str(k): float(v) for k, v in dict(t).items()}),
    "minReplicas": ("min_replicas", int),
    "maxReplicas": ("max_replicas", int),
    "targetOngoingRequests": ("target_ongoing_requests", float),
    "maxOngoingRequests": ("max_ongoing_requests", int),
    "maxReplicasPerNode": ("max_replicas_per_node", int),
    "proxyLocation": ("proxy_location", str),
    "healthCheckPeriod": ("health_check_period_s", float),
    "healthCheckTimeout": ("health_check_timeout_s", float),
    "deployTimeout": ("deploy_timeout_s", float),
}


def load(section: dict, **flags) -> RayOptions:
    """The ``[ray]`` table with the command line's flags (None = not given) on top.
    ConfigError names the first bad key."""
    options = RayOptions()
    for key, value in section.items():
        if key not in KEYS:
            raise ConfigError(f"[ray] {key} is not a known key (known: {', '.join(KEYS)})")
        name, convert = KEYS[key]
        try:
            setattr(options, name, convert(value))
        except (TypeError, ValueError):
            raise ConfigError(f"[ray] {key} = {value!r} is not valid") from None
    options = dataclasses.replace(options, **{k: v for k, v in flags.items() if v is not None})
    check(options)
    return options


def check(o: RayOptions) -> None:
    if o.replicas is not None and o.replicas < 1:
        raise ConfigError(f"replicas must be 1 or more, got {o.replicas}")
    if o.gpus_per_replica < 0 or o.cpus_per_replica < 0:
        raise ConfigError("gpus and cpus per replica cannot be negative")
    if o.autoscaling:
        if o.min_replicas is None or o.max_replicas is None:
            raise ConfigError("autoscaling needs both a minimum and a maximum replica count")
        if not 0 <= o.min_replicas <= o.max_replicas or o.max_replicas < 1:
            raise ConfigError(f"autoscaling needs 0 <= min <= max and max >= 1, got "
                              f"{o.min_replicas}..{o.max_replicas}")
    if not o.deploy_timeout_s > 0:
        raise ConfigError(f"the deploy timeout must be more than 0 seconds, got "
                          f"{o.deploy_timeout_s}")
    if o.proxy_location not in PROXY_LOCATIONS:
        raise ConfigError(f"proxyLocation must be one of {', '.join(PROXY_LOCATIONS)}, "
                          f"got {o.proxy_location!r}")


def graceful_shutdown_s(config: Config) -> float:
    """How long Serve lets a replica stop: in-flight requests get the drain time before
    __del__ runs wrapperFini."""
    return config.drain_timeout_ms / 1000 + 5


def deployment_options(o: RayOptions, config: Config) -> dict:
    """Keyword arguments of ``Deployment.options`` for one engine service."""
    actor = {"num_cpus": o.cpus_per_replica, "num_gpus": o.gpus_per_replica}
    if o.resources:
        actor["resources"] = dict(o.resources)
    opts = {
        "name": config.service,
        "ray_actor_options": actor,
        # More than the pool's instances would only queue inside the replica, where
        # Serve cannot see it: let Serve's router hold them and pick another replica.
        "max_ongoing_requests": o.max_ongoing_requests or config.instances,
        "graceful_shutdown_timeout_s": graceful_shutdown_s(config),
    }
    if o.autoscaling:
        scaling = {"min_replicas": o.min_replicas, "max_replicas": o.max_replicas}
        if o.replicas is not None:
            scaling["initial_replicas"] = o.replicas
        if o.target_ongoing_requests is not None:
            scaling["target_ongoing_requests"] = o.target_ongoing_requests
        opts["autoscaling_config"] = scaling
    else:
        opts["num_replicas"] = o.replicas or 1
    if o.max_replicas_per_node is not None:
        opts["max_replicas_per_node"] = o.max_replicas_per_node
    if o.health_check_period_s is not None:
        opts["health_check_period_s"] = o.health_check_period_s
    if o.health_check_timeout_s is not None:
        opts["health_check_timeout_s"] = o.health_check_timeout_s
    return opts


def add_arguments(p) -> None:
    """The --ray flags of aiges-load; the rest of [ray] is read from aiges.toml."""
    g = p.add_argument_group("Ray Serve", "serve on a Ray cluster (needs Ray Serve: the [ray] extra); "
                             "more settings in the [ray] section of aiges.toml")
    g.add_argument("--ray", action="store_true",
                   help="run the engine as a Ray Serve application: replicas placed over the "
                        "cluster's machines, each with its engine and instances")
    g.add_argument("--address", metavar="ADDR",
                   help="Ray cluster: ray://head:10001, head:6379 or auto ([ray] address; "
                        "default RAY_ADDRESS, else a new local Ray)")
    g.add_argument("--replicas", type=int, metavar="N", help="replicas ([ray] replicas, default 1)")
    g.add_argument("--gpus-per-replica", type=float, metavar="G",
                   help="GPUs each replica gets, may be fractional ([ray] gpusPerReplica)")
    g.add_argument("--autoscale-min", type=int, metavar="N",
                   help="autoscaling lower bound ([ray] minReplicas; needs --autoscale-max)")
    g.add_argument("--autoscale-max", type=int, metavar="N",
                   help="autoscaling upper bound ([ray] maxReplicas)")
    g.add_argument("--ray-deploy-timeout", type=float, metavar="SECONDS",
                   help="give up when the replicas are not placed and serving after this "
                        "long: say what the cluster lacks, delete the application and exit 1 "
                        "([ray] deployTimeout, default 120)")


def from_args(config: Config, args) -> RayOptions:
    return load(config.ray, address=args.address, replicas=args.replicas,
                gpus_per_replica=args.gpus_per_replica, min_replicas=args.autoscale_min,
                max_replicas=args.autoscale_max, deploy_timeout_s=args.ray_deploy_timeout)
