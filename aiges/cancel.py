"""Cancellation, an aiges extension (wrapperCancel / WrapperBase.wrapperCancel): why a
request or session is no longer wanted, as the transports tell the runner.

A transport that gives up on a once request cancels the task awaiting it with one of
REASONS as the cancel message (``task.cancel(CLIENT_LEFT)``); the runner reads it back
from the CancelledError (``reason_of``) and, while the engine call still runs, asks the
engine to stop (Runner.cancel). Knows nothing of HTTP or cffi.
"""
from __future__ import annotations

from aiges import errors
from aiges.errors import AigesError

CLIENT_LEFT = "client_left"  # the client's connection closed while its call ran
TIMEOUT = "timeout"          # the once timeout fired (or a session's time limit)
SHUTDOWN = "shutdown"        # still running when the drain time of a shutdown ended
REASONS = (CLIENT_LEFT, TIMEOUT, SHUTDOWN)

# Session.end's reasons (the code's own words, aiges.sessions) -> cancel reason.
_SESSION_ENDS = {"idle timeout": TIMEOUT, "lifetime timeout": TIMEOUT, "shutdown": SHUTDOWN}


def reason_of(exc: BaseException) -> str:
    """The reason a task was cancelled with; a cancellation without one (a handler
    cancelled by aiohttp, a caller that went away): the client left."""
    message = exc.args[0] if exc.args else None
    return message if message in REASONS else CLIENT_LEFT


def session_reason(end_reason: str) -> str:
    """The cancel reason of a session ended early for ``end_reason``."""
    return _SESSION_ENDS.get(end_reason, CLIENT_LEFT)


def gone_error(reason: str) -> AigesError:
    """What a once request given up for ``reason`` counts as (no client reads it)."""
    if reason == SHUTDOWN:
        return AigesError(errors.INVALID_OPERATION, "service stopped before the answer", 503)
    return AigesError(errors.INVALID_OPERATION, "client left before the answer", 499)
