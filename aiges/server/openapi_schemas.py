"""The OpenAPI components: request/response documents shaped by the engine's schema
(SPEC 3), error bodies and the reusable error responses (SPEC 3 and 6)."""
from __future__ import annotations

import base64

from aiges.schema import EngineSchema, Item, Param

REF = "#/components/schemas/"
STATUS = {"type": "integer", "enum": [0, 1, 2, 3], "default": 3,
          "description": "DataStatus: 0 begin, 1 continue, 2 end, 3 once (a whole input)"}
GENERIC_TEXT = b"hello aiges"


def ref(name: str) -> dict:
    return {"$ref": REF + name}


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


# -- request ------------------------------------------------------------------------------------

def _input(item: Item) -> dict:
    props = {item.type: {"type": "string", "format": "byte",
                         "description": f"the {item.type} data, standard base64"},
             "status": STATUS}
    for name in ("encoding", "compress", "format"):
        if getattr(item, name):
            props[name] = {"type": "string", "example": getattr(item, name)}
    for name, value in item.attrs.items():
        props[name] = {**_scalar(value), "example": value}
    schema = {"type": "object", "required": [item.type], "properties": props,
              "description": (item.description + "\n\n" if item.description else "")
              + f"Input `{item.key}` ({item.type}). Fields other than the data and "
                "`status` reach the engine as desc attributes."}
    if item.example is not None:
        props[item.type]["example"] = _b64(item.example)
    return schema


def _scalar(value) -> dict:
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, float):
        return {"type": "number"}
    return {"type": "string"}


def _param(param: Param) -> dict:
    schema: dict = {"type": param.type}
    for key, value in (("description", param.description), ("enum", list(param.enum)),
                       ("default", param.default), ("example", param.example),
                       ("minimum", param.minimum), ("maximum", param.maximum),
                       ("minLength", param.min_length), ("maxLength", param.max_length)):
        if value not in (None, "", []):
            schema[key] = value
    return schema


def _output_declaration(item: Item) -> dict:
    props = {name: {"type": "string", "default": value} for name, value in item.declared.items()}
    return {"type": "object", "properties": props,
            "description": f"Declares output `{item.key}`: these attributes come back with it."}


def _parameters(declared: EngineSchema | None) -> dict:
    if not declared:
        return {"type": "object", "additionalProperties": True,
                "description": "Scalars (string, number, boolean) are params, passed to the "
                               "engine as text; an object declares an output and its attributes."}
    props = {key: _param(p) for key, p in declared.params.items()}
    props.update({key: _output_declaration(o) for key, o in declared.outputs.items()
                  if key not in props})
    schema = {"type": "object", "properties": props,
              "description": "Params (scalars, passed to the engine as text) and output "
                             "declarations (objects)."}
    required = [key for key, p in declared.params.items() if p.required]
    if required:
        schema["required"] = required
    return schema


def _payload(declared: EngineSchema | None) -> dict:
    if not declared or not declared.inputs:
        return {"type": "object", "minProperties": 1, "additionalProperties": ref("DataItem"),
                "description": "One entry per input key."}
    schema = {"type": "object", "minProperties": 1,
              "properties": {key: _input(item) for key, item in declared.inputs.items()}}
    required = [key for key, item in declared.inputs.items() if item.required]
    if required:
        schema["required"] = required
    return schema


def example_request(service: str, declared: EngineSchema | None) -> dict:
    """A request the engine can answer: the Swagger UI's "Try it out" sends it as is."""
    inputs = list(declared.inputs.values()) if declared and declared.inputs else \
        [Item("input", "text", "utf8", example=GENERIC_TEXT)]
    payload = {}
    for item in inputs:
        entry = {"encoding": item.encoding} if item.encoding else {}
        entry.update({"status": 3, item.type: _b64(_example_data(item))})
        entry.update(item.attrs)
        payload[item.key] = entry
    parameter = {}
    for key, param in (declared.params.items() if declared else ()):
        value = next((v for v in (param.example, param.default) if v is not None),
                     param.enum[0] if param.enum else None)
        if value is not None:
            parameter[key] = value
    for key, output in (declared.outputs.items() if declared else ()):
        if output.declared and key not in parameter:
            parameter[key] = output.declared
    doc = {"header": {"appid": "demo"}, "parameter": {service: parameter}, "payload": payload}
    if not parameter:
        del doc["parameter"]
    return doc


