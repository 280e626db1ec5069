"""Some upstream wrappers import the constants as ``aiges.types``."""
from aiges.core.types import *  # noqa: F401,F403
