"""Wire formats of a once request: how a body becomes an engine request and how the
engine's outputs (or an error) become a body. The once pipeline (aiges.service.once)
is one; each format is a Spec over it: the native JSON protocol (SPEC 3) is NATIVE,
the Open Inference Protocol another.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from aiges import protocol
from aiges.engine import Data
from aiges.errors import AigesError
from aiges.protocol import Request

if TYPE_CHECKING:
    from aiges.service.core import Service


class Spec(Protocol):
    """What a wire format gives the once pipeline. ``parse`` and ``success`` may run on
    a thread (big bodies): they must not touch the event loop."""

    content_type: str
    # Headers of the answer besides the transport's own (None: none), read after
    # ``success`` or ``failure``: a format may choose them per answer (aiges.oip's
    # binary tensors), and then makes one Spec object per request.
    headers: dict[str, str] | None

    def parse(self, service: Service, body: bytes, sid: str) -> Request:
        """The request ``body`` carries, with ``sid``; AigesError when it is invalid."""

    def success(self, sid: str, items: list[Data], req: Request) -> bytes:
        """The answer body for the engine's outputs."""

    def failure(self, exc: AigesError, sid: str) -> bytes:
        """The answer body for an error."""


class NativeSpec:
    """The JSON protocol of SPEC 3: header, parameter.<service>, payload."""

    content_type = "application/json"
    headers = None

    def parse(self, service: Service, body: bytes, sid: str) -> Request:
        return service.parse(protocol.loads(body), sid)

    def success(self, sid: str, items: list[Data], req: Request) -> bytes:
        return protocol.success(sid, items, req.outputs)

    def failure(self, exc: AigesError, sid: str) -> bytes:
        return protocol.failure(exc.code, exc.message, sid)


NATIVE = NativeSpec()
