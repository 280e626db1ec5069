"""Shared fixtures: the CMake build of native_examples (once per test session)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def native_dir() -> Path:
    """build/native_examples, configured and built once per session (incremental)."""
    build = Path(os.environ.get("AIGES_BUILD_DIR", REPO / "build"))
    if not os.environ.get("AIGES_SKIP_BUILD"):
        subprocess.run(["cmake", "-S", str(REPO), "-B", str(build)], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", str(build), "-j", "2"], check=True,
                       stdout=subprocess.DEVNULL)
    return build / "native_examples"


@pytest.fixture(scope="session")
def echo_so(native_dir) -> str:
    return str(native_dir / "libecho.so")


@pytest.fixture(scope="session")
def py_examples() -> Path:
    return REPO / "python_examples"


@pytest.fixture(params=["c", "py"])
def echo_engine(request, native_dir, py_examples) -> str:
    """The echo engine of each kind: the behaviour suites run against both."""
    if request.param == "c":
        return str(native_dir / "libecho.so")
    return str(py_examples / "echo" / "wrapper.py")


@pytest.fixture(params=["c", "py"])
def stream_engine(request, native_dir, py_examples) -> str:
    if request.param == "c":
        return str(native_dir / "libstream.so")
    return str(py_examples / "stream" / "wrapper.py")
