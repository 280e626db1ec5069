"""Data objects of the upstream aiges Python SDK: what wrapper.py receives and returns."""
from __future__ import annotations

import queue

from aiges.core.types import *  # noqa: F403 (upstream's dto re-exports the constants)
from aiges.core.types import DataText, Once


class DataListNode:
    """One input item: key, data (bytes), len, type, status, desc (dict of attributes)."""

    def __init__(self, key: str = "", data: bytes = b"", len: int | None = None,  # noqa: A002
                 type: int = DataText, status: int = Once, desc: dict | None = None):  # noqa: A002
        self.key = key
        self.data = data
        self.len = len if len is not None else _length(data)
        self.type = type
        self.status = status
        self.desc = desc or {}

    def get_data(self):
        return self.data

    def __repr__(self) -> str:
        return f"DataListNode(key={self.key!r}, len={self.len}, type={self.type}, status={self.status})"


class DataListCls:
    def __init__(self, nodes: list[DataListNode] | None = None):
        self.list: list[DataListNode] = nodes if nodes is not None else []

    def get(self, key: str) -> DataListNode | None:
        for node in self.list:
            if node.key == key:
                return node
        return None


class ResponseData:
    """One output item. ``setData`` also sets ``len``; assigning ``data``/``len`` works too."""

    def __init__(self, key: str = "", data: bytes = b"", len: int | None = None,  # noqa: A002
                 type: int = DataText, status: int = Once, **kwargs):  # noqa: A002
        self.key = key
        self.data = data
        self.len = len if len is not None else kwargs.get("length", _length(data))
        self.type = type
        self.status = status
        self.desc: dict = {}

    def setData(self, data) -> None:  # noqa: N802 (upstream name)
        self.data = data
        self.len = _length(data)

    def setDataType(self, data_type: int) -> None:  # noqa: N802
        self.type = data_type

    def __repr__(self) -> str:
        return f"ResponseData(key={self.key!r}, len={self.len}, type={self.type}, status={self.status})"


class Response:
    def __init__(self, list: list[ResponseData] | None = None, error_code: int = 0):  # noqa: A002
        self.list: list[ResponseData] = list if list is not None else []
        self.error_code = error_code

    def response_err(self, error_code: int) -> "Response":
        self.error_code = error_code
        return self


class SessionCreateResponse:
    def __init__(self, handle: str = "", error_code: int = 0):
        self.handle = handle
        self.error_code = error_code


def callback(response: Response, sid: str) -> None:
    """Push a session result from any thread (async sessions), like upstream's embed module.
    A result for no live session goes to the ``init_rq()`` queue when there is one."""
    (_push_routes or _routes()).deliver(response, sid)


def _routes():
    """aiges.python.push.routes, imported on first use (aiges.python imports this module)
    and then kept: a push is made for every result."""
    global _push_routes
    if _push_routes is None:
        from aiges.python.push import routes
        _push_routes = routes
    return _push_routes


_push_routes = None


def init_rq() -> queue.Queue:
    """Upstream's self-test hook: a queue that receives what ``callback`` pushes for no live
    session (under aiges-load every session has its own route, so nothing lands here)."""
    results: queue.Queue = queue.Queue()
    _routes().set_sink(results)
    return results


def _length(data) -> int:
    if type(data) is bytes:  # the common case first: one check
        return len(data)
    if isinstance(data, str):
        return len(data.encode())
    return len(data) if data is not None else 0
