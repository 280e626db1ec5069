"""``aiges.callback`` of the upstream SDK: ``callback(resp, handle, sid)`` pushes a
session result (upstream's gRPC plugin mode; the ailab wrappers use it).

Upstream put the result on a queue set with ``set_up(q)`` as a protobuf tagged with
``handle`` (the ``userTag`` wrapperCreate got); here it goes straight to the session
whose tag is ``handle``, else to the one whose sid is ``sid``. ``set_up(q)`` still
works for a wrapper's own tests: results for no live session are put on ``q`` as
the ``Response`` object itself. Importing this module creates no log folder
(upstream made /log/app).
"""
from __future__ import annotations

import logging

from aiges.python.push import routes

log = logging.getLogger("wrapper")


def set_up(_q) -> None:
    """Where results for no live session go (a queue with ``put``); None: dropped."""
    routes.set_sink(_q)


def callback(user_resp, handle: str, sid: str = "") -> None:
    routes.deliver(user_resp, str(handle), str(sid))
