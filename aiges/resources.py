"""Personalization resource ids (SPEC 5): which ids are loaded, and which are being
loaded or unloaded right now. Knows nothing of HTTP or the engine; event-loop only.

An id counts as in use from the moment its load starts until its unload succeeded,
so two loads never get the same id. Ids the loader picks come from a counter that
starts at 1 and skips ids in use: a recently unloaded id is not handed out again
soon, so a client holding a stale id does not silently reach someone else's resource.

Each id gets a secret at the start of its load, its res_token: only who holds it (the
client the load answered) may unload the resource. The ids are no secret, the tokens
are: they are never listed nor logged, and they go with their id.
"""
from __future__ import annotations

import enum
import hmac
import secrets
from dataclasses import dataclass

from aiges import errors
from aiges.errors import AigesError

MAX_ID = 0xFFFFFFFF  # psrIds are unsigned int


def same_secret(given: str, secret: str) -> bool:
    """Constant-time comparison of a secret a client sent with the real one."""
    # surrogateescape: undecodable bytes in a header are a wrong secret, not a crash.
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), secret.encode())


class _Phase(enum.Enum):
    LOADING = "being loaded"
    LOADED = "loaded"
    UNLOADING = "being unloaded"


@dataclass(slots=True)
class _Entry:
    phase: _Phase
    token: str


class ResourceIds:
    def __init__(self) -> None:
        self._entries: dict[int, _Entry] = {}
        self._next = 1

    def loaded(self) -> list[int]:
        return sorted(i for i, e in self._entries.items() if e.phase is _Phase.LOADED)

    def reserve(self, wanted: int | None = None) -> int:
        """The id for a load about to start: ``wanted``, or the next id not in use.
        An id in use is a conflict: 10107, HTTP 409. Its res_token is made now."""
        if wanted is None:
            wanted = self._pick()
        elif wanted in self._entries:
            raise AigesError(errors.INVALID_PARAM, f"resource {wanted} is already "
                             f"{self._entries[wanted].phase.value}", 409)
        self._entries[wanted] = _Entry(_Phase.LOADING, secrets.token_urlsafe(16))
        return wanted

    def token(self, res_id: int) -> str:
        """The res_token of an id in use (KeyError for one that is not)."""
        return self._entries[res_id].token

    def owned(self, res_id: int, token: str) -> bool:
        """Whether ``token`` is res_id's res_token, compared in constant time. An id not
        in use is 10107 with HTTP 404, whoever asks (GET lists the ids anyway)."""
        return same_secret(token, self._entry(res_id).token)

    def _pick(self) -> int:
        # At most len(in use) + 1 steps; 2**32 - 1 ids in use would be a memory problem first.
        while self._next in self._entries:
            self._next = self._next % MAX_ID + 1
        picked = self._next
        self._next = picked % MAX_ID + 1
        return picked

    def load_done(self, res_id: int, ok: bool) -> None:
        if ok:
            self._entries[res_id].phase = _Phase.LOADED
        else:
            del self._entries[res_id]

    def begin_unload(self, res_id: int) -> None:
        """An unknown id is 10107 with HTTP 404; one being loaded or unloaded, HTTP 409.
        Whether the caller may unload it (``owned``) is the transport's to check first."""
        entry = self._entry(res_id)
        if entry.phase is not _Phase.LOADED:
            raise AigesError(errors.INVALID_PARAM, f"resource {res_id} is {entry.phase.value}",
                             409)
        entry.phase = _Phase.UNLOADING

    def unload_done(self, res_id: int, ok: bool) -> None:
        """A failed unload leaves the id loaded (same token): the engine may still hold
        the resource."""
        if ok:
            del self._entries[res_id]
        else:
            self._entries[res_id].phase = _Phase.LOADED

    def _entry(self, res_id: int) -> _Entry:
        entry = self._entries.get(res_id)
        if entry is None:
            raise AigesError(errors.INVALID_PARAM, f"resource {res_id} is not loaded", 404)
        return entry
