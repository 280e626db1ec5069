"""The cffi boundary: the only package that imports cffi or touches cdata."""
from aiges.native.library import CEngine, load

__all__ = ["CEngine", "load"]
