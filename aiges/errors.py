"""Error codes (SPEC section 6) and the two exception types of the loader.

``header.code`` is the contract clients check; the HTTP status is derived from the
code here, in one table, never from message text.
"""
from __future__ import annotations

OK = 0
BAD_JSON = 10000
BAD_PAYLOAD = 10001
INVALID_OPERATION = 10003
UNKNOWN_SESSION = 10008
INVALID_INPUT = 10009
SESSION_ENDED = 10101
ONCE_TIMEOUT = 10102
INVALID_OUTPUT = 10106
INVALID_PARAM = 10107
NO_INSTANCE = 10110
SESSION_TIMEOUT = 10114
WS_BAD_JSON = 10163  # upstream's code for a WebSocket frame that is not JSON
# Ours (upstream had no such refusal): a route switched off, or a secret missing or
# wrong (admin token, a resource's res_token).
FORBIDDEN = 10120
ENGINE_INIT = 10901
ENGINE_FINI = 10902
ENGINE_LOAD_RES = 10903
ENGINE_UNLOAD_RES = 10904
ENGINE_CREATE = 10905
ENGINE_DESTROY = 10906
ENGINE_WRITE = 10907
ENGINE_READ = 10908
ENGINE_EXEC = 10909
ENGINE_CALLBACK = 10910

# Loader code for an engine failure, by the engine operation that failed.
ENGINE_OP_CODES = {
    "init": ENGINE_INIT,
    "fini": ENGINE_FINI,
    "loadRes": ENGINE_LOAD_RES,
    "unloadRes": ENGINE_UNLOAD_RES,
    "create": ENGINE_CREATE,
    "destroy": ENGINE_DESTROY,
    "write": ENGINE_WRITE,
    "read": ENGINE_READ,
    "exec": ENGINE_EXEC,
    "execAsync": ENGINE_EXEC,
    "execBatch": ENGINE_EXEC,
    "callback": ENGINE_CALLBACK,
}

HTTP_STATUS = {
    BAD_JSON: 400,
    BAD_PAYLOAD: 400,
    INVALID_OPERATION: 400,
    UNKNOWN_SESSION: 404,
    INVALID_INPUT: 400,
    SESSION_ENDED: 404,
    ONCE_TIMEOUT: 504,
    INVALID_OUTPUT: 400,
    INVALID_PARAM: 400,
    NO_INSTANCE: 429,
    SESSION_TIMEOUT: 408,
    WS_BAD_JSON: 400,
    FORBIDDEN: 403,
}


class AigesError(Exception):
    """A request failure with its AIGES code; ``http_status`` defaults from the code."""

    def __init__(self, code: int, message: str, http_status: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status or HTTP_STATUS.get(code, 500)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code}, {self.message!r})"


class EngineError(AigesError):
    """A non-zero return from the engine: keeps the op, the engine's own code and its
    wrapperError text; the loader code (10905..10910) follows from the op."""

    def __init__(self, op: str, engine_code: int, text: str):
        self.op = op
        self.engine_code = engine_code
        self.text = text
        super().__init__(ENGINE_OP_CODES.get(op, ENGINE_EXEC), f"{text};code={engine_code}", 500)


class EngineLoadError(Exception):
    """The engine cannot be used at all (missing symbol, dlopen failure, bad wrapper.py)."""


class Unsupported(AigesError):
    """The engine does not implement what a feature needs (SPEC 1: an optional symbol
    that is absent disables its feature): 10003, HTTP 501."""

    def __init__(self, symbol: str, consequence: str):
        super().__init__(INVALID_OPERATION,
                         f"the engine does not implement {symbol}: {consequence}", 501)
        self.symbol = symbol
