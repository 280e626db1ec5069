"""aiges on Ray Serve (``pip install 'aiges[ray]'``): Ray places the replicas over the
cluster's machines, gives each its GPUs, restarts the ones that die, autoscales and
balances requests; each replica loads the engine with its instance pool and serves the
HTTP once protocol through Serve's proxy. ``aiges-load ENGINE --ray`` uses it; so can a
Serve config or script of your own::

    from ray import serve
    from aiges import config as configuration
    from aiges.ray import RayOptions, application

    config = configuration.load("aiges.toml")
    serve.run(application("/opt/engines/libdigits.so", config, RayOptions(replicas=4,
              gpus_per_replica=1)), name=config.service, route_prefix=f"/v1/{config.service}")

Nothing here imports Ray until it is used.
"""
from __future__ import annotations

import os

from aiges.config import Config
from aiges.ray.options import RayOptions, deployment_options

__all__ = ["RayOptions", "application", "build", "deploy", "route_prefix"]


def route_prefix(config: Config) -> str:
    """Where the app is mounted: several engines (services) can share one cluster."""
    from aiges.service.routes import service_base
    return service_base(config.service)


def application(engine_path: str, config: Config, options: RayOptions | None = None):
    """The Serve application of one engine. ``engine_path`` must name the same file on
    every machine that may run a replica (an image with the engine baked in)."""
    from ray import serve

    from aiges.ray.replica import EngineReplica

    deployment = serve.deployment(EngineReplica).options(
        **deployment_options(options or RayOptions(), config))
    return deployment.bind(os.path.abspath(engine_path), config)


def build(args: dict):
    """Serve's application builder, for Serve's own tools and config files (KubeRay's
    RayService): ``serve run aiges.ray:build engine=/opt/engines/libdigits.so
    config=/opt/aiges.toml``. The deployment options come from the config's [ray]
    section; the route prefix, host and port from Serve's (use /v1/<service>)."""
    from aiges import config as configuration
    from aiges.ray import options

    cfg = configuration.load(args.get("config"), args.get("service", "svcName"))
    return application(args["engine"], cfg, options.load(cfg.ray))


def deploy(engine_path: str, config: Config, options: RayOptions, *, wait: bool = True) -> None:
    """Start Serve's proxies on ``config.host:port`` (when Serve is not running on the
    cluster yet) and run the application. ``wait``: return once every replica is up,
    raise RuntimeError when the deployment fails (an engine that cannot start) — with
    no bound: replicas no node can take keep it waiting. Without ``wait``, return once
    Serve's controller has the application; ``serve.status()`` tells the rest
    (aiges-load --ray waits so, with a timeout and an ear for signals)."""
    from ray import serve

    serve.start(http_options={"host": config.host, "port": config.port},
                proxy_location=options.proxy_location)
    app = application(engine_path, config, options)
    if wait:
        serve.run(app, name=config.service, route_prefix=route_prefix(config))
    else:
        # The wait for RUNNING is `_blocking` of serve._run (Ray >= 2.10; of serve.run
        # itself before). serve.run's public `blocking` is another wait: for Ctrl-C.
        submit = getattr(serve, "_run", serve.run)
        submit(app, _blocking=False, name=config.service, route_prefix=route_prefix(config))
