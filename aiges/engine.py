"""The engine protocol: what a C engine and a Python engine both offer, in plain types.

Every method here may block: the runner calls them on engine threads, or on the
event loop once measured to take microseconds (aiges.placement). Results pushed
by the engine (async once, async sessions) arrive through plain Python callables
invoked on an engine thread, or, for an engine with ``pushed``, on the thread that
takes them; the caller decides how to hand them to its loop.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Callable, Protocol

from aiges.errors import EngineError


class DataType(enum.IntEnum):
    TEXT = 0
    AUDIO = 1
    IMAGE = 2
    VIDEO = 3
    PER = 4


class DataStatus(enum.IntEnum):
    BEGIN = 0
    CONTINUE = 1
    END = 2
    ONCE = 3


@dataclass(slots=True)
class Data:
    """One input or output item (a DataList node)."""

    key: str
    data: bytes
    type: int = DataType.TEXT
    status: int = DataStatus.ONCE
    desc: dict[str, str] = field(default_factory=dict)


# Called with (outputs, 0) on success or (None, engine_code) on failure; from any thread.
ResultCallback = Callable[[list[Data] | None, int], None]
# Service callbacks (wrapperSetCtrl), called from any thread, in or outside a request:
# meter(sid, key, count) and trace(sid, key, value); sid is "-" when no live call matches.
MeterCallback = Callable[[str, str, int], None]
TraceCallback = Callable[[str, str, str], None]


@dataclass(frozen=True, slots=True)
class Modes:
    """Which call modes the engine implements (SPEC 1: at least one complete mode)."""

    once_sync: bool
    once_async: bool
    session: bool
    batch: bool = False  # exec_batch: several once requests in one call (an aiges extension)


class PushedResults(Protocol):
    fd: int

    def take(self, readable: bool = False) -> None: ...

    def hold(self, held: bool) -> None: ...


class Engine(Protocol):
    path: str
    modes: Modes
    routes: list[str]  # where the engine says it is served, besides /v1/{service}

    def version(self) -> str: ...

    def set_ctrl(self, meter: MeterCallback, trace: TraceCallback | None) -> None:
        """Hand the engine its service callbacks before init (a no-op where the engine
        takes none); ``trace`` None: the engine's trace calls are dropped."""
        ...

    def init(self, config: dict[str, str]) -> None: ...

    def fini(self) -> None: ...

    def error_text(self, code: int) -> str: ...

    def exec(self, tag: str, params: dict[str, str], data: list[Data],
             psr_ids: list[int]) -> list[Data]: ...

    def exec_async(self, tag: str, params: dict[str, str], data: list[Data],
                   psr_ids: list[int], timeout_ms: int, on_result: ResultCallback) -> object:
        """Start a one-shot call; returns a token for ``forget`` (the call may still
        call back after the caller gave up)."""
        ...

    def exec_batch(self, tags: list[str], params: list[dict[str, str]],
                   data: list[list[Data]]) -> list[list[Data] | EngineError]:
        """Several once requests in one call (``modes.batch``), each as ``exec`` would get
        it: per item its outputs or its EngineError (op "exec"); an EngineError of op
        "execBatch" raised when the whole call failed."""
        ...

    def forget(self, token: object) -> None:
        """The caller no longer wants the result of ``token``: a late callback is ignored."""
        ...

    def load_res(self, res_id: int, data: list[Data]) -> None:
        """Load a personalization resource under ``res_id`` (wrapperLoadRes); an engine
        without it raises errors.Unsupported (10003)."""
        ...

    def unload_res(self, res_id: int) -> None: ...

    def create(self, tag: str, params: dict[str, str], psr_ids: list[int],
               on_result: ResultCallback | None) -> object:
        """Open a session; with ``on_result`` the engine pushes results, else use read."""
        ...

    def write(self, handle: object, data: list[Data]) -> None: ...

    def read(self, handle: object) -> list[Data] | None: ...

    def debug_info(self, handle: object) -> str | None: ...

    def destroy(self, handle: object) -> None: ...

    def health(self) -> tuple[bool, str] | None:
        """(ok, the engine's reason) from its health entry (wrapperHealth /
        WrapperBase.wrapperHealth, an aiges extension), or None when it has none.
        Called on a thread of its own, concurrently with other calls."""

    # An aiges extension: the engine has a cancel entry (wrapperCancel /
    # WrapperBase.wrapperCancel). An engine object without this attribute has none.
    cancellable: bool

    def cancel(self, tag: str) -> int:
        """The request or session ``tag`` is no longer wanted: the engine may return
        early from calls running for it. Any thread, concurrently with those calls; 0,
        or the engine's code (ignored). Only called when ``cancellable``."""
        ...

    # An aiges extension: an engine whose sessions' results are queued outside Python
    # has ``pushed`` (else None or no attribute): ``fd`` is readable while results wait,
    # ``take()`` hands every one to its session's on_result on the caller's thread
    # (``take(True)`` when ``fd`` was seen readable: the take clears it), and
    # ``hold(True)`` asks the engine's threads to wait with their results (briefly)
    # until ``hold(False)``, while a burst of frames is written.
    pushed: PushedResults | None

    def close(self) -> None: ...
