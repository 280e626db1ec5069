"""The /v2 routes (Open Inference Protocol) in the OpenAPI document: their operations,
keyed by (METHOD, path shape) as aiges.server.openapi_ops keys its own, and their
schemas. The protocol's full description is KServe's; docs/OIP.md has the mapping.
"""
from __future__ import annotations

TAG = {"name": "oip", "description": "The Open Inference Protocol (KServe v2), as "
                                     "tritonclient, perf_analyzer and KServe speak it; also "
                                     "over gRPC on [grpc] port. See docs/OIP.md."}
JSON = "application/json"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _model(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "description": "the model: this "
            "service's name", "schema": {"type": "string"}}


def _error(description: str) -> dict:
    return _json(_ref("OipError"), description)


NOT_FOUND = _error("Another model than this service (10003).")


def _op(op_id: str, summary: str, description: str, responses: dict,
        model: str | None = None) -> dict:
    operation = {"tags": ["oip"], "operationId": op_id, "summary": summary,
                 "description": description, "responses": responses}
    if model is not None:
        operation["parameters"] = [_model(model)]
        responses.setdefault("404", NOT_FOUND)
    return operation


def _ready(op_id: str, what: str, model: str | None = None) -> dict:
    return _op(op_id, f"{what} readiness", "200 when /ready is, else 503 with /ready's body.",
               {"200": _json(_ref("Status"), "Ready."),
                "503": _json(_ref("Status"), "Starting, draining, stuck or unhealthy.")},
               model)


def _versioned(operation: dict, version: str) -> dict:
    operation["operationId"] += "Version"
    operation["parameters"].append({"name": version, "in": "path", "required": True,
                                    "description": "the model version: 1",
                                    "schema": {"type": "string", "enum": ["1"]}})
    return operation


def _infer(model: str = "model") -> dict:
    operation = _op(
        "oipInfer", "Inference (JSON tensors or binary tensor data)",
        "Each input tensor is one DataList node, request parameters are the params, each "
        "output node one tensor (docs/OIP.md). With the binary tensor extension the body "
        "is a JSON header of `Inference-Header-Content-Length` bytes, then the tensors' "
        "bytes; answers are binary when the request asks (`binary_data`, "
        "`binary_data_output`). Errors carry the aiges code beside the message, with the "
        "native route's HTTP status.",
        {"200": {"description": "The output tensors.",
                 "content": {JSON: {"schema": _ref("InferResponse")},
                             "application/octet-stream": {"schema": {
                                 "type": "string", "format": "binary"}}}},
         "400": _error("A bad request (10000, 10001, 10009, 10107)."),
         "413": _error("Body over [aiges] maxBody."),
         "429": _error("No free instance in time (10110)."),
         "500": _error("The engine failed (1090x)."),
         "503": _error("Not ready, or draining."),
         "504": _error("Over [aiges] onceTimeout (10102).")}, model)
    operation["requestBody"] = {"required": True, "content": {
        JSON: {"schema": _ref("InferRequest")},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
    return operation


def _server_metadata() -> dict:
    return _op("oipServerMetadata", "Server metadata",
               "Name, version and the protocol extensions served.",
               {"200": _json({"type": "object"}, "Server metadata.")})


def _live() -> dict:
    return _op("oipLive", "Server liveness", "200 while serving.",
               {"200": _json({"type": "object"}, "Live.")})


def _model_metadata(model: str = "model") -> dict:
    return _op("oipModelMetadata", "Model metadata",
               "Inputs and outputs as tensors, from the same schema as this document.",
               {"200": _json({"type": "object"}, "Model metadata.")}, model)


def _model_config(model: str = "model") -> dict:
    return _op("oipModelConfig", "Model configuration (Triton's)",
               "Triton's model configuration, which perf_analyzer reads.",
               {"200": _json({"type": "object"}, "The configuration.")}, model)


# Builders by route name (aiges.service.routes.oip_routes), given the path's parameter
# names as the OpenAPI table's builders are.
OPERATIONS = {
    "oipServerMetadata": _server_metadata,
    "oipLive": _live,
    "oipServerReady": lambda: _ready("oipServerReady", "Server"),
    "oipModelMetadata": _model_metadata,
    "oipModelReady": lambda model="model": _ready("oipModelReady", "Model", model),
    "oipModelConfig": _model_config,
    "oipInfer": _infer,
}
# The same under /v2/models/{model}/versions/{version}: version "1" only.
OPERATIONS.update({f"{name}Version": (lambda build: lambda model="model", version="version":
                                      _versioned(build(model), version))(build)
                   for name, build in list(OPERATIONS.items())
                   if name not in ("oipServerMetadata", "oipLive", "oipServerReady")})

_TENSOR = {"type": "object", "required": ["name", "datatype", "shape"], "properties": {
    "name": {"type": "string"}, "datatype": {"type": "string"},
    "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
    "parameters": {"type": "object"}, "data": {}}}

SCHEMAS = {
    "OipError": {"type": "object", "required": ["error"], "properties": {
        "error": {"type": "string"}, "code": {"type": "integer"}, "sid": {"type": "string"}}},
    "InferRequest": {"type": "object", "required": ["inputs"], "properties": {
        "id": {"type": "string"}, "parameters": {"type": "object"},
        "inputs": {"type": "array", "items": _TENSOR},
        "outputs": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "parameters": {"type": "object"}}}}}},
    "InferResponse": {"type": "object", "properties": {
        "model_name": {"type": "string"}, "model_version": {"type": "string"},
        "id": {"type": "string"}, "parameters": {"type": "object"},
        "outputs": {"type": "array", "items": _TENSOR}}},
}
