"""Python engines: a wrapper.py written for the upstream aiges SDK, behind the Engine protocol."""
from aiges.python.engine import PythonEngine, load

__all__ = ["PythonEngine", "load"]