def _example_data(item: Item) -> bytes:
    if item.example is not None:
        return item.example
    return GENERIC_TEXT if item.type == "text" else b""


# -- responses ----------------------------------------------------------------------------------

def _output(item: Item) -> dict:
    data = {"type": "string", "description": "plain text (base64, with encoding=base64, when "
                                             "the engine's bytes are not UTF-8)"} \
        if item.type == "text" else {"type": "string", "format": "byte",
                                     "description": f"the {item.type} data, standard base64"}
    props = {item.type: data, "seq": {"type": "string", "example": "0"},
             "status": {"type": "string", "enum": ["0", "1", "2", "3"]}}
    for name, value in item.declared.items():
        props[name] = {"type": "string", "example": value}
    return {"type": "object", "properties": props,
            "description": item.description or f"Output `{item.key}` ({item.type})."}


def _result_payload(declared: EngineSchema | None) -> dict:
    if not declared or not declared.outputs:
        return {"type": "object", "additionalProperties": ref("OutputItem"),
                "description": "One entry per output key."}
    return {"type": "object",
            "properties": {key: _output(item) for key, item in declared.outputs.items()}}


def _header(extra: dict | None = None, required=("code", "sid")) -> dict:
    props = {"code": {"type": "integer", "description": "0 = success, else an error code"},
             "sid": {"type": "string", "description": "the request's or session's id"},
             **(extra or {})}
    return {"type": "object", "required": list(required), "properties": props}


def schemas(service: str, declared: EngineSchema | None) -> dict:
    out_status = {"status": {"type": "integer", "enum": [0, 1, 2, 3],
                             "description": "status of the last output"}}
    message = {"message": {"type": "string", "example": "success"}}
    res_id = {"type": "integer", "minimum": 1, "maximum": 4294967295,
              "description": "the resource's id: pass it in header.res_id of later requests"}
    res_token = {"type": "string", "description": "the resource's secret, made at its load "
                 "and shown only in this answer: the DELETE that unloads it sends it in the "
                 "X-Aiges-Resource-Token header"}
    return {
        "RequestHeader": {
            "type": "object", "additionalProperties": True,
            "description": "Free map; keys in [aiges] headerPass are copied into the params.",
            "properties": {"appid": {"type": "string"}, "uid": {"type": "string"},
                           "status": {"type": "integer"},
                           "res_id": {"type": "string", "description": "comma list of loaded "
                                      "resource ids (psrIds), e.g. \"1,2\""}}},
        "Parameters": _parameters(declared),
        "Payload": _payload(declared),
        "DataItem": {
            "type": "object", "additionalProperties": True,
            "description": "Exactly one of text, audio, image, video (standard base64; a JSON "
                           "object or array is sent as its JSON text). Other fields are desc "
                           "attributes passed to the engine (encoding, sample_rate, ...).",
            "properties": {**{t: {"type": "string", "format": "byte"}
                              for t in ("text", "audio", "image", "video")},
                           "status": STATUS, "encoding": {"type": "string", "example": "utf8"}}},
        "Request": {"type": "object", "required": ["payload"], "properties": {
            "header": ref("RequestHeader"),
            "parameter": {"type": "object", "properties": {service: ref("Parameters")}},
            "payload": ref("Payload")}},
        "OutputItem": {
            "type": "object", "additionalProperties": True,
            "description": "Text outputs under `text` as plain strings; audio, image, video "
                           "base64 under their type name; plus the declared attributes.",
            "properties": {"text": {"type": "string"}, "seq": {"type": "string"},
                           "status": {"type": "string", "enum": ["0", "1", "2", "3"]}}},
        "ResultPayload": _result_payload(declared),
        "Response": {"type": "object", "required": ["header", "payload"], "properties": {
            "header": _header(out_status), "payload": ref("ResultPayload")}},
        "SessionFrame": {"type": "object", "required": ["header"], "properties": {
            "header": _header({**message, **out_status}), "payload": ref("ResultPayload")}},
        "SessionAnswer": {"type": "object", "required": ["header", "results"], "properties": {
            "header": _header({**message, **out_status, "ended": {
                "type": "boolean", "description": "true once the final result is out: the "
                                                  "session is gone"}}),
            "results": {"type": "array", "items": ref("SessionFrame"),
                        "description": "server frames exactly as the WebSocket sends them"}}},
        "Done": {"type": "object", "properties": {"header": _header(message)}},
        "ErrorResponse": {"type": "object", "required": ["header"], "properties": {
            "header": _header({"message": {"type": "string"}}, ("code", "message", "sid"))}},
        "ResourceAnswer": {"type": "object", "required": ["header", "res_id"], "properties": {
            "header": _header(message), "res_id": res_id}},
        "ResourceLoaded": {"type": "object", "required": ["header", "res_id", "res_token"],
                           "properties": {"header": _header(message), "res_id": res_id,
                                          "res_token": res_token}},
        "ResourceList": {"type": "object", "required": ["res_ids"], "properties": {
            "header": _header(message, ("code",)),
            "res_ids": {"type": "array", "items": {"type": "integer"}}}},
        "Status": {"type": "object", "properties": {"status": {"type": "string"},
                                                   "detail": {"type": "string"}}},
    }


