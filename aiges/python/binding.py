"""Calling wrapper methods whatever variant of the upstream signature they use.

Upstream wrappers spell arguments differently (``usrTag``/``userTag``, an extra
``sid``, ``req``/``reqData``/``datas``). Each method is bound once, at load time,
to a recipe of which value goes to which position; calls then cost nothing extra.
"""
from __future__ import annotations

import inspect
from operator import itemgetter

from aiges.errors import EngineLoadError

ALIASES = {
    "params": {"params", "param", "parameters"},
    "data": {"reqData", "reqdata", "req", "datas", "data", "req_data"},
    "tag": {"usrTag", "userTag", "usr_tag", "user_tag", "tag"},
    "pers": {"persId", "psrId", "pers_id", "persid", "resId", "res_id"},
    "sid": {"sid"},
    "handle": {"handle"},
    "config": {"config", "cfg"},
    "ret": {"ret", "code", "errNum", "err"},
}


def bind(fn, order: tuple[str, ...]):
    """A function taking the values of ``order`` (by position, in that order) and
    calling ``fn`` with the ones its signature asks for, recognised by name, else by
    position. A signature that asks for them all, in that order, gets ``fn`` itself."""
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return fn
    recipe = []
    for index, param in enumerate(parameters):
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.KEYWORD_ONLY):
            break
        name = next((n for n in order if param.name in ALIASES.get(n, {n})), None)
        if name is None and index < len(order) and param.default is param.empty:
            name = order[index]
        if name is None:
            if param.default is param.empty:
                raise EngineLoadError(f"{fn.__qualname__}: cannot tell what to pass as "
                                      f"'{param.name}' (expected {', '.join(order)})")
            break
        recipe.append(order.index(name))
    # No loop in Python on a call of a hot method: fn itself, a slice, or one C call
    # that picks the values.
    if recipe == list(range(len(order))):
        return fn
    if not recipe:
        return lambda *values: fn()
    if recipe == list(range(len(recipe))):
        count = len(recipe)
        return lambda *values: fn(*values[:count])
    pick = itemgetter(*recipe)
    if len(recipe) == 1:
        return lambda *values: fn(pick(values))
    return lambda *values: fn(*pick(values))
