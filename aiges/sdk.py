"""WrapperBase and the field declarations of the upstream aiges Python SDK.

Fields declared on ``requestCls`` / ``responseCls`` describe the request and
response (inputs, params, outputs) and carry test values for ``python wrapper.py``.
"""
from __future__ import annotations

import base64
import inspect
import logging
import sys
from pathlib import Path

from aiges.core.types import *  # noqa: F403 (upstream's sdk re-exports the constants)
from aiges.core.types import AUDIO, IMAGE, STRING, VIDEO
# Upstream's sdk re-exports the data objects and aiges.stream: wrappers import them from here.
from aiges.dto import (DataListCls, DataListNode, Response, ResponseData,  # noqa: F401
                       SessionCreateResponse, callback, init_rq)
from aiges.stream import (Pool, SessionManager, StreamHandleThread, ThreadPool,  # noqa: F401
                          WorkerThread)

log = logging.getLogger("wrapper")


class Field:
    data_type = STRING

    def __init__(self, key: str, **attrs):
        self.key = key
        self.description = attrs.pop("description", "")
        self.title = attrs.pop("title", "")
        self.attrs = attrs

    def __repr__(self) -> str:
        return f"<{type(self).__name__}:{self.key}>"


class ParamField(Field):
    kind = "string"

    def __init__(self, key, enums=None, required=False, value=None, **attrs):
        super().__init__(key, **attrs)
        self.enums = list(enums or [])
        self.required = required
        self.value = value

    @property
    def test_value(self):
        return self.value


class StringParamField(ParamField):
    def __init__(self, key, minLength=0, maxLength=1024, enums=None, required=False,  # noqa: N803
                 value="", **attrs):
        super().__init__(key, enums, required, value, **attrs)
        self.min_length, self.max_length = minLength, maxLength


class NumberParamField(ParamField):
    kind = "number"

    def __init__(self, key, minimum=0, maximum=100, enums=None, required=False, value=0, **attrs):
        super().__init__(key, enums, required, value, **attrs)
        self.minimum, self.maximum = minimum, maximum


class IntegerParamField(NumberParamField):
    kind = "integer"


class BooleanParamField(ParamField):
    kind = "boolean"

    def __init__(self, key, title="", default=False, required=False, **attrs):
        super().__init__(key, None, required, default, title=title, **attrs)


class PayloadField(Field):
    def __init__(self, key, status=3, encoding="utf8", **attrs):
        super().__init__(key, **attrs)
        self.status = status
        self.encoding = encoding
        self.owner: Path | None = None   # the wrapper's folder, for relative test files

    @property
    def test_value(self) -> bytes:
        return b""


class StringBodyField(PayloadField):
    def __init__(self, key, value=b" ", need_base64=False, encoding="utf8", format="plain",  # noqa: A002
                 compress="raw", status=3, **attrs):
        super().__init__(key, status, encoding, **attrs)
        self.value = value.encode() if isinstance(value, str) else value
        self.need_base64, self.format, self.compress = need_base64, format, compress

    @property
    def test_value(self) -> bytes:
        return base64.b64encode(self.value) if self.need_base64 else self.value


class JsonBodyField(StringBodyField):
    def __init__(self, key, value="", need_base64=False, **attrs):
        super().__init__(key, value, need_base64, **attrs)


class _FileBodyField(PayloadField):
    def __init__(self, key, path="", need_base64=False, status=3, encoding="raw", **attrs):
        super().__init__(key, status, encoding, **attrs)
        self.path = path
        self.need_base64 = need_base64

    @property
    def test_value(self) -> bytes:
        for candidate in (Path(self.path), (self.owner or Path.cwd()) / self.path):
            if self.path and candidate.is_file():
                raw = candidate.read_bytes()
                return base64.b64encode(raw) if self.need_base64 else raw
        log.warning("test file %s of field %s not found", self.path, self.key)
        return b""


