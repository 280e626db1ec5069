"""Private copies of a library (hot reload): each is a new image with state of its own,
and the copy is deleted as soon as it is mapped (or refused)."""
from __future__ import annotations

import tempfile

import pytest

from aiges.engine import Data
from aiges.errors import EngineLoadError
from aiges.native import load
from tests.helpers import read_counters


@pytest.fixture
def copies(tmp_path, monkeypatch):
    """The temp dir private copies go to, empty at first."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_two_copies_of_one_library_keep_state_apart(echo_so, copies, tmp_path):
    first, second = load(echo_so, private=True), load(echo_so, private=True)
    assert first.path == second.path == echo_so  # named by the original, for logs and errors
    assert list(copies.iterdir()) == []  # deleted once mapped: nothing to leak
    first.init({"counters_file": str(tmp_path / "first.txt")})
    second.init({"counters_file": str(tmp_path / "second.txt")})
    first.exec("t", {"sid": "t"}, [Data("input", b"x")], [])
    assert read_counters(tmp_path / "first.txt")["exec"] == 1
    assert read_counters(tmp_path / "second.txt")["exec"] == 0  # a separate image
    for engine in (first, second):
        engine.fini()
        engine.close()
        engine.close()  # idempotent


def test_a_new_build_shows_its_version(native_dir, copies):
    engine = load(native_dir / "libecho_next.so", private=True)
    engine.init({})
    assert engine.version() == "echo/2.0.0-next"
    out = engine.exec("t", {"sid": "t"}, [Data("input", b"x")], [])
    assert {d.key: d.data for d in out}["version"] == b"echo/2.0.0-next"
    engine.fini()
    engine.close()


@pytest.mark.parametrize("name, text", [("libmissing.so", "wrapperExecFree"),
                                        ("libnothere.so", "cannot open")])
def test_a_refused_copy_leaves_nothing_behind(native_dir, copies, name, text):
    with pytest.raises(EngineLoadError) as info:
        load(native_dir / name, private=True)
    assert text in str(info.value) and str(copies) not in str(info.value)
    assert list(copies.iterdir()) == []
