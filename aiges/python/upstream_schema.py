"""``WrapperBase.schema()``: the JSON document upstream's SDK builds from a wrapper's field
declarations (its "legacy" template), which upstream's loader registers the wrapper's
routes from. Plain dicts: no jinja2, no pydantic. The document aiges-load serves is
/openapi.json (aiges.schema); this one exists for tools written against upstream.
"""
from __future__ import annotations

import json

from aiges.core.types import AUDIO, IMAGE, STRING, VIDEO

HEADER_FIELDS = ("appid", "uid", "device_id", "device.imei", "device.imsi", "device.mac",
                 "device.other", "net.type", "net.isp", "app.ver")
DATA_TYPES = {STRING: "text", AUDIO: "audio", IMAGE: "image", VIDEO: "video"}
STATUSES = {"type": "integer", "enum": [0, 1, 2, 3]}


def mappings(cls) -> dict:
    """Upstream's ``__mappings__``: the declared inputs, accepts and params, and the class's
    own call/sub/route/call_type when it sets them."""
    from aiges.sdk import ParamField, PayloadField, declared_fields
    request = declared_fields(getattr(cls, "requestCls", None))
    found = {"inputs": [f for f in request if isinstance(f, PayloadField)],
             "accepts": [f for f in declared_fields(getattr(cls, "responseCls", None))
                         if isinstance(f, PayloadField)],
             "params": [f for f in request if isinstance(f, ParamField)]}
    for name in ("call", "sub", "route", "call_type"):
        if getattr(cls, name, None) is not None:
            found[name] = getattr(cls, name)
    return found


def route(wrapper):
    """Where upstream's loader serves the wrapper: the class's own ``route`` (a path or a
    list of them), else ``/{version}/private/{serviceId}``."""
    own = mappings(type(wrapper)).get("route")
    return own if own else f"/{wrapper.version}/private/{wrapper.serviceId}"


def document(wrapper) -> str:
    """The schema as upstream's ``schema_legacy()`` returns it: JSON text, indent 4."""
    found = mappings(type(wrapper))
    service_id, version = str(wrapper.serviceId), str(wrapper.version)
    wrapper.inputs_test_values.update({f.key: f.test_value for f in found["inputs"]})
    wrapper.params_test_values.update({f.key: f.test_value for f in found["params"]})
    params = {f.key: _param(f) for f in found["params"]}
    doc = {
        "meta": {
            "serviceId": service_id, "version": version,
            "route": route(wrapper),
            "sub": found.get("sub", "ase"), "call": found.get("call", "atmos"),
            "call_type": _number(found.get("call_type", 0)), "hosts": "api.xf-yun.com",
            "service": [service_id], "routeKey": [],
            service_id: {"input": _types(found["inputs"]), "accept": _types(found["accepts"])},
        },
        "schemainput": _object({
            "header": {"type": "object", "properties": {
                k: {"type": "string", "maxLength": 50} for k in HEADER_FIELDS},
                "required": ["appid"]},
            "parameter": _object({service_id: {
                "type": "object", "properties": params,
                "required": [f.key for f in found["params"] if f.required]}}),
            "payload": _object({f.key: _payload(f.data_type) for f in found["inputs"]}),
        }),
        "schemaoutput": _object({
            "payload": _object({f.key: _payload(f.data_type) for f in found["accepts"]})}),
    }
    return json.dumps(doc, indent=4, ensure_ascii=False)


def _object(properties: dict) -> dict:
    return {"type": "object", "properties": properties}


def _number(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def _types(fields) -> dict:
    return {f.key: {"dataType": DATA_TYPES.get(f.data_type, "text")} for f in fields}


def _param(field) -> dict:
    kind = field.kind
    if kind == "boolean":
        return {"type": kind, "default": field.value}
    if field.enums:
        return {"type": kind, "enum": list(field.enums)}
    return {"type": kind, "maxLength": field.max_length} if kind == "string" else \
        {"type": kind, "maximum": field.maximum}


def _payload(data_type: int) -> dict:
    """Upstream's payload object per data type (text inputs take the output's shape)."""
    if data_type == IMAGE:
        return _object({"encoding": {"type": "string", "enum": ["jpg", "png", "bmp", "jpeg"]},
                        "image": {"type": "string", "minLength": 1, "maxLength": 10485760},
                        "status": {"type": "integer", "enum": [3]}})
    if data_type == AUDIO:
        return _object({"encoding": {"type": "string", "enum": ["opus", "speex"]},
                        "sample_rate": {"type": "integer", "enum": [8000, 16000]},
                        "bit_depth": {"type": "integer", "enum": [8, 16]},
                        "channels": {"type": "integer", "enum": [1, 2]},
                        "status": STATUSES, "seq": {"type": "integer"},
                        "audio": {"type": "string"}})
    if data_type == VIDEO:  # no upstream field has it; the same shape as the others
        return _object({"encoding": {"type": "string"}, "status": STATUSES,
                        "seq": {"type": "integer"}, "video": {"type": "string"}})
    return _object({"encoding": {"type": "string", "enum": ["utf8", "gb2312"]},
                    "compress": {"type": "string", "enum": ["gzip"]},
                    "status": STATUSES, "seq": {"type": "integer"}, "text": {"type": "string"}})
