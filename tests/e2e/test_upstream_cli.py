"""Upstream AIGES's own files and command lines run aiges-load unchanged (issue 18):
`AIservice -m=0 -c=aiges.toml -s=svcName -u=... -p=AIaaS -g=dx` with no engine argument
(./libwrapper.so, or ./wrapper.py with AIGES_PLUGIN_MODE=python), upstream's sample
aiges.toml files, and libraries that embed CPython refused before they can abort us."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import urllib.request
from pathlib import Path

import _cffi_backend
import pytest

from aiges.native.embedded import embeds_python
from tests.e2e.test_once import body
from tests.helpers import AIGES_LOAD, ECHO_WRAPPER, Service, free_port

pytestmark = pytest.mark.e2e

CONFIGS = Path(__file__).resolve().parent / "upstream_configs"
DOCKERFILE = ["-m=0", "-c=aiges.toml", "-s=svcName", "-u=http://companion.xfyun.iflytek:6868",
              "-p=AIaaS", "-g=dx"]


def upstream_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "AIGES_PLUGIN_MODE"}
    return {**env, **extra}


class Upstream(Service):
    """aiges-load started the upstream way: no engine argument, in ``cwd``; only
    --host/--port are added, so that tests never collide on upstream's port 1888."""

    def __init__(self, cwd: Path, *args: str, env: dict | None = None, ready: bool = True):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = cwd / f"aiges-{self.port}.out"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [AIGES_LOAD, *args, "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
            env=upstream_env() if env is None else env)
        if ready:
            self.wait_ready()


@pytest.fixture
def upstream(tmp_path):
    started: list[Upstream] = []

    def _start(*args: str, **kw) -> Upstream:
        service = Upstream(tmp_path, *args, **kw)
        started.append(service)
        return service

    yield _start
    for service in started:
        service.close()


def once(service: Upstream, text: str = "hello upstream") -> dict:
    request = urllib.request.Request(service.url + "/v1/svcName",
                                     data=json.dumps(body(text)).encode())
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 200
        return json.load(resp)


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.toml")))
def test_upstream_config_and_command_line_serve_once(tmp_path, upstream, native_dir, name):
    shutil.copy(CONFIGS / name, tmp_path / "aiges.toml")
    shutil.copy(native_dir / "libecho.so", tmp_path / "libwrapper.so")
    service = upstream(*DOCKERFILE)
    doc = once(service)
    assert doc["header"]["code"] == 0
    assert doc["payload"]["input"]["text"] == "hello upstream"
    assert service.terminate() == 0
    # [log] file = "./log/aiges.log": its folder is made, relative to the working folder.
    assert (tmp_path / "log" / "aiges.log").is_file()
    if "level = \"error\"" not in (tmp_path / "aiges.toml").read_text():
        assert "ready on" in (tmp_path / "log" / "aiges.log").read_text()
        # The upstream flags that mean nothing here are named, once each.
        log = service.log
        for flag in ("-u=http://companion.xfyun.iflytek:6868", "-p=AIaaS", "-g=dx"):
            assert log.count(flag) == 1, log


def test_m0_in_an_empty_folder_serves_the_built_in_defaults(tmp_path, upstream, native_dir):
    shutil.copy(native_dir / "libecho.so", tmp_path / "libwrapper.so")
    service = upstream("-m=0")
    assert once(service)["header"]["code"] == 0
    assert "built-in defaults" in service.log
    assert not (tmp_path / "aiges.toml").exists()
    assert service.terminate() == 0


def test_libwrapper_found_on_ld_library_path(tmp_path, upstream, native_dir):
    (tmp_path / "library").mkdir()
    shutil.copy(native_dir / "libecho.so", tmp_path / "library" / "libwrapper.so")
    path = os.pathsep.join(filter(None, [str(tmp_path / "library"),
                                         os.environ.get("LD_LIBRARY_PATH")]))
    service = upstream(*DOCKERFILE, env=upstream_env(LD_LIBRARY_PATH=path))
    assert once(service)["header"]["code"] == 0


def test_python_mode_serves_wrapper_py_and_says_the_plugin_command_is_not_run(
        tmp_path, upstream, native_dir):
    shutil.copy(CONFIGS / "aiges_default_init.toml", tmp_path / "aiges.toml")
    shutil.copy(ECHO_WRAPPER, tmp_path / "wrapper.py")
    shutil.copy(native_dir / "libecho.so", tmp_path / "libwrapper.so")  # not chosen
    service = upstream(*DOCKERFILE, env=upstream_env(AIGES_PLUGIN_MODE="python"))
    assert once(service)["header"]["code"] == 0
    assert "pythonPluginCmd" in service.log and "not run" in service.log
    assert "wrapper.py" in service.log


