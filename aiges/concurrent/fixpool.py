"""``FixedPool``: at most ``capacity`` objects (session workers), each under a new key."""
from __future__ import annotations

import itertools
import threading

from aiges.concurrent.pool import Pool


class FixedPool(Pool):
    """Unlike upstream, each instance has its own dict (upstream's was one class attribute
    shared by every pool), keys are never reused while live (upstream's ``worker-{count}``
    could hand out the key of a live worker after a remove), and ``remove`` stops a
    Worker it drops, so an abandoned session's thread ends."""

    capacity = 1

    def __init__(self):
        self.pool: dict = {}
        self.allocated = 0
        self._keys = itertools.count()
        self._lock = threading.Lock()

    def set_capacity(self, c) -> None:
        self.capacity = int(c)

    def get(self, key):
        return self.pool.get(key)

    def add(self, obj) -> tuple[bool, str]:
        with self._lock:
            if self.allocated >= self.capacity:
                return False, ""
            key = f"worker-{next(self._keys)}"
            self.pool[key] = obj
            self.allocated = len(self.pool)
            return True, key

    def remove(self, key) -> bool:
        with self._lock:
            obj = self.pool.pop(key, None)
            self.allocated = len(self.pool)
        stop = getattr(obj, "stop", None)
        if callable(stop):
            stop()
        return True

    def clear_all(self) -> None:
        with self._lock:
            dropped, self.pool, self.allocated = list(self.pool.values()), {}, 0
        for obj in dropped:
            stop = getattr(obj, "stop", None)
            if callable(stop):
                stop()
