"""Request/response JSON (SPEC 3) <-> engine types. No HTTP, no cdata.

Parsing raises AigesError with the code a client checks (10000 not JSON, 10001
bad base64, 10009 bad payload, 10107 bad parameter); rendering never fails.
"""
from __future__ import annotations

import binascii
import os
from collections import deque
from dataclasses import dataclass, field

import orjson

from aiges import errors
from aiges.engine import Data, DataType
from aiges.errors import AigesError

DATA_FIELDS = {"text": DataType.TEXT, "audio": DataType.AUDIO,
               "image": DataType.IMAGE, "video": DataType.VIDEO}
FIELD_NAMES = frozenset(DATA_FIELDS)
TYPE_NAMES = {int(t): name for name, t in DATA_FIELDS.items()}
TYPE_NAMES[int(DataType.PER)] = "text"
STATUS_TEXT = {0: "0", 1: "1", 2: "2", 3: "3"}


@dataclass(slots=True)
class Request:
    """One parsed frame: a once request, or one frame of a session."""

    sid: str
    header: dict
    params: dict[str, str]
    outputs: dict[str, dict]
    data: list[Data]
    psr_ids: list[int] = field(default_factory=list)


# uuid4's fixed bits, version 4 and the RFC 4122 variant, over a batch of 256 uuids
# read as one big number: set with two operations for the whole batch.
_SID_BATCH = 256
_UUID4_CLEAR = int.from_bytes(b"\xff" * 6 + b"\x0f\xff\x3f" + b"\xff" * 7) * sum(
    1 << (128 * i) for i in range(_SID_BATCH))
_UUID4_SET = int.from_bytes(b"\0" * 6 + b"\x40\0\x80" + b"\0" * 7) * sum(
    1 << (128 * i) for i in range(_SID_BATCH))
# Sids made ahead, from one getrandom call per batch rather than one per request: a
# deque's popleft is atomic, so threads never share one; a forked child starts afresh.
_sids: deque[str] = deque()
os.register_at_fork(after_in_child=_sids.clear)


def new_sid() -> str:
    """A uuid4 in hex, as upstream's sids (os.urandom's bytes), without a UUID object or
    a syscall per request."""
    try:
        return _sids.popleft()
    except IndexError:
        raw = int.from_bytes(os.urandom(16 * _SID_BATCH)) & _UUID4_CLEAR | _UUID4_SET
        text = raw.to_bytes(16 * _SID_BATCH).hex()
        _sids.extend(text[i:i + 32] for i in range(0, len(text), 32))
        return _sids.popleft()


