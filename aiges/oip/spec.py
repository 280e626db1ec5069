"""The Open Inference Protocol's infer request as a wire format (a "spec") of the once
pipeline (aiges.service.once): ``parse`` (body -> Request), ``success`` (outputs ->
body), ``failure`` (error -> body). One spec object per request: it keeps what the
request asked of its answer (the outputs, binary or JSON, its id).

OipSpec: HTTP, a JSON body, or with the binary tensor extension a JSON header of
``Inference-Header-Content-Length`` bytes followed by the tensors' bytes. Answers
are binary when the request asks for it (``binary_data`` per output, or
``binary_data_output``). GrpcSpec (aiges.oip.grpc) is the same over protobuf.
"""
from __future__ import annotations

from aiges import errors, protocol
from aiges.engine import Data, DataStatus
from aiges.errors import AigesError
from aiges.oip.model import VERSION, Model
from aiges.oip.tensors import RESERVED, Tensor, from_node, to_node
from aiges.protocol import Request, object_field

BINARY = "application/octet-stream"
HEADER_LENGTH = "Inference-Header-Content-Length"


def request(state, model: Model, sid: str, tensors: list[Tensor], parameters: dict,
            status: int = DataStatus.ONCE) -> Request:
    """A Request from input tensors and request parameters: the parameters go through
    the service's own parsing (enums, text rendering), a ``res_id`` parameter names the
    personalization resources as header.res_id does."""
    params = {k: v for k, v in parameters.items() if k not in RESERVED and k != "res_id"}
    doc = {"parameter": {model.name: params}}
    if "res_id" in parameters:
        doc["header"] = {"res_id": parameters["res_id"]}
    req = state.parse(doc, sid, need_payload=False)
    if not tensors:
        raise AigesError(errors.INVALID_INPUT, "no input tensors: send at least one")
    req.data = [to_node(t, model.kind(t.name), _status(t, status)) for t in tensors]
    return req


def _status(tensor: Tensor, default: int) -> int:
    """A tensor's ``status`` parameter (0..3) drives a session frame as a payload status."""
    value = tensor.parameters.get("status")
    if value is None:
        return default
    if isinstance(value, bool) or value not in (0, 1, 2, 3, "0", "1", "2", "3"):
        raise AigesError(errors.INVALID_INPUT, f"input {tensor.name}: parameter status must "
                                               f"be 0..3, got {value!r}")
    return int(value)


def outputs(model: Model, items: list[Data], wanted: dict | None):
    """The output tensors the request wants (all when it names none), in engine order."""
    return [from_node(item, *model.output(item.key)) for item in items
            if wanted is None or item.key in wanted]


def error_doc(exc: AigesError, sid: str) -> dict:
    """The OIP error body ({"error": text}) with the aiges code and the sid beside it."""
    return {"error": exc.message, "code": exc.code, "sid": sid}


class OipSpec:
    content_type = "application/json"
    __slots__ = ("model", "header_length", "headers", "_wanted", "_binary", "_id")

    def __init__(self, model: Model, header_length: int | None = None):
        self.model = model
        self.header_length = header_length  # the binary extension: JSON header's size
        self.headers: dict[str, str] | None = None
        self._wanted: dict[str, bool | None] | None = None  # output -> binary (None: default)
        self._binary = False  # binary_data_output
        self._id = None

    def parse(self, state, body: bytes, sid: str) -> Request:
        head, tail = body, b""
        if self.header_length is not None:
            if not 0 < self.header_length <= len(body):
                raise AigesError(errors.BAD_JSON, f"{HEADER_LENGTH} is {self.header_length}, "
                                                  f"the body {len(body)} bytes")
            head, tail = body[:self.header_length], memoryview(body)[self.header_length:]
        doc = protocol.loads(head)
        parameters = object_field(doc, "parameters")
        self._id = doc.get("id")
        self._binary = parameters.get("binary_data_output") is True
        wanted = doc.get("outputs")
        if wanted is not None:
            if not isinstance(wanted, list) or any(not isinstance(o, dict) for o in wanted):
                raise AigesError(errors.INVALID_OUTPUT, "outputs must be a list of objects")
            self._wanted = {
                str(o.get("name")): object_field(o, "parameters").get("binary_data")
                for o in wanted}
        return request(state, self.model, sid, _tensors(doc, tail), parameters)

    def success(self, sid: str, items: list[Data], req: Request) -> bytes:
        entries, parts = [], []
        for out in outputs(self.model, items, self._wanted):
            entry = {"name": out.name, "datatype": out.datatype, "shape": out.shape}
            binary = self._wanted.get(out.name) if self._wanted else None
            if binary if binary is not None else self._binary:
                out.parameters["binary_data_size"] = len(out.raw)
                parts.append(out.raw)
            else:
                entry["data"] = out.values()
            if out.parameters:
                entry["parameters"] = out.parameters
            entries.append(entry)
        doc = {"model_name": self.model.name, "model_version": VERSION,
               "parameters": {"sid": sid}, "outputs": entries}
        if self._id is not None:
            doc["id"] = self._id
        head = protocol.dumps(doc)
        if not parts:
            return head
        self.headers = {"Content-Type": BINARY, HEADER_LENGTH: str(len(head))}
        return b"".join((head, *parts))

    def failure(self, exc: AigesError, sid: str) -> bytes:
        self.headers = None
        return protocol.dumps(error_doc(exc, sid))


def _tensors(doc: dict, tail) -> list[Tensor]:
    """The input tensors; those with ``binary_data_size`` take their bytes from ``tail``
    in order."""
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or any(not isinstance(i, dict) for i in inputs):
        raise AigesError(errors.INVALID_INPUT, "inputs must be a list of tensors")
    tensors, at = [], 0
    for item in inputs:
        params = object_field(item, "parameters")
        tensor = Tensor(item.get("name"), item.get("datatype"), item.get("shape"), params)
        size = params.get("binary_data_size")
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, int) or size < 0 or \
                    at + size > len(tail):
                raise AigesError(errors.BAD_PAYLOAD, f"input {tensor.name}: binary_data_size "
                                                     f"{size!r} runs past the body")
            tensor.raw = bytes(tail[at:at + size])
            at += size
        elif "data" not in item:
            raise AigesError(errors.INVALID_INPUT, f"input {tensor.name}: no data")
        else:
            tensor.data = item["data"]
        tensors.append(tensor)
    if at != len(tail):
        raise AigesError(errors.BAD_PAYLOAD, f"{len(tail) - at} bytes after the last "
                                             f"tensor's binary data")
    return tensors
