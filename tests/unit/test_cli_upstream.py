"""Upstream AIGES's command line (Go `flag`: one dash, -k=v or -k v) and engine choice
(AIGES_PLUGIN_MODE, libwrapper.so on LD_LIBRARY_PATH) as aiges-load reads them."""
from __future__ import annotations

import sys

import aiohttp
import cffi
import pytest

import aiges
from aiges import config as configuration
from aiges.cli import NoEngine, find_engine, load_config, main, parser, upstream_argv, \
    upstream_notes

DOCKERFILE = ["-m=0", "-c=aiges.toml", "-s=svcName", "-u=http://companion.xfyun.iflytek:6868",
              "-p=AIaaS", "-g=dx"]


def parse(*argv: str):
    return parser().parse_args(upstream_argv(list(argv)))


def test_the_dockerfile_command_line_parses_without_an_engine():
    args = parse(*DOCKERFILE)
    assert args.engine is None
    assert (args.mode, args.config, args.service) == (0, "aiges.toml", "svcName")
    notes = upstream_notes(args)
    assert len(notes) == 3
    for flag, value in (("-u", "http://companion.xfyun.iflytek:6868"), ("-p", "AIaaS"),
                        ("-g", "dx")):
        assert sum(f"{flag}={value}" in note for note in notes) == 1, notes


@pytest.mark.parametrize("argv", [
    ["-dc=base.toml"], ["-dc", "base.toml"], ["-plugin=python"], ["-plugin", "c"],
    ["-bvtProject=p"], ["-bvtGroup", "g"], ["-bvtService=s"], ["-bvtVersion=1.0"],
    ["-bvtCfgFile=x.toml"], ["-bvtCompanionUrl=http://c"], ["-bvtPlatform=x"], ["-bvtId=1"],
    ["-bvtEngIp=1.2.3.4"], ["-bvtCb=cb"], ["-bvtServiceAddress=h:1"], ["-bvtTimeout=500"],
    ["-bvtAsync", "-1"], ["-bvtAble=1"], ["--p=AIaaS"], ["-u", "http://x"],
])
def test_every_upstream_flag_without_a_meaning_here_gets_one_warning_naming_it(argv):
    notes = upstream_notes(parse("x.so", *argv))
    flag = argv[0].split("=")[0].lstrip("-")
    assert len(notes) == 1 and f"-{flag}" in notes[0], notes


def test_no_upstream_flag_no_warning():
    assert upstream_notes(parse("x.so", "-c", "a.toml", "-s", "svc", "-m", "0")) == []


@pytest.mark.parametrize("argv, mode", [(["-m=0"], 0), (["-m", "0"], 0), (["--m=1"], 1),
                                        (["-m=-1"], -1), ([], None)])
def test_m_is_an_int_in_every_go_spelling(argv, mode):
    assert parse("x.so", *argv).mode == mode


def test_m_other_than_0_says_that_the_file_is_read_locally():
    notes = upstream_notes(parse("x.so", "-m=1"))
    assert len(notes) == 1 and "-m=1" in notes[0] and "local" in notes[0]


def test_non_integer_m_is_a_usage_error():
    with pytest.raises(SystemExit) as exc:
        parse("x.so", "-m=zero")
    assert exc.value.code == 2


@pytest.mark.parametrize("argv", [["-v"], ["--v"], ["-v=true"], ["-v=1"]])
def test_v_prints_the_version_and_exits_0(capsys, argv):
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == aiges.__version__


def test_v_false_is_no_version():
    assert not parse("x.so", "-v=false").upstream_version


def test_version_names_aiges_python_aiohttp_and_cffi(capsys):
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    for text in (aiges.__version__, sys.version.split()[0], aiohttp.__version__,
                 cffi.__version__):
        assert text in out


def test_upstream_init_writes_the_default_file_and_never_overwrites(tmp_path, monkeypatch,
                                                                    capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["-init"]) == 0
    assert (tmp_path / "aiges.toml").read_text() == configuration.DEFAULT_TOML
    (tmp_path / "aiges.toml").write_text("[fc]\nmax = 2\n")
    assert main(["-init"]) == 0  # upstream: exit 0, the file kept
    assert (tmp_path / "aiges.toml").read_text() == "[fc]\nmax = 2\n"
    assert "not overwritten" in capsys.readouterr().err
    assert main(["--init"]) == 1  # ours refuses loudly


def test_mnist_is_accepted_and_points_to_aiges_create(capsys):
    assert main(["-mnist"]) == 1
    assert "aiges create" in capsys.readouterr().err


