"""Personalization resource ids (SPEC 5): which ids are loaded, and which are being
loaded or unloaded right now. Knows nothing of HTTP or the engine; event-loop only.

An id counts as in use from the moment its load starts until its unload succeeded,
so two loads never get the same id. Ids the loader picks come from a counter that
starts at 1 and skips ids in use: a recently unloaded id is not handed out again
soon, so a client holding a stale id does not silently reach someone else's resource.
"""
from __future__ import annotations

import enum

from aiges import errors
from aiges.errors import AigesError

MAX_ID = 0xFFFFFFFF  # psrIds are unsigned int


class _Phase(enum.Enum):
    LOADING = "being loaded"
    LOADED = "loaded"
    UNLOADING = "being unloaded"


class ResourceIds:
    def __init__(self) -> None:
        self._phase: dict[int, _Phase] = {}
        self._next = 1

    def loaded(self) -> list[int]:
        return sorted(i for i, phase in self._phase.items() if phase is _Phase.LOADED)

    def reserve(self, wanted: int | None = None) -> int:
        """The id for a load about to start: ``wanted``, or the next id not in use.
        An id in use is a conflict: 10107, HTTP 409."""
        if wanted is None:
            wanted = self._pick()
        elif wanted in self._phase:
            raise AigesError(errors.INVALID_PARAM,
                             f"resource {wanted} is already {self._phase[wanted].value}", 409)
        self._phase[wanted] = _Phase.LOADING
        return wanted

    def _pick(self) -> int:
        # At most len(in use) + 1 steps; 2**32 - 1 ids in use would be a memory problem first.
        while self._next in self._phase:
            self._next = self._next % MAX_ID + 1
        picked = self._next
        self._next = picked % MAX_ID + 1
        return picked

    def load_done(self, res_id: int, ok: bool) -> None:
        if ok:
            self._phase[res_id] = _Phase.LOADED
        else:
            del self._phase[res_id]

    def begin_unload(self, res_id: int) -> None:
        """An unknown id is 10107 with HTTP 404; one being loaded or unloaded, HTTP 409."""
        phase = self._phase.get(res_id)
        if phase is None:
            raise AigesError(errors.INVALID_PARAM, f"resource {res_id} is not loaded", 404)
        if phase is not _Phase.LOADED:
            raise AigesError(errors.INVALID_PARAM, f"resource {res_id} is {phase.value}", 409)
        self._phase[res_id] = _Phase.UNLOADING

    def unload_done(self, res_id: int, ok: bool) -> None:
        """A failed unload leaves the id loaded: the engine may still hold the resource."""
        if ok:
            del self._phase[res_id]
        else:
            self._phase[res_id] = _Phase.LOADED