def test_no_engine_anywhere_is_a_clear_error(tmp_path, upstream):
    env = upstream_env(LD_LIBRARY_PATH=str(tmp_path / "empty"))
    service = upstream(*DOCKERFILE, env=env, ready=False)
    assert service.wait_exit() == 2
    for text in ("libwrapper.so", str(tmp_path), "LD_LIBRARY_PATH", "AIGES_PLUGIN_MODE"):
        assert text in service.log


@pytest.mark.parametrize("flag", ["-v", "--version"])
def test_version_flags(flag):
    out = subprocess.run([AIGES_LOAD, flag], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.strip()


# -- libraries that embed CPython --------------------------------------------------------

EMBED_C = r"""
/* A stand-in for upstream's aiges_c_python_wrapper: a wrapper library that links libpython
   and starts an interpreter of its own when it is loaded (pybind11 does so in a static
   initialiser). Inside a Python process that interpreter already runs: like pybind11's
   "Can't add new modules after the interpreter has been initialized", abort. Declared
   here, not from Python.h: the test needs only libpython, not the development headers. */
#include <stdlib.h>
void Py_Initialize(void);
int Py_IsInitialized(void);
__attribute__((constructor)) static void start_python(void)
{
    if (Py_IsInitialized())
        abort();
    Py_Initialize();
}
int wrapperInit(void* cfg) { (void)cfg; return 0; }
int wrapperFini(void) { return 0; }
int wrapperExec(const char* t, void* p, void* r, void** o, unsigned int* ids, int n)
{ (void)t; (void)p; (void)r; (void)ids; (void)n; *o = 0; return 0; }
int wrapperExecFree(const char* t, void** o) { (void)t; (void)o; return 0; }
"""

CALLS_ONLY_C = r"""
/* Calls the interpreter's start without linking libpython: an undefined dynamic symbol. */
int Py_InitializeFromConfig(const void* config);
int start(void) { return Py_InitializeFromConfig(0); }
"""


def compile_library(folder: Path, name: str, source: str, *flags: str) -> Path:
    cc = shutil.which(os.environ.get("CC", "cc"))
    if cc is None:
        pytest.skip("no C compiler")
    src = folder / f"{name}.c"
    src.write_text(source)
    out = folder / f"lib{name}.so"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(out), str(src), *flags], check=True)
    return out


@pytest.fixture(scope="module")
def libpython_flags() -> list[str]:
    """How to link a shared libpython (this Python's, by its link name or its soname), or
    skip: a static-only build without one."""
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    for name in (sysconfig.get_config_var("LDLIBRARY"), sysconfig.get_config_var("INSTSONAME")):
        path = Path(libdir) / (name or "")
        if name and ".so" in name and path.is_file():
            return [str(path), f"-Wl,-rpath,{libdir}"]
    pytest.skip(f"no shared libpython for {sys.executable}")


@pytest.fixture(scope="module")
def embed_so(tmp_path_factory, libpython_flags) -> Path:
    return compile_library(tmp_path_factory.mktemp("embed"), "embed", EMBED_C, *libpython_flags)


def test_embedding_libraries_are_recognised(embed_so, tmp_path, native_dir):
    assert "libpython" in embeds_python(embed_so)
    calls = compile_library(tmp_path, "calls", CALLS_ONLY_C)
    assert "Py_InitializeFromConfig" in embeds_python(calls)
    # Engines and Python's own extension modules (which call Py* but never start it) pass.
    assert embeds_python(native_dir / "libecho.so") is None
    assert embeds_python(_cffi_backend.__file__) is None
    assert embeds_python(tmp_path / "missing.so") is None
    (tmp_path / "text.so").write_text("not an ELF file")
    assert embeds_python(tmp_path / "text.so") is None


def test_an_embedding_library_is_refused_before_it_can_abort_the_loader(
        tmp_path, upstream, embed_so):
    service = upstream(str(embed_so), ready=False)
    assert service.wait_exit() == 1  # not -6 (SIGABRT) from the library's constructor
    log = service.log
    for text in ("embeds CPython", "libpython", "wrapper.py", "AIGES_PLUGIN_MODE=python"):
        assert text in log, log


def test_upstream_python_image_layout_serves_its_wrapper_py(tmp_path, upstream, embed_so):
    """An upstream image for a Python engine: libwrapper.so is the CPython embed, which
    imports wrapper.py from the working folder. Found the upstream way, that wrapper.py
    is served directly, as the embed would have run it."""
    shutil.copy(embed_so, tmp_path / "libwrapper.so")
    shutil.copy(CONFIGS / "aiges_demo_mmocr.toml", tmp_path / "aiges.toml")
    service = upstream(*DOCKERFILE, ready=False)
    assert service.wait_exit() == 1  # no wrapper.py next to it: refused, saying why
    assert "embeds CPython" in service.log
    shutil.copy(ECHO_WRAPPER, tmp_path / "wrapper.py")
    service = upstream(*DOCKERFILE)
    assert once(service)["header"]["code"] == 0
    assert "embeds CPython" in service.log and "wrapper.py" in service.log
