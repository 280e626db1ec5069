"""WrapperBase and the field declarations of the upstream aiges Python SDK.

Fields declared on ``requestCls`` / ``responseCls`` describe the request and
response (inputs, params, outputs) and carry test values for ``python wrapper.py``.
"""
from __future__ import annotations

import base64
import inspect
import logging
from pathlib import Path

from aiges.core.types import AUDIO, IMAGE, STRING, VIDEO

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


class WrapperBase:
    """Base of every ``class Wrapper(WrapperBase)``; defaults mirror upstream's."""

    serviceId = ""  # noqa: N815 (upstream name)
    version = ""
    requestCls = None  # noqa: N815
    responseCls = None  # noqa: N815
    config: dict = {}

    def __init__(self, *args, **kwargs):
        folder = Path(inspect.getfile(type(self))).resolve().parent
        for field in declared_fields(self.requestCls):
            if isinstance(field, PayloadField):
                field.owner = folder

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

    def wrapperCreate(self, params: dict, sid: str, persId: int = 0, usrTag: str = ""):  # noqa: N802,N803
        raise NotImplementedError("implement wrapperCreate in your Wrapper")

    def wrapperWrite(self, handle: str, req) -> int:  # noqa: N802
        raise NotImplementedError("implement wrapperWrite in your Wrapper")

    def wrapperRead(self, handle: str):  # noqa: N802
        return None

    def wrapperDestroy(self, handle: str) -> int:  # noqa: N802
        return 0

    def run(self, stream: bool = False) -> int:
        """``python wrapper.py``: run once (or one session) on the declared test values;
        exits non-zero when the wrapper fails or its response is malformed."""
        from aiges.python.selfrun import self_run
        code = self_run(self, stream)
        if code:
            raise SystemExit(code)
        return code
