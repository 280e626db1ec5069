"""Loading an engine by its path, for every way of serving it: aiges-load (aiges.cli),
its hot reload and a Ray Serve replica (aiges.ray.replica), which must not import the
CLI (or the aiohttp server) to get it."""
from __future__ import annotations

from aiges.engine import Engine


def load_engine(path: str) -> Engine:
    """A wrapper.py is a Python engine; anything else is a shared library. Blocking:
    the library's constructors or the module's top level run here."""
    from aiges.generation import open_engine
    return open_engine(path)
