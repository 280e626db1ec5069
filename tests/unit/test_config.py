from pathlib import Path

import pytest

from aiges import config
from aiges.cli import upstream_argv


def write(tmp_path, text, name="aiges.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_without_a_file():
    cfg = config.load(None, "svc")
    assert (cfg.service, cfg.host, cfg.port, cfg.instances) == ("svc", "0.0.0.0", 1888, 10)


def test_upstream_keys(tmp_path):
    path = write(tmp_path, """
[aiges]
asyncMode = true
realTimeRlt = false
headerPass = "appid;uid"
numaNode = -1
[fc]
max = 3
ttl = 2000
[ws]
readTimeout = 5
[log]
level = "debug"
[wrapper]
model = "m.bin"
rate = 16000
fast = true
[svc]
http_listen = "127.0.0.1:9000"
""")
    cfg = config.load(path, "svc")
    assert cfg.async_mode and not cfg.realtime_rlt
    assert cfg.header_pass == ["appid", "uid"]
    assert (cfg.instances, cfg.session_ttl_ms, cfg.ws_read_timeout_s) == (3, 2000, 5.0)
    assert cfg.wrapper == {"model": "m.bin", "rate": "16000", "fast": "true"}
    assert (cfg.host, cfg.port, cfg.log_level) == ("127.0.0.1", 9000, "debug")
    assert cfg.warnings == [f"ignored unknown keys in {path}: aiges.numaNode"]


def test_http_listen_in_wrapper_also_reaches_init(tmp_path):
    cfg = config.load(write(tmp_path, '[wrapper]\nhttp_listen = "0.0.0.0:1999"\n'), "svcName")
    assert cfg.port == 1999 and cfg.wrapper == {"http_listen": "0.0.0.0:1999"}


def test_usr_cfg_replaces_wrapper(tmp_path):
    write(tmp_path, '[model]\npath = "a.bin"\n[model.opt]\nbeam = 4\n', "engine.toml")
    cfg = config.load(write(tmp_path, '[aiges]\nusrCfg = "engine.toml"\n[wrapper]\nx = 1\n'), "s")
    assert cfg.wrapper == {"model.path": "a.bin", "model.opt.beam": "4"}


@pytest.mark.parametrize("text, message", [
    ("[fc]\nmax = 'many'\n", "[fc] max"),
    ("[wrapper\n", "not valid TOML"),
    ('[wrapper]\nhttp_listen = "nowhere"\n', "host:port"),
])
def test_bad_files_say_why(tmp_path, text, message):
    with pytest.raises(config.ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        config.load(write(tmp_path, text), "svc")


def test_flags_override():
    cfg = config.override(config.load(None), port=5, instances=None)
    assert cfg.port == 5 and cfg.instances == 10


def test_default_file_parses_to_the_defaults(tmp_path):
    cfg = config.load(write(tmp_path, config.DEFAULT_TOML), "svcName")
    defaults = config.Config()
    assert cfg.warnings == []
    for name in ("host", "port", "instances", "session_ttl_ms", "queue_limit", "wait_ms",
                 "once_timeout_ms", "drain_timeout_ms", "max_body", "async_mode", "realtime_rlt"):
        assert getattr(cfg, name) == getattr(defaults, name), name


def test_go_style_flags():
    assert upstream_argv(["-m=0", "-c=a.toml", "-s", "x", "--port=5"]) == [
        "-m", "0", "-c", "a.toml", "-s", "x", "--port=5"]


UPSTREAM = Path(__file__).resolve().parent.parent / "e2e" / "upstream_configs"


@pytest.mark.parametrize("name, expected", [
    # (host, port, asyncMode, realTimeRlt, [fc] max, [fc] ttl, [ws] readTimeout, sessionTimeout)
    ("aiges_default_init.toml", ("0.0.0.0", 1888, True, False, 1, 10000, 15.0, 180.0)),
    # http_listen sits in [svcName], the section -s names
    ("aiges_root.toml", ("0.0.0.0", 1888, True, True, 1000, 10000, 150.0, 180.0)),
    ("aiges_demo_mmocr.toml", ("0.0.0.0", 1888, False, False, 10, 10000, 30.0, 600.0)),
])
def test_upstream_files_keep_the_keys_that_mean_something_here(name, expected):
    cfg = config.load(UPSTREAM / name, "svcName")
    assert (cfg.host, cfg.port, cfg.async_mode, cfg.realtime_rlt, cfg.instances,
            cfg.session_ttl_ms, cfg.ws_read_timeout_s, cfg.ws_session_timeout_s) == expected
    assert cfg.log_file == "./log/aiges.log"
    assert cfg.wrapper["common.lic"] == "10"
    # One line for everything ignored, with whole sections named once.
    assert len(cfg.warnings) == 1
    warning = cfg.warnings[0]
    assert "elog.*" in warning and "elog.elogHost" not in warning and "fc.strategy" in warning
    # Keys known here, and the -s section (upstream's xsf host/port), are not listed.
    for key in ("sessMode", "pythonPluginCmd", "asyncMode", "usrCfg", "svcName", "log.level",
                "http_listen", "readTimeout"):
        assert key not in warning, key


def test_python_plugin_cmd_is_kept_for_the_cli_to_warn_about():
    cfg = config.load(UPSTREAM / "aiges_default_init.toml", "svcName")
    assert cfg.python_plugin_cmd == "/usr/bin/env python -m aiges.serve"


@pytest.mark.parametrize("level, name", [("warn", "warning"), ("Error", "error"),
                                         ("debug", "debug"), ("fatal", "critical")])
def test_log_levels_in_upstream_spelling(tmp_path, level, name):
    assert config.load(write(tmp_path, f'[log]\nlevel = "{level}"\n'), "s").log_level == name


def test_an_unknown_log_level_is_a_config_error(tmp_path):
    with pytest.raises(config.ConfigError, match=r"\[log\] level"):
        config.load(write(tmp_path, '[log]\nlevel = "loud"\n'), "s")


def test_init_file_names_every_ray_key():
    from aiges.ray.options import KEYS as RAY_KEYS
    assert "# [ray]" in config.DEFAULT_TOML
    for key in RAY_KEYS:
        assert f"# {key} = " in config.DEFAULT_TOML, key