def test_go_style_values_of_long_upstream_flags():
    assert upstream_argv(["-dc=a", "--c=b.toml", "-bvtTimeout=5", "-init", "-v=false",
                          "--init=x.toml", "--port=5"]) == [
        "-dc", "a", "-c", "b.toml", "-bvtTimeout", "5", "-init", "--init=x.toml", "--port=5"]


# -- engine choice -------------------------------------------------------------------------

def so(folder, name="libwrapper.so"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"\x7fELF not really")
    return path


def test_libwrapper_in_the_current_folder_first(tmp_path):
    here = so(tmp_path / "here")
    so(tmp_path / "lib")
    env = {"LD_LIBRARY_PATH": str(tmp_path / "lib")}
    assert find_engine(env, tmp_path / "here")[0] == str(here)


def test_libwrapper_on_ld_library_path(tmp_path):
    lib = so(tmp_path / "b")
    env = {"LD_LIBRARY_PATH": f"{tmp_path / 'a'}:{tmp_path / 'b'}", "AIGES_PLUGIN_MODE": "c"}
    (tmp_path / "cwd").mkdir()
    assert find_engine(env, tmp_path / "cwd")[0] == str(lib)


def test_python_mode_serves_wrapper_py(tmp_path):
    so(tmp_path)
    (tmp_path / "wrapper.py").write_text("")
    assert find_engine({"AIGES_PLUGIN_MODE": "python"}, tmp_path)[0] == str(
        tmp_path / "wrapper.py")


def test_python_mode_finds_wrapper_py_on_pythonpath(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "wrapper.py").write_text("")
    (tmp_path / "cwd").mkdir()
    env = {"AIGES_PLUGIN_MODE": "python", "PYTHONPATH": str(tmp_path / "src")}
    assert find_engine(env, tmp_path / "cwd")[0] == str(tmp_path / "src" / "wrapper.py")


def test_nothing_found_names_where_it_looked_and_the_env_var(tmp_path):
    env = {"LD_LIBRARY_PATH": f"{tmp_path / 'lib'}"}
    with pytest.raises(NoEngine) as exc:
        find_engine(env, tmp_path)
    text = str(exc.value)
    for part in ("libwrapper.so", str(tmp_path), str(tmp_path / "lib"), "LD_LIBRARY_PATH",
                 "AIGES_PLUGIN_MODE"):
        assert part in text


def test_python_mode_without_wrapper_py(tmp_path):
    so(tmp_path)
    with pytest.raises(NoEngine, match="wrapper.py") as exc:
        find_engine({"AIGES_PLUGIN_MODE": "python"}, tmp_path)
    assert str(tmp_path) in str(exc.value) and "AIGES_PLUGIN_MODE" in str(exc.value)


def test_unknown_plugin_mode_is_refused(tmp_path):
    so(tmp_path)
    with pytest.raises(NoEngine, match="AIGES_PLUGIN_MODE.*c or python"):
        find_engine({"AIGES_PLUGIN_MODE": "go"}, tmp_path)


def test_main_without_an_engine_says_where_it_looked(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AIGES_PLUGIN_MODE", raising=False)
    monkeypatch.setenv("LD_LIBRARY_PATH", str(tmp_path / "nothing"))
    assert main(["-m=0"]) == 2
    err = capsys.readouterr().err
    assert "libwrapper.so" in err and "AIGES_PLUGIN_MODE" in err


# -- -m=0 and its config file ---------------------------------------------------------------

def test_m0_without_aiges_toml_serves_the_built_in_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for argv in (["-m=0"], ["-m=0", "-c=aiges.toml"], ["-m=0", "-c=./aiges.toml"]):
        config = load_config(parse("x.so", *argv))
        assert (config.port, config.instances) == (1888, 10)
        assert any("built-in defaults" in w and "--init" in w for w in config.warnings)
    assert not (tmp_path / "aiges.toml").exists()  # nothing written behind the user's back


def test_a_missing_config_other_than_aiges_toml_is_still_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(configuration.ConfigError, match="other.toml"):
        load_config(parse("x.so", "-m=0", "-c=other.toml"))
    with pytest.raises(configuration.ConfigError, match="aiges.toml"):
        load_config(parse("x.so", "-c=aiges.toml"))  # without -m=0: no upstream default


def test_bad_log_level_flag_is_a_config_error():
    with pytest.raises(configuration.ConfigError, match="loud"):
        load_config(parse("x.so", "--log-level", "loud"))
