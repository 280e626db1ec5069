"""What the top-level ``aiges_embed`` module offers: the module upstream's C++ loader
embedded in its Python (pybind11).

Wrappers start with ``try: from aiges_embed import ... except: from aiges.dto import ...``;
under aiges-load the first import succeeds with the same objects as ``aiges.dto``, and
the callbacks reach the session (and the service's meter/trace) through this loader.
"""
from __future__ import annotations

from aiges.dto import (DataListCls, DataListNode, Response, ResponseData,  # noqa: F401
                       SessionCreateResponse)
from aiges.python.push import routes

__all__ = ["DataListCls", "DataListNode", "Response", "ResponseData", "SessionCreateResponse",
           "callback", "callback_metric", "callback_trace"]


def callback(resp, usrTag: str) -> None:  # noqa: N803 (upstream name)
    """Push a session result, from any thread; ``usrTag`` is the tag (= sid) the
    session was created with."""
    routes.deliver(resp, str(usrTag))


def callback_metric(usrTag: str, key: str, count: int) -> None:  # noqa: N803
    """Count ``key`` in the service's meter (aiges_engine_meter_total); dropped when no
    service callbacks are set (a self-run)."""
    routes.meter(usrTag, key, count)


def callback_trace(usrTag: str, key: str, value: str) -> None:  # noqa: N803
    """A trace line (the service's trace log); dropped when tracing is off."""
    routes.trace(usrTag, key, value)