class ImageBodyField(_FileBodyField):
    data_type = IMAGE

    def __init__(self, key, path="", need_base64=False, encoding="jpg", status=3, **attrs):
        super().__init__(key, path, need_base64, status, encoding, **attrs)


class AudioBodyField(_FileBodyField):
    data_type = AUDIO

    def __init__(self, key, path="", encoding="raw", format="plain", compress="raw",  # noqa: A002
                 status=3, **attrs):
        super().__init__(key, path, False, status, encoding, **attrs)
        self.format, self.compress = format, compress


class VideoBodyField(_FileBodyField):
    data_type = VIDEO


def declared_fields(holder) -> list[Field]:
    """Fields declared as class attributes of a requestCls/responseCls (instance or class)."""
    if holder is None:
        return []
    cls = holder if isinstance(holder, type) else type(holder)
    found = []
    for klass in reversed(cls.__mro__):
        found += [v for v in vars(klass).values() if isinstance(v, Field)]
    return found


class _PerInstance:
    """A value each instance gets on first use (a SessionManager, a dict): also for wrappers
    whose ``__init__`` does not call ``super().__init__`` (upstream failed on those)."""

    def __init__(self, factory):
        self.factory = factory

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.factory()
        return value


class WrapperBase:
    """Base of every ``class Wrapper(WrapperBase)``; defaults mirror upstream's.

    Each instance has ``session``, a SessionManager (aiges.stream) for wrappers that keep
    a pool of session threads, made in ``__init__`` (or on first use, for a wrapper whose
    ``__init__`` does not call ``super().__init__``).
    ``__mappings__`` holds the declared inputs/accepts/params, as upstream's metaclass made it.
    """

    serviceId = ""  # noqa: N815 (upstream name)
    version = ""
    requestCls = None  # noqa: N815
    responseCls = None  # noqa: N815
    config: dict = {}
    __mappings__: dict = {"inputs": [], "accepts": [], "params": []}
    session = _PerInstance(SessionManager)
    inputs_test_values = _PerInstance(dict)
    params_test_values = _PerInstance(dict)
    respData = _PerInstance(list)  # noqa: N815 (upstream name)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        from aiges.python.upstream_schema import mappings
        cls.__mappings__ = mappings(cls)

    def __init__(self, legacy=True, is_aipaas=True, keep_schema_default_value=True, **kwargs):
        # legacy, is_aipaas, keep_schema_default_value: upstream's schema switches, kept as
        # attributes; schema() gives one document either way.
        self.legacy, self.is_aipaas = legacy, is_aipaas
        self.keep_schema_default_value = keep_schema_default_value
        self.inputs_test_values: dict = {}
        self.params_test_values: dict = {}
        self.respData: list = []
        self.session = SessionManager()
        self._schema = None
        try:
            folder = Path(inspect.getfile(type(self))).resolve().parent
        except (TypeError, OSError):  # a class whose module is not importable (runpy, exec)
            folder = None
        for field in declared_fields(self.requestCls):
            if isinstance(field, PayloadField):
                field.owner = folder
        self.printPythonInfo()

    def printPythonInfo(self) -> None:  # noqa: N802 (upstream name)
        log.debug("python %s (%s)", sys.version.split()[0], sys.executable)

    def gradio(self):
        raise NotImplementedError("gradio is not part of aiges-load: aiges-load serves the "
                                  "wrapper's API document and a UI to try it at /docs")

    def schema(self) -> str:
        """Upstream's schema document as JSON text (meta.route, schemainput, schemaoutput)."""
        from aiges.python.upstream_schema import document
        self._schema = document(self)
        return self._schema

    def schema_legacy(self) -> str:
        return self.schema()

    def schema_v2(self) -> str:
        """Upstream built this one with pydantic (and it came out empty or failed with some
        pydantic versions); here it is the same document as ``schema_legacy``."""
        return self.schema()

    def wrapperInit(self, config: dict) -> int:  # noqa: N802
        return 0

    def wrapperFini(self) -> int:  # noqa: N802
        return 0

    def wrapperError(self, ret: int) -> str:  # noqa: N802
        return ""

    def wrapperLoadRes(self, reqData, resId: int) -> int:  # noqa: N802,N803
        return 0

    def wrapperUnloadRes(self, resId: int) -> int:  # noqa: N802,N803
        return 0

    def wrapperOnceExec(self, params: dict, reqData, usrTag: str = "", persId: int = 0):  # noqa: N802,N803
        raise NotImplementedError("implement wrapperOnceExec in your Wrapper")

    def wrapperOnceExecBatch(self, params: list, reqDatas: list, usrTags: list) -> list:  # noqa: N802,N803
        """aiges extension (docs/BATCHING.md): several one-shot requests in one call, one
        Response per item (its error in Response.error_code). aiges-load calls it only
        when a Wrapper overrides it and ``[batch] maxSize`` > 1; this default runs
        wrapperOnceExec item by item."""
        return [self.wrapperOnceExec(p, d, t) for p, d, t in zip(params, reqDatas, usrTags)]

    def wrapperHealth(self) -> tuple[bool, str]:  # noqa: N802
        """aiges extension (docs/OPERATIONS.md): (ok, detail), e.g. (False, "CUDA error:
        device-side assert"). aiges-load polls it every ``[aiges] healthIntervalS`` from a
        thread of its own, only when a Wrapper overrides it; while it answers not ok,
        /ready is 503 with ``detail``. Keep it quick: at most one call runs at a time."""
        return True, ""

    def wrapperCancel(self, usrTag: str) -> int:  # noqa: N802,N803
        """aiges extension (docs/PYTHON.md): the request or session ``usrTag`` (a once
        request's sid, as wrapperOnceExec gets it, or a session's, as wrapperCreate gets
        it) is no longer wanted: its client left, its timeout fired, or the service stops.
        Called from another thread while wrapperOnceExec/wrapperWrite may be running for
        it, only when a Wrapper overrides it: set an Event the running call waits on, and
        let that call return early with an error code. Keep it quick; return 0."""
        return 0

    def wrapperOnceExecAsync(self, params: dict, reqData, sid: str, persId: int = 0) -> int:  # noqa: N802,N803
        raise NotImplementedError("aiges-load runs one-shot Python requests with wrapperOnceExec")

    def wrapperCreate(self, params: dict, sid: str, persId: int = 0, usrTag: str = ""):  # noqa: N802,N803
        raise NotImplementedError("implement wrapperCreate in your Wrapper")

    def wrapperWrite(self, handle: str, req) -> int:  # noqa: N802
        raise NotImplementedError("implement wrapperWrite in your Wrapper")

    def wrapperRead(self, handle: str):  # noqa: N802
        return None

    def wrapperDestroy(self, handle: str) -> int:  # noqa: N802
        return 0

    def wrapperTestFunc(self, data, respData):  # noqa: N802,N803
        """Upstream's C++ loader required this hook; aiges-load never calls it."""
        return None

    def check_resp(self, resp) -> bool:
        """Upstream's check of a once response: False (and logged) on any finding,
        undeclared keys and types included."""
        from aiges.python.selfrun import problems
        errors, warnings = problems(self, resp)
        for text in errors + warnings:
            log.error(text)
        return not (errors or warnings)

    def run(self, stream: bool = False) -> int:
        """``python wrapper.py``: run once (or one session) on the declared test values.
        Exits non-zero when the wrapper fails or its response is malformed; keys or types
        that differ from responseCls are logged, as upstream does, not failed."""
        from aiges.python.selfrun import self_run
        code = self_run(self, stream)
        if code:
            raise SystemExit(code)
        return code

    def run_once(self) -> int:
        return self.run(stream=False)

    def run_stream(self) -> int:
        return self.run(stream=True)
