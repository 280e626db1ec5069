"""The supervisor's small pieces and the [aiges] workers / gpus keys."""
from __future__ import annotations

import pytest

from aiges import config as configuration
from aiges.supervisor import exit_text, gpu_for


def test_exit_text_names_the_signal():
    assert exit_text(-11) == "SIGSEGV"
    assert exit_text(-9) == "SIGKILL"
    assert exit_text(3) == "exit code 3"


def test_gpus_go_round_robin():
    assert [gpu_for(["0", "1"], i) for i in range(3)] == ["0", "1", "0"]
    assert gpu_for([], 0) is None


def test_workers_and_gpus_keys(tmp_path):
    path = tmp_path / "aiges.toml"
    path.write_text('[aiges]\nworkers = 3\ngpus = "0, 2"\n')
    config = configuration.load(path)
    assert (config.workers, config.gpus, config.warnings) == (3, ["0", "2"], [])
    path.write_text('[aiges]\ngpus = [1, 3]\n')
    assert configuration.load(path).gpus == ["1", "3"]


@pytest.mark.parametrize("value", ["0", "-1", '"two"', "true"])
def test_workers_must_be_positive(tmp_path, value):
    path = tmp_path / "aiges.toml"
    path.write_text(f"[aiges]\nworkers = {value}\n")
    with pytest.raises(configuration.ConfigError, match="workers"):
        configuration.load(path)


def test_default_toml_documents_them(tmp_path):
    path = tmp_path / "aiges.toml"
    path.write_text(configuration.DEFAULT_TOML)
    config = configuration.load(path)
    assert (config.workers, config.gpus, config.warnings) == (1, [], [])
