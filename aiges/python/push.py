"""Where the upstream SDK's module-level push functions send their calls.

Upstream exposes the push as module functions (``aiges.dto.callback(resp, sid)``,
``aiges_embed.callback(resp, usrTag)``, ``aiges.callback.callback(resp, tag, sid)``,
``aiges_embed.callback_metric/_trace``), so the routes live in one registry object,
keyed by the session's tag (which this loader makes the sid); wrappers may call it
from any thread. What no session claims goes to the queue a wrapper set up with
``aiges.dto.init_rq()`` or ``aiges.callback.set_up(q)`` (upstream's self-tests), else
it is logged and dropped.
"""
from __future__ import annotations

import logging
from typing import Callable

log = logging.getLogger(__name__)


class PushRoutes:
    def __init__(self):
        self._routes: dict[str, Callable] = {}
        self._sink = None       # a queue.Queue-like object with put(), or None
        self._meter: Callable | None = None
        self._trace: Callable | None = None

    # Each change and lookup is one dict operation, atomic under the GIL: wrappers'
    # threads and the loop need no lock.
    def add(self, sid: str, deliver: Callable) -> None:
        self._routes[sid] = deliver

    def remove(self, sid: str) -> None:
        self._routes.pop(sid, None)

    def set_sink(self, sink) -> None:
        """Where results for no live session go (``init_rq``/``set_up``); None: dropped."""
        self._sink = sink

    def set_ctrl(self, meter: Callable | None, trace: Callable | None) -> None:
        """The service's meter(tag, key, count) and trace(tag, key, value) callbacks."""
        self._meter, self._trace = meter, trace

    def deliver(self, response, *keys: str) -> None:
        """To the first of ``keys`` (a tag, then a sid) that names a live session."""
        routes = self._routes
        route = None
        for key in keys:
            route = routes.get(key)
            if route is not None:
                break
        if route is not None:
            route(response)
        elif self._sink is not None:
            self._sink.put(response)
        else:
            log.warning("callback for an unknown or finished session ignored",
                        extra={"sid": next(iter(keys), "")})

    def meter(self, tag: str, key: str, count) -> None:
        if self._meter is not None:
            self._meter(str(tag), str(key), int(count))

    def trace(self, tag: str, key: str, value) -> None:
        if self._trace is not None:
            self._trace(str(tag), str(key), str(value))


routes = PushRoutes()


def deliver(sid: str, response) -> None:
    routes.deliver(response, sid)
