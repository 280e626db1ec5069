"""The [ray] section and the --ray flags into Ray Serve deployment options (no Ray needed)."""
import re

import pytest

from aiges import config
from aiges.cli import parser
from aiges.ray import options as ray_options
from aiges.ray.options import RayOptions, deployment_options


def test_ray_section_is_kept_for_aiges_ray_and_not_warned_about(tmp_path):
    path = tmp_path / "aiges.toml"
    path.write_text('[ray]\nreplicas = 3\ngpusPerReplica = 0.5\nresources = {fast = 1}\n'
                    '[fc]\nmax = 4\n')
    cfg = config.load(path)
    assert cfg.ray == {"replicas": 3, "gpusPerReplica": 0.5, "resources": {"fast": 1}}
    assert cfg.warnings == []
    opts = deployment_options(ray_options.load(cfg.ray), cfg)
    assert opts == {
        "name": "svcName", "num_replicas": 3,
        "ray_actor_options": {"num_cpus": 1.0, "num_gpus": 0.5, "resources": {"fast": 1.0}},
        # a replica takes as many requests at once as it has instances
        "max_ongoing_requests": 4,
        "graceful_shutdown_timeout_s": 15.0,
    }


def test_flags_override_the_file_and_bounds_turn_on_autoscaling():
    args = parser().parse_args(["lib.so", "--ray", "--address", "ray://head:10001",
                                "--replicas", "2", "--gpus-per-replica", "1",
                                "--autoscale-min", "1", "--autoscale-max", "8"])
    cfg = config.Config(ray={"replicas": 5, "address": "auto", "targetOngoingRequests": 3,
                             "maxReplicasPerNode": 1, "healthCheckPeriod": 2})
    options = ray_options.from_args(cfg, args)
    assert (options.address, options.replicas, options.gpus_per_replica) == \
        ("ray://head:10001", 2, 1.0)
    opts = deployment_options(options, cfg)
    assert "num_replicas" not in opts
    assert opts["autoscaling_config"] == {"min_replicas": 1, "max_replicas": 8,
                                          "initial_replicas": 2, "target_ongoing_requests": 3.0}
    assert (opts["max_replicas_per_node"], opts["health_check_period_s"]) == (1, 2.0)
    assert opts["ray_actor_options"]["num_gpus"] == 1.0


def test_defaults_one_replica_and_proxies_on_every_node():
    options = ray_options.load({})
    assert options == RayOptions()
    assert deployment_options(options, config.Config())["num_replicas"] == 1


@pytest.mark.parametrize("section, flags, message", [
    ({"replica": 2}, {}, "[ray] replica is not a known key"),
    ({"replicas": "two"}, {}, "[ray] replicas = 'two' is not valid"),
    ({}, {"replicas": 0}, "replicas must be 1 or more"),
    ({"minReplicas": 1}, {}, "needs both a minimum and a maximum"),
    ({}, {"min_replicas": 3, "max_replicas": 2}, "0 <= min <= max"),
    ({"proxyLocation": "Everywhere"}, {}, "proxyLocation must be one of"),
    ({"gpusPerReplica": -1}, {}, "cannot be negative"),
])
def test_bad_settings_name_the_problem(section, flags, message):
    with pytest.raises(config.ConfigError, match=re.escape(message)):
        ray_options.load(section, **flags)
