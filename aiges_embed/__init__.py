"""``aiges_embed``: the module upstream's C++ loader embedded in its Python; upstream
wrappers import it first (see aiges.python.embed)."""
from aiges.python.embed import *  # noqa: F403
from aiges.python.embed import __all__  # noqa: F401
