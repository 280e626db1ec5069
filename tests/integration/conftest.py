"""Fixtures of the integration suites: real engines loaded in process."""
from __future__ import annotations

import pytest

from aiges.native import load as load_native
from aiges.python import load as load_python
from tests.helpers import counted


@pytest.fixture(params=["c", "py"])
def echo_kinds(request, echo_so, py_examples, tmp_path):
    """The echo engine of each kind, initialised with a counters file (engine.counters());
    every wrapperCreate matched by a wrapperDestroy and every output freed by the end."""
    if request.param == "c":
        engine = load_native(echo_so)
    else:
        engine = load_python(py_examples / "echo" / "wrapper.py")
    with counted(engine, tmp_path):
        yield engine
    counters = engine.counters()
    assert counters["create"] == counters["destroy"] and counters["live_exec"] == 0, counters
