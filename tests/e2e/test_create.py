"""`aiges create` projects build, test and serve as generated (SPEC 9).

The aiges command runs as `python -m aiges.tool`; CMake reaches it through a
small `aiges` script put first on PATH.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

AIGES = [sys.executable, "-m", "aiges.tool"]

needs_sdk = pytest.mark.skipif(
    importlib.util.find_spec("aiges.sdk") is None,
    reason="the aiges.sdk compat module (Python engines) is not there yet")


def run(cmd: list[str], cwd: Path, env: dict | None = None,
        ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, check=False, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300)
    if ok:
        assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}"
    return proc


@pytest.fixture
def env_with_aiges(tmp_path) -> dict:
    """The environment with an `aiges` command (python -m aiges.tool) first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "aiges"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m aiges.tool "$@"\n')
    shim.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def env_without_aiges() -> dict:
    path = [d for d in os.environ.get("PATH", "").split(os.pathsep)
            if d and not (Path(d) / "aiges").exists()]
    return {**os.environ, "PATH": os.pathsep.join(path)}


def readme_example(readme: str) -> tuple[str, dict, dict]:
    """The README's curl example: URL path, request body, and the documented response."""
    curl = re.search(r"curl -s (\S+) .*?-d '(.*?)'", readme, re.DOTALL)
    assert curl, "no curl example in README.md"
    documented = re.search(r"```json\n(.*?)```", readme, re.DOTALL)
    assert documented, "no documented response in README.md"
    return (urllib.parse.urlsplit(curl[1]).path, json.loads(curl[2]),
            json.loads(documented[1]))


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 200
        return json.loads(resp.read())


def check_readme_request(service, root: Path) -> None:
    path, body, documented = readme_example((root / "README.md").read_text())
    answer = post(service.url + path, body)
    assert answer["payload"] == documented["payload"]
    assert answer["header"]["code"] == documented["header"]["code"] == 0
    assert answer["header"]["status"] == documented["header"]["status"]


def test_c_project_builds_passes_ctest_and_serves(tmp_path, start, env_with_aiges):
    run([*AIGES, "create", "-n", "demo", "--lang", "c"], cwd=tmp_path)
    run(["cmake", "-S", "demo", "-B", "demo/build"], cwd=tmp_path, env=env_with_aiges)
    run(["cmake", "--build", "demo/build"], cwd=tmp_path)
    tested = run(["ctest", "--test-dir", "demo/build", "--output-on-failure"], cwd=tmp_path)
    assert "100% tests passed" in tested.stdout

    demo = tmp_path / "demo"
    service = start(str(demo / "build" / "libdemo.so"), "-c", str(demo / "aiges.toml"))
    check_readme_request(service, demo)
    assert "ignored unknown keys" not in service.log


def test_c_project_needs_the_headers_and_takes_an_include_dir(tmp_path):
    run([*AIGES, "create", "-n", "demo", "--lang", "c"], cwd=tmp_path)
    lost = run(["cmake", "-S", "demo", "-B", "demo/lost"], cwd=tmp_path,
               env=env_without_aiges(), ok=False)
    assert lost.returncode != 0
    assert "Cannot find the AIGES headers" in lost.stdout
    assert "-DAIGES_INCLUDE_DIR" in lost.stdout

    include = run([*AIGES, "--include-dir"], cwd=tmp_path).stdout.strip()
    run(["cmake", "-S", "demo", "-B", "demo/build", f"-DAIGES_INCLUDE_DIR={include}"],
        cwd=tmp_path, env=env_without_aiges())
    run(["cmake", "--build", "demo/build", "--target", "demo"], cwd=tmp_path)
    assert (tmp_path / "demo" / "build" / "libdemo.so").is_file()


def test_create_refuses_a_non_empty_directory(tmp_path):
    run([*AIGES, "create", "-n", "demo"], cwd=tmp_path)
    again = run([*AIGES, "create", "-n", "demo", "--lang", "c"], cwd=tmp_path, ok=False)
    assert again.returncode == 2
    assert "not empty" in again.stdout
    assert not (tmp_path / "demo" / "CMakeLists.txt").exists()


@needs_sdk
def test_python_project_passes_its_tests_and_self_check(tmp_path):
    run([*AIGES, "create", "-n", "pydemo", "--lang", "python"], cwd=tmp_path)
    run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "pydemo"],
        cwd=tmp_path)
    run([sys.executable, "wrapper.py"], cwd=tmp_path / "pydemo")


@needs_sdk
def test_python_project_serves(tmp_path, start):
    run([*AIGES, "create", "-n", "pydemo", "--lang", "python"], cwd=tmp_path)
    pydemo = tmp_path / "pydemo"
    service = start(str(pydemo / "wrapper.py"), "-c", str(pydemo / "aiges.toml"))
    check_readme_request(service, pydemo)
    assert "ignored unknown keys" not in service.log
