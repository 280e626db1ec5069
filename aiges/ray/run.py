"""``aiges-load ENGINE --ray``: deploy the engine as a Ray Serve application and stay in
the foreground until SIGTERM/SIGINT, which deletes the application (each replica
drains and calls wrapperFini).

The wait for the replicas is bounded (``[ray] deployTimeout``): replicas the cluster
cannot place, or engines that do not initialise in time, end it with what is missing,
and the application is deleted. A signal is heard at every stage (aiges.ray.signals):
while connecting it exits at once; while deploying or serving it deletes the
application and exits. Only SIGKILL leaves the application on the cluster: Serve's
applications outlive the process that deployed them.

This process never loads the engine: the replicas do, wherever Ray places them.
Connected to an existing cluster it leaves Ray and Serve running for others; a local
Ray it started itself is shut down with it.
"""
from __future__ import annotations

import logging
import os
import shlex
import sys
import time

from aiges.config import Config, ConfigError
from aiges.ray import capacity, deploy, route_prefix
from aiges.ray.options import RayOptions, from_args, graceful_shutdown_s
from aiges.ray.signals import StopSignals

log = logging.getLogger("aiges")

# How often the deployment's state is read: Serve tells it only when asked (its own
# blocking serve.run asks every second).
POLL_S = 0.25
# After a stop signal, on top of the replicas' graceful shutdown: Serve's controller,
# and Ray's own shutdown.
STOP_GRACE_S = 15.0


class DeployFailed(Exception):
    def __init__(self, message: str, **details):
        super().__init__(message)
        self.details = details


def main(config: Config, args) -> int:
    try:
        options = from_args(config, args)
    except ConfigError as exc:
        log.error(str(exc))
        return 2
    if config.workers > 1 or config.gpus:
        log.warning("--workers and --gpus are for one machine and are ignored with --ray: "
                    "use --replicas and --gpus-per-replica")
    signals = StopSignals(graceful_shutdown_s(config) + STOP_GRACE_S, config.service)
    signals.install()  # before importing Ray, which takes seconds
    try:
        import ray
    except ImportError:
        # This Python's pip: a bare pip may be another environment's, and PyPI's "aiges"
        # is upstream's SDK, not this project.
        log.error("--ray needs Ray Serve, which is not installed: "
                  f"{shlex.quote(sys.executable)} -m pip install 'ray[serve]'")
        return 2
    return run(ray, config, args.engine, options, signals)


def run(ray, config: Config, engine_path: str, options: RayOptions,
        signals: StopSignals) -> int:
    from ray import serve

    local = not (options.address or os.environ.get("RAY_ADDRESS"))
    try:
        try:
            ray.init(address=options.address or None)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            log.error("cannot connect to Ray",
                      extra={"address": options.address, "error": str(exc)})
            return 1
        signals.connected()
        code = _deploy_and_serve(ray, serve, config, engine_path, options, signals)
    finally:
        if ray.is_initialized():
            if local:
                serve.shutdown()
            ray.shutdown()
    signals.uninstall()
    log.info("stopped")
    return code


def _deploy_and_serve(ray, serve, config: Config, engine_path: str, options: RayOptions,
                      signals: StopSignals) -> int:
    """The application deployed, served until a signal, and deleted; the exit status."""
    app = config.service
    if signals.stopping.is_set():
        return signals.exit_code
    # Read before deploying: once placed, our own replicas hold what they took.
    lacking = capacity.cluster_shortfall(ray, options)
    deploy(engine_path, config, options, wait=False)
    if lacking:
        log.warning(f"the replicas cannot be placed now: {lacking}; waiting up to "
                    f"{options.deploy_timeout_s:g} s for the cluster to change "
                    f"(--ray-deploy-timeout, [ray] deployTimeout)")
    try:
        running = _wait_running(serve, app, options.deploy_timeout_s, signals, lacking)
    except DeployFailed as exc:
        log.error(str(exc), extra=exc.details)
        _delete(serve, config)  # a failed application would stay on the cluster
        return 1
    if not running:
        log.info("stopped before the application was ready", extra={"signal": signals.signum})
        _delete(serve, config)
        return signals.exit_code
    host, port = _proxy_address(config)
    log.info(f"ready on http://{host}:{port}{route_prefix(config)}",
             extra={"engine": os.path.abspath(engine_path), "pid": os.getpid(),
                    "ray": ray.get_runtime_context().gcs_address})
    signals.stopping.wait()
    log.info("shutting down")
    _delete(serve, config)
    return 0


def _wait_running(serve, app: str, timeout_s: float, signals: StopSignals,
                  lacking: str) -> bool:
    """True once every replica serves; False when a signal asks to stop first.
    DeployFailed: Serve gave up on the replicas, or the timeout passed."""
    deadline = time.monotonic() + timeout_s
    while not signals.stopping.is_set():
        status = serve.status().applications.get(app)
        if status is None:
            raise DeployFailed("the application was deleted from the cluster while it "
                               "deployed")
        if status.status == "RUNNING":
            return True
        if status.status == "DEPLOY_FAILED":
            raise DeployFailed("Ray Serve deployment failed", error=status.message,
                               replica_error=_replica_error(status))
        left = deadline - time.monotonic()
        if left <= 0:
            raise _timed_out(status, timeout_s, lacking)
        signals.stopping.wait(min(POLL_S, left))
    return False


def _timed_out(status, timeout_s: float, lacking: str) -> DeployFailed:
    """What kept the application from running, in one line: what the cluster lacked,
    else Serve's own word on the deployment, else how far the replicas got."""
    deployments = list(status.deployments.values())
    said = "; ".join(d.message for d in deployments if d.message)
    states = {str(getattr(k, "value", k)): n for d in deployments
              for k, n in d.replica_states.items()}
    reason = lacking or said or (
        f"replicas {states or 'not started'}: an engine that takes longer to initialise "
        f"needs a longer --ray-deploy-timeout")
    return DeployFailed(f"the application did not start within {timeout_s:g} s: {reason}",
                        timeout_s=timeout_s, serve_status=said, replicas=states)


def _delete(serve, config: Config) -> None:
    """Serve stops routing to the replicas, lets their requests finish and calls their
    __del__ (wrapperFini). It gives each replica its whole graceful shutdown, even one
    it never placed (the call waits on the actor that never started); the stop
    deadline bounds the wait."""
    log.info("deleting the Ray Serve application", extra={
        "app": config.service, "up_to_s": graceful_shutdown_s(config)})
    serve.delete(config.service)


def _replica_error(status) -> str:
    """The last line of what Serve recorded for the failed deployment: the replica's
    exception, with the loader's or the engine's text."""
    messages = [d.message for d in status.deployments.values() if d.message]
    lines = "\n".join(messages).strip().splitlines()
    return lines[-1] if lines else ""


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
