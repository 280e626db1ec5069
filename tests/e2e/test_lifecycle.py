"""Start-up checks and shutdown of the real aiges-load process."""
from __future__ import annotations

import asyncio
import subprocess
import time

import pytest

from tests.e2e.test_once import body, post
from tests.helpers import AIGES_LOAD, read_counters

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("library, expected", [
    ("libmissing.so", ["wrapperExecFree"]),
    ("libnoinit.so", ["wrapperInit"]),
    ("libmangled.so", ["wrapperInit", "_Z11wrapperInitP9ParamList", "lacks extern"]),
])
def test_incomplete_libraries_are_refused_with_the_symbol_named(start, native_dir, library,
                                                                expected):
    service = start(str(native_dir / library), ready=False)
    assert service.wait_exit() != 0
    for text in expected:
        assert text in service.log


def test_missing_file_is_refused(start, tmp_path):
    service = start(str(tmp_path / "libnothere.so"), ready=False)
    assert service.wait_exit() != 0
    assert "cannot open" in service.log


def test_init_failure_exits_non_zero_with_the_engine_text(start, native_dir):
    service = start(str(native_dir / "libinitfail.so"), ready=False)
    assert service.wait_exit() == 1
    assert "initfail: model file not found;code=12345" in service.log


def test_sigterm_when_idle(start, echo_engine, echo_config, counters_file):
    service = start(echo_engine, "-c", str(echo_config))
    assert "ready on http://127.0.0.1:" in service.log
    assert "echo/1.0.0" in service.log  # wrapperVersion at start-up
    assert service.terminate() == 0
    counters = read_counters(counters_file)
    assert (counters["init"], counters["fini"]) == (1, 1)


async def test_sigterm_under_load_loses_no_request(http, start, echo_engine, echo_config,
                                                   counters_file):
    service = start(echo_engine, "-c", str(echo_config))
    requests = [asyncio.create_task(post(http, service, body(f"r{i}", params={"delay_ms": 300})))
                for i in range(20)]
    await asyncio.sleep(0.15)
    service.proc.send_signal(15)
    answers = await asyncio.gather(*requests)
    assert [a[0] for a in answers] == [200] * 20
    assert sorted(a[1]["payload"]["input"]["text"] for a in answers) == sorted(
        f"r{i}" for i in range(20))
    assert service.wait_exit() == 0
    counters = read_counters(counters_file)
    assert counters["fini"] == 1 and counters["live_exec"] == 0
    assert counters["exec"] == counters["execfree"] == 20


def test_init_config_pairs_reach_the_engine(start, echo_engine, echo_config):
    service = start(echo_engine, "-c", str(echo_config))
    import json
    import urllib.request
    req = urllib.request.Request(service.url + "/v1/svcName",
                                 data=json.dumps(body(params={"show_config": True})).encode())
    with urllib.request.urlopen(req) as resp:
        out = json.load(resp)
    config = json.loads(out["payload"]["config"]["text"])
    assert config["model"] == "tiny"


def test_upstream_style_command_line(tmp_path, start, echo_so):
    (tmp_path / "aiges.toml").write_text('[svcName]\nhttp_listen = "127.0.0.1:1"\n'
                                         '[aiges]\nnumaNode = 0\n')
    # -m=0 and -c=... as upstream scripts pass them; --port wins over the file.
    service = start(echo_so, "-m=0", "-c=aiges.toml", "-s", "svcName")
    assert "ignored unknown keys" in service.log and "aiges.numaNode" in service.log
    assert service.terminate() == 0


def test_init_writes_a_default_file(tmp_path):
    out = subprocess.run([AIGES_LOAD, "--init"], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0
    text = (tmp_path / "aiges.toml").read_text()
    assert "[fc]" in text and "max = 10" in text and "# " in text
    again = subprocess.run([AIGES_LOAD, "--init"], cwd=tmp_path, capture_output=True, text=True)
    assert again.returncode != 0 and "not overwritten" in again.stderr


SLOW_INIT = """\
import time

from aiges.sdk import WrapperBase


class Wrapper(WrapperBase):
    def wrapperInit(self, config):
        time.sleep(60)  # a model that takes a minute to load
        return 0

    def wrapperOnceExec(self, params, reqData, usrTag="", persId=0):
        return None
"""


async def test_port_in_use_is_a_clear_error_before_the_engine_starts(http, start, echo_so,
                                                                       tmp_path):
    first = start(echo_so)
    slow = tmp_path / "wrapper.py"
    slow.write_text(SLOW_INIT)
    started = time.monotonic()
    second = start(str(slow), "--port", str(first.port), ready=False)
    assert second.wait_exit() == 1
    assert time.monotonic() - started < 10  # not after wrapperInit's minute
    assert "cannot listen" in second.log
    assert (await post(http, first, body()))[0] == 200