ERRORS = {
    "BadRequest": (400, 10001, "payload.input.text is not valid base64",
                   "The request is malformed: 10000 not JSON, 10001 bad base64, 10009 invalid "
                   "input, 10003 invalid operation, 10106 invalid output, 10107 invalid param."),
    "NotFound": (404, 10008, "no session 0123abcd",
                 "10008 unknown session, 10101 session already ended, 10107 resource not "
                 "loaded."),
    "SessionTimeout": (408, 10114, "session timed out", "10114: the session was idle too long."),
    "NotOwner": (403, 10120, "resource 1 is unloaded only with the X-Aiges-Resource-Token "
                 "header holding the res_token its load answered",
                 "10120: not the resource's owner (no or a wrong X-Aiges-Resource-Token) nor "
                 "the operator (X-Aiges-Admin-Token): the resource stays loaded."),
    "Conflict": (409, 10107, "resource 1 is already loaded",
                 "The resource id is in use, or being loaded or unloaded."),
    "TooLarge": (413, 10009, "request body too large", "The body is over [aiges] maxBody."),
    "Busy": (429, 10110, "no free engine instance", "10110: no instance freed in time; retry "
                                                    "after Retry-After seconds."),
    "EngineFailure": (500, 10909, "engine says why;code=5",
                      "The engine failed (10903..10910): the message is "
                      "`<wrapperError text>;code=<engine code>`."),
    "Unsupported": (501, 10003, "the engine does not implement wrapperLoadRes",
                    "The engine lacks the symbol this feature needs."),
    "NotReady": (503, 10003, "service is starting", "Not ready yet, or draining at shutdown."),
    "Timeout": (504, 10102, "no result within 30000 ms", "10102: the one-shot time limit passed."),
}


def error_responses() -> dict:
    out = {}
    for name, (_, code, message, description) in ERRORS.items():
        out[name] = {"description": description, "content": {"application/json": {
            "schema": ref("ErrorResponse"),
            "example": {"header": {"code": code, "message": message,
                                   "sid": "9f1c7f0e5b2a4c4e8d3b6a7c1e2f3a4b"}}}}}
    out["Busy"]["headers"] = {"Retry-After": {"description": "seconds to wait before retrying",
                                              "schema": {"type": "integer"}}}
    return out


def errors_of(*names: str) -> dict:
    """Responses entries {status: $ref} for the named error responses."""
    return {str(ERRORS[n][0]): {"$ref": "#/components/responses/" + n} for n in names}
