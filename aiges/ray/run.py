"""``aiges-load ENGINE --ray``: deploy the engine as a Ray Serve application and stay in
the foreground until SIGTERM/SIGINT, which deletes the application (each replica
drains and calls wrapperFini).

This process never loads the engine: the replicas do, wherever Ray places them.
Connected to an existing cluster it leaves Ray and Serve running for others; a local
Ray it started itself is shut down with it.
"""
from __future__ import annotations

import logging
import os
import signal
import threading

from aiges.config import Config, ConfigError
from aiges.ray import deploy, route_prefix
from aiges.ray.options import RayOptions, from_args

log = logging.getLogger("aiges")


def main(config: Config, args) -> int:
    try:
        options = from_args(config, args)
    except ConfigError as exc:
        log.error(str(exc))
        return 2
    if config.workers > 1 or config.gpus:
        log.warning("--workers and --gpus are for one machine and are ignored with --ray: "
                    "use --replicas and --gpus-per-replica")
    try:
        import ray
    except ImportError:
        log.error("--ray needs Ray Serve: pip install 'aiges[ray]'")
        return 2
    return run(ray, config, args.engine, options)


def run(ray, config: Config, engine_path: str, options: RayOptions) -> int:
    from ray import serve

    local = not (options.address or os.environ.get("RAY_ADDRESS"))
    try:
        ray.init(address=options.address or None)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        log.error("cannot connect to Ray", extra={"address": options.address, "error": str(exc)})
        return 1
    stop = _stop_on_signals()  # after ray.init, which sets a SIGTERM handler of its own
    try:
        try:
            deploy(engine_path, config, options)
        except RuntimeError as exc:
            log.error("Ray Serve deployment failed", extra={
                "error": str(exc), "replica_error": _replica_error(serve, config.service)})
            serve.delete(config.service)  # a failed application would stay on the cluster
            return 1
        host, port = _proxy_address(config)
        log.info(f"ready on http://{host}:{port}{route_prefix(config)}",
                 extra={"engine": os.path.abspath(engine_path), "pid": os.getpid(),
                        "ray": ray.get_runtime_context().gcs_address})
        stop.wait()
        log.info("shutting down: deleting the Ray Serve application")
        serve.delete(config.service)
    finally:
        if local:
            serve.shutdown()
        ray.shutdown()
    log.info("stopped")
    return 0


def _replica_error(serve, app: str) -> str:
    """The last line of what Serve recorded for the failed deployment: the replica's
    exception, with the loader's or the engine's text."""
    try:
        status = serve.status().applications[app]
        messages = [d.message for d in status.deployments.values() if d.message]
    except (KeyError, AttributeError):
        return ""
    lines = "\n".join(messages).strip().splitlines()
    return lines[-1] if lines else ""


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    for sig in (signal.SIGTERM, signal.SIGINT):
        # A second signal while the application is deleted changes nothing.
        signal.signal(sig, lambda signum, frame: stop.set())
    return stop


def _proxy_address(config: Config) -> tuple[str, int]:
    """Where Serve's proxies listen. Serve keeps the host and port it was first started
    with on a cluster (and warns that ours are ignored), so ask it."""
    host, port = config.host, config.port
    try:
        from ray.serve.context import _get_global_client

        http = _get_global_client().http_config
        host, port = http.host or host, http.port or port
    except Exception:  # a private API: when it moves, the configured address stands
        pass
    if (host, port) != (config.host, config.port):
        log.warning("Serve was already running on this cluster with other HTTP options: "
                    "it keeps them", extra={"host": host, "port": port})
    return ("127.0.0.1" if host in ("0.0.0.0", "") else host), port
