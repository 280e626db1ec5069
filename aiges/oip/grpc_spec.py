"""ModelInferRequest / ModelInferResponse (protobuf) as a wire format of the once
pipeline, like aiges.oip.spec.OipSpec for HTTP: the same tensors, the same mapping.

Inputs come as ``raw_input_contents`` (what tritonclient sends) or as typed
``contents``; outputs always go as ``raw_output_contents``.
"""
from __future__ import annotations

from google.protobuf.message import DecodeError

from aiges import errors
from aiges.engine import Data, DataStatus
from aiges.errors import AigesError
from aiges.oip.model import VERSION, Model, check_model
from aiges.oip.proto import grpc_service_pb2 as pb
from aiges.oip.spec import outputs, request
from aiges.oip.tensors import Tensor
from aiges.protocol import Request

# The typed field of InferTensorContents that carries each datatype.
CONTENTS = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
            "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
            "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
            "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents"}


def parameter(value: pb.InferParameter):
    which = value.WhichOneof("parameter_choice")
    return getattr(value, which) if which else None


def parameters(pmap) -> dict:
    return {k: parameter(v) for k, v in pmap.items()}


def set_parameter(pmap, key: str, value) -> None:
    if isinstance(value, bool):
        pmap[key].bool_param = value
    elif isinstance(value, int):
        pmap[key].int64_param = value
    else:
        pmap[key].string_param = str(value)


def decode(body: bytes) -> pb.ModelInferRequest:
    try:
        return pb.ModelInferRequest.FromString(body)
    except DecodeError:
        raise AigesError(errors.BAD_JSON, "the request is not a ModelInferRequest") from None


def tensors(msg: pb.ModelInferRequest) -> list[Tensor]:
    raws = msg.raw_input_contents
    if raws and len(raws) != len(msg.inputs):
        raise AigesError(errors.BAD_PAYLOAD, f"{len(raws)} raw_input_contents for "
                                             f"{len(msg.inputs)} inputs")
    found = []
    for i, item in enumerate(msg.inputs):
        tensor = Tensor(item.name, item.datatype, list(item.shape), parameters(item.parameters))
        if raws:
            tensor.raw = raws[i]
        else:
            field = CONTENTS.get(item.datatype)
            if field is None:
                raise AigesError(errors.BAD_PAYLOAD, f"input {item.name}: {item.datatype} "
                                                     f"travels in raw_input_contents only")
            tensor.data = list(getattr(item.contents, field))
        found.append(tensor)
    return found


def response(model: Model, sid: str, items: list[Data], wanted, request_id: str,
             extra: dict | None = None) -> pb.ModelInferResponse:
    msg = pb.ModelInferResponse(model_name=model.name, model_version=VERSION, id=request_id)
    set_parameter(msg.parameters, "sid", sid)
    for key, value in (extra or {}).items():
        set_parameter(msg.parameters, key, value)
    for out in outputs(model, items, wanted):
        tensor = msg.outputs.add(name=out.name, datatype=out.datatype, shape=out.shape)
        for key, value in out.parameters.items():
            set_parameter(tensor.parameters, key, value)
        msg.raw_output_contents.append(out.raw)
    return msg


class GrpcSpec:
    """One ModelInfer call. ``error`` keeps the failure for the call's status."""

    content_type = "application/grpc"
    headers = None
    __slots__ = ("model", "error", "_wanted", "_id")

    def __init__(self, model: Model):
        self.model = model
        self.error: AigesError | None = None
        self._wanted: set[str] | None = None
        self._id = ""

    def parse(self, state, body: bytes, sid: str) -> Request:
        msg = decode(body)
        check_model(self.model, msg.model_name, msg.model_version)
        self._id = msg.id
        if msg.outputs:
            self._wanted = {o.name for o in msg.outputs}
        return request(state, self.model, sid, tensors(msg), parameters(msg.parameters),
                       DataStatus.ONCE)

    def success(self, sid: str, items: list[Data], req: Request) -> bytes:
        return response(self.model, sid, items, self._wanted, self._id).SerializeToString()

    def failure(self, exc: AigesError, sid: str) -> bytes:
        self.error = exc
        return exc.message.encode()

