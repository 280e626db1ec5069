"""`aiges create` projects build, test and serve as generated (SPEC 9).

They are built, tested and served with the commands `aiges create` prints after
"next:" (and its README's), run as written by a shell whose PATH holds neither
the venv's bin nor any `aiges` command, as after `make serve` without activating.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import AIGES_LOAD, Service

pytestmark = pytest.mark.e2e

AIGES = [sys.executable, "-m", "aiges.tool"]
VENV_BIN = Path(sys.executable).parent

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


def env_without_aiges(**extra: str) -> dict:
    """PATH without the venv's bin or any other directory holding an `aiges` command."""
    path = [d for d in os.environ.get("PATH", "").split(os.pathsep)
            if d and Path(d).resolve() != VENV_BIN.resolve() and not (Path(d) / "aiges").exists()]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return {**env, "PATH": os.pathsep.join(path), **extra}


def create(tmp_path: Path, name: str, lang: str) -> list[str]:
    """`aiges create` in tmp_path; the commands it prints after "next:"."""
    lines = run([*AIGES, "create", "-n", name, "--lang", lang], cwd=tmp_path).stdout.splitlines()
    steps = [line.strip() for line in lines[lines.index("next:") + 1:]]
    assert steps[0] == f"cd {name}" and len(steps) == 3, steps
    return steps


def sh(command: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return run(["sh", "-c", command], cwd=cwd, env=env)


def readme_block(readme: str, heading: str) -> list[str]:
    """The commands of the sh block under ``## heading``, comments dropped."""
    section = readme.split(f"## {heading}\n", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)[1]
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def serve_as_printed(step: str, root: Path) -> Service:
    """The printed serve command, run in the project on a free port (its toml says 1888)."""
    argv = shlex.split(step)
    assert argv[0] == AIGES_LOAD, "the serve command names the aiges-load beside the Python"
    return Service(*argv[1:], cwd=root, env=env_without_aiges())


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


def test_c_project_builds_tests_and_serves_as_printed(tmp_path):
    cd, build, serve = create(tmp_path, "demo", "c")
    demo = tmp_path / "demo"
    assert readme_block((demo / "README.md").read_text(), "Build and test") == [build]
    assert readme_block((demo / "README.md").read_text(), "Serve") == [serve]
    tested = sh(f"{cd} && {build}", tmp_path, env_without_aiges())
    assert f"AIGES headers: {run([*AIGES, '--include-dir'], cwd=tmp_path).stdout.strip()}" \
        in tested.stdout
    assert "100% tests passed" in tested.stdout

    service = serve_as_printed(serve, demo)
    try:
        check_readme_request(service, demo)
        assert "ignored unknown keys" not in service.log
    finally:
        service.close()


def test_c_project_without_aiges_says_what_to_set(tmp_path):
    run([*AIGES, "create", "-n", "demo", "--lang", "c"], cwd=tmp_path)
    lost = run(["cmake", "-S", "demo", "-B", "demo/lost", "-DAIGES_PYTHON=/nonexistent/python"],
               cwd=tmp_path, env=env_without_aiges(), ok=False)
    assert lost.returncode != 0
    assert "Cannot find the AIGES headers" in lost.stdout
    assert "/nonexistent/python -m aiges.tool --include-dir" in lost.stdout
    assert "no aiges command on PATH" in lost.stdout
    assert "-DAIGES_INCLUDE_DIR" in lost.stdout and "-DAIGES_PYTHON" in lost.stdout

    include = run([*AIGES, "--include-dir"], cwd=tmp_path).stdout.strip()
    run(["cmake", "-S", "demo", "-B", "demo/build", "-DAIGES_PYTHON=/nonexistent/python",
         f"-DAIGES_INCLUDE_DIR={include}"], cwd=tmp_path, env=env_without_aiges())
    run(["cmake", "--build", "demo/build", "--target", "demo"], cwd=tmp_path)
    assert (tmp_path / "demo" / "build" / "libdemo.so").is_file()


def test_create_refuses_a_non_empty_directory(tmp_path):
    run([*AIGES, "create", "-n", "demo"], cwd=tmp_path)
    again = run([*AIGES, "create", "-n", "demo", "--lang", "c"], cwd=tmp_path, ok=False)
    assert again.returncode == 2
    assert "not empty" in again.stdout
    assert not (tmp_path / "demo" / "CMakeLists.txt").exists()


@needs_sdk
def test_python_project_tests_self_checks_and_serves_as_printed(tmp_path):
    cd, test, serve = create(tmp_path, "pydemo", "python")
    pydemo = tmp_path / "pydemo"
    readme = (pydemo / "README.md").read_text()
    assert readme_block(readme, "Test")[0] == test
    assert readme_block(readme, "Serve") == [serve]
    # The serve environment (make serve) has no pytest: hide the test extra's.
    no_pytest = tmp_path / "no_pytest"
    no_pytest.mkdir()
    (no_pytest / "pytest.py").write_text("raise ImportError('No module named pytest')\n")
    env = env_without_aiges(PYTHONPATH=str(no_pytest))
    tested = sh(f"{cd} && {test}", tmp_path, env)
    assert re.search(r"^Ran 2 tests in .*\n\nOK$", tested.stdout, re.MULTILINE), tested.stdout
    for command in readme_block(readme, "Test")[1:]:
        sh(command, pydemo, env)

    service = serve_as_printed(serve, pydemo)
    try:
        check_readme_request(service, pydemo)
        assert "ignored unknown keys" not in service.log
    finally:
        service.close()