def text_value(value) -> str:
    """A JSON scalar as the text an engine gets: 16000 (not 16000.0), true, plain strings."""
    if type(value) is str:  # the common case first: one check
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def loads(body: bytes | str) -> dict:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise AigesError(errors.BAD_JSON, f"body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise AigesError(errors.BAD_JSON, "body must be a JSON object")
    return doc


def object_field(doc: dict, key: str) -> dict:
    """``doc[key]``, a JSON object; {} when absent; 10009 when not an object."""
    value = doc.get(key)
    if type(value) is dict:  # the common case first: one check
        return value
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise AigesError(errors.INVALID_INPUT, f"'{key}' must be an object")
    return value


def parse(doc: dict, service: str, header_pass: list[str], sid: str | None = None,
          need_payload: bool = True, enums: dict[str, frozenset[str]] | None = None) -> Request:
    """``enums``: param -> the values allowed (as text), from [schema] or the wrapper's
    declarations; another value is 10107."""
    header = object_field(doc, "header")
    sid = sid or new_sid()
    params: dict[str, str] = {"sid": sid}
    for key in header_pass:
        if key in header and header[key] is not None:
            params[key] = text_value(header[key])
    outputs: dict[str, dict] = {}
    parameter = object_field(doc, "parameter")
    for section in _sections(parameter, service) if parameter else ():
        for key, value in section.items():
            if isinstance(value, dict):
                outputs[key] = {k: text_value(v) for k, v in value.items()}
            elif isinstance(value, list) or value is None:
                raise AigesError(errors.INVALID_PARAM,
                                 f"parameter '{key}' must be a scalar or an object")
            elif key != "sid":
                params[key] = text_value(value)
    if enums:
        _check_enums(params, enums)
    res_id = header.get("res_id")
    return Request(sid, header, params, outputs, _inputs(doc, need_payload),
                   [] if res_id is None else _psr_ids(res_id))


def frame_inputs(doc: dict, service: str,
                 enums: dict[str, frozenset[str]] | None = None) -> list[Data]:
    """The inputs of a session frame after the first, the frame checked as ``parse``
    checks it. A session keeps its first frame's parameters, so a later frame's need
    no reading when there are none to check: the common frame, cheaper."""
    header = doc.get("header")  # object_field's common case, spelled out: once a frame
    if type(header) is not dict:
        header = object_field(doc, "header")
    parameter = doc.get("parameter")
    if type(parameter) is not dict:
        parameter = object_field(doc, "parameter")
    if enums or header.get("res_id") is not None or (parameter and any(parameter.values())):
        return parse(doc, service, [], "-", True, enums).data
    for section in parameter.values():  # each must be an object (an empty one, here)
        if type(section) is not dict:
            _sections(parameter, service)  # raises, naming it
    return _inputs(doc, True)


def _inputs(doc: dict, need_payload: bool) -> list[Data]:
    payload = doc.get("payload")
    if type(payload) is not dict:
        payload = object_field(doc, "payload")
    if need_payload and not payload:
        raise AigesError(errors.INVALID_INPUT, "payload is empty: send at least one input")
    if len(payload) == 1:  # the common case: no list comprehension's own frame
        for key, value in payload.items():
            return [_input(key, value)]
    return [_input(key, value) for key, value in payload.items()]


def _check_enums(params: dict[str, str], enums: dict[str, frozenset[str]]) -> None:
    for key, allowed in enums.items():
        value = params.get(key)
        if value is not None and value not in allowed:
            raise AigesError(errors.INVALID_PARAM, f"parameter {key} = {value!r} is not "
                             f"allowed: one of {', '.join(sorted(allowed))}")


def _sections(parameter: dict, service: str) -> list[dict]:
    """Every section under ``parameter``, as upstream reads them (clients name theirs
    after the wrapper's serviceId, not always this service's name); the service's own
    last, so that its values win."""
    for name, section in parameter.items():
        if not isinstance(section, dict):
            raise AigesError(errors.INVALID_PARAM, f"parameter.{name} must be an object: "
                             f"params go in a section, parameter.{service}.{name}")
    if len(parameter) == 1:
        return list(parameter.values())
    return [v for k, v in parameter.items() if k != service] + \
        ([parameter[service]] if service in parameter else [])


def _psr_ids(value) -> list[int]:
    if value is None or value == "":
        return []
    parts = value if isinstance(value, list) else str(value).split(",")
    try:
        ids = [int(str(p).strip()) for p in parts if str(p).strip()]
    except ValueError:
        raise AigesError(errors.INVALID_PARAM, f"header.res_id must be a comma list of "
                                               f"numbers, got {value!r}") from None
    if any(i < 0 or i > 0xFFFFFFFF for i in ids):
        raise AigesError(errors.INVALID_PARAM, "header.res_id values must fit 32 bits unsigned")
    return ids


def _status(key: str, value) -> int:
    if type(value) is int and 0 <= value <= 3:  # the common case: no conversion
        return value
    try:
        status = int(value)
    except (TypeError, ValueError):
        status = -1
    if status not in (0, 1, 2, 3):
        raise AigesError(errors.INVALID_INPUT, f"payload.{key}.status must be 0..3, got {value!r}")
    return status


def _input(key: str, item) -> Data:
    if not isinstance(item, dict):
        raise AigesError(errors.INVALID_INPUT, f"payload.{key} must be an object")
    found = FIELD_NAMES.intersection(item)
    if len(found) != 1:
        raise AigesError(errors.INVALID_INPUT, f"payload.{key} needs exactly one of "
                                               f"text, audio, image, video")
    name, = found
    value = item[name]
    if type(value) is str:  # the common case first: base64 text
        try:
            raw = binascii.a2b_base64(value, strict_mode=True) if value else b""
        except (binascii.Error, ValueError):
            raise AigesError(errors.BAD_PAYLOAD, f"payload.{key}.{name} is not valid base64") from None
    elif isinstance(value, (dict, list)):
        raw = orjson.dumps(value)
    else:
        raise AigesError(errors.INVALID_INPUT, f"payload.{key}.{name} must be a base64 string")
    status = item.get("status", 3)  # 3: DataStatus.ONCE
    if type(status) is not int or not 0 <= status <= 3:
        status = _status(key, status)
    desc = item.copy()  # every other scalar field, as text
    del desc[name]
    desc.pop("status", None)
    for v in desc.values():
        if type(v) is not str:  # not the common case (text only): field by field
            desc = _desc(item, name)
            break
    return Data(key, raw, DATA_FIELDS[name], status, desc)


def _desc(item: dict, name: str) -> dict[str, str]:
    desc = {}
    for k, v in item.items():
        if k == name or k == "status":
            continue
        if type(v) is str:
            desc[k] = v
        elif v is not None and not isinstance(v, (dict, list)):
            desc[k] = text_value(v)
    return desc


def render_outputs(items: list[Data], declared: dict[str, dict],
                   seq: int | dict[str, int] = 0) -> tuple[dict, int]:
    """The response payload and header.status (the last output's status). ``seq``: one
    number for every output, or one per output key (a session's frames)."""
    payload: dict[str, dict] = {}
    status = 3  # DataStatus.ONCE
    seqs = seq if isinstance(seq, dict) else None
    seq_text = None if seqs is not None else str(seq)
    for item in items:
        key = item.key
        attrs = declared.get(key) if declared else None
        entry = {**attrs, **item.desc} if attrs else item.desc.copy()
        if "seq" not in entry:
            entry["seq"] = seq_text if seqs is None else str(seqs.get(key, 0))
        status = item.status
        if type(status) is not int:
            status = int(status)
        entry["status"] = STATUS_TEXT.get(status) or str(status)
        name = TYPE_NAMES.get(item.type, "text")
        if name == "text":
            try:
                entry["text"] = item.data.decode("utf-8")
            except UnicodeDecodeError:
                entry["encoding"] = "base64"
                entry["text"] = binascii.b2a_base64(item.data, newline=False).decode()
        else:
            entry[name] = binascii.b2a_base64(item.data, newline=False).decode()
        payload[key] = entry
    return payload, status


def frame(sid: str, items: list[Data], declared: dict[str, dict]) -> dict:
    """The success document of a once request."""
    payload, status = render_outputs(items, declared)
    return {"header": {"code": 0, "sid": sid, "status": status}, "payload": payload}


def success(sid: str, items: list[Data], declared: dict[str, dict]) -> bytes:
    return dumps(frame(sid, items, declared))


def session_doc(sid: str, items: list[Data], declared: dict[str, dict],
                seqs: dict[str, int]) -> dict:
    """One server frame of a session, as upstream's: ``seq`` counts each output key's
    results from 1; no items is upstream's acknowledgement of a first frame that gave
    no result (status 0, no payload)."""
    if not items:
        return {"header": {"code": 0, "message": "success", "sid": sid, "status": 0}}
    payload, status = render_outputs(items, declared, seqs)
    return {"header": {"code": 0, "message": "success", "sid": sid, "status": status},
            "payload": payload}


def session_frame(sid: str, items: list[Data], declared: dict[str, dict],
                  seqs: dict[str, int]) -> bytes:
    return dumps(session_doc(sid, items, declared, seqs))


def failure(code: int, message: str, sid: str = "") -> bytes:
    return dumps({"header": {"code": code, "message": message, "sid": sid}})


def dumps(doc: dict) -> bytes:
    """JSON bytes of a response document, also when a Python engine handed over text
    orjson refuses (lone surrogates, non-string keys): such text is made valid UTF-8."""
    try:
        return orjson.dumps(doc)
    except TypeError:
        return orjson.dumps(_clean(doc), default=str)


def _clean(value):
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_clean(k if isinstance(k, str) else str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value
