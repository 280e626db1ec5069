"""Where ``aiges.dto.callback(response, sid)`` sends a session result.

Upstream's SDK exposes the push as a module-level function keyed by the session's
sid, so the routes live in one registry object; wrappers may call it from any thread.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

log = logging.getLogger(__name__)


class PushRoutes:
    def __init__(self):
        self._lock = threading.Lock()
        self._routes: dict[str, Callable] = {}

    def add(self, sid: str, deliver: Callable) -> None:
        with self._lock:
            self._routes[sid] = deliver

    def remove(self, sid: str) -> None:
        with self._lock:
            self._routes.pop(sid, None)

    def deliver(self, sid: str, response) -> None:
        with self._lock:
            route = self._routes.get(sid)
        if route is None:
            log.warning("callback for an unknown or finished session ignored", extra={"sid": sid})
            return
        route(response)


routes = PushRoutes()


def deliver(sid: str, response) -> None:
    routes.deliver(sid, response)
