"""Open Inference Protocol tensors <-> DataList nodes (docs/OIP.md, "The mapping").

An input tensor becomes one node: a BYTES tensor of one element its bytes, a numeric
tensor its raw little-endian bytes, with ``datatype`` and ``shape`` ("1,64") in the
node's desc. An output node becomes one tensor: of the datatype and shape its desc
names (an engine that echoes a numeric input), else those the engine's [schema]
declares, else BYTES of shape [1]. numpy converts every numeric value; nothing here
reads JSON (aiges.protocol does) or protobuf (aiges.oip.grpc_spec does). numpy is
imported at the first numeric tensor, not with the service (~55 ms of start-up).
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

from aiges import errors
from aiges.engine import Data, DataStatus, DataType
from aiges.errors import AigesError
from aiges.protocol import text_value

# numpy's little-endian type of each datatype; bfloat16 has none: its bytes pass as
# they are (binary and gRPC only).
DTYPES = {"BOOL": "?", "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
          "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
          "FP16": "<f2", "FP32": "<f4", "FP64": "<f8"}
SIZES = {**{k: 1 if v == "?" else int(v[2:]) for k, v in DTYPES.items()}, "BF16": 2}
DATATYPES = (*DTYPES, "BF16", "BYTES")
KINDS = {"text": DataType.TEXT, "audio": DataType.AUDIO, "image": DataType.IMAGE,
         "video": DataType.VIDEO}
# Parameters of the protocol itself, never handed to the engine.
RESERVED = frozenset({"binary_data_size", "binary_data", "binary_data_output", "sequence_id",
                      "sequence_start", "sequence_end", "priority", "timeout", "status"})
LENGTH = struct.Struct("<I")  # BYTES elements in binary form: 4-byte length, then the bytes


@dataclass(slots=True)
class Tensor:
    """One tensor as the wire gave it: ``raw`` (binary form) or ``data`` (JSON values)."""

    name: str
    datatype: str
    shape: list[int]
    parameters: dict = field(default_factory=dict)
    raw: bytes | None = None
    data: object = None


@dataclass(slots=True)
class Output:
    """One output node as a tensor: ``raw`` is its binary form."""

    name: str
    datatype: str
    shape: list[int]
    parameters: dict
    raw: bytes
    item: Data

    def values(self) -> list:
        """The JSON ``data``: a flat list, row-major. BYTES: text, or base64 when the
        bytes are not UTF-8 (then parameters say ``"encoding": "base64"``)."""
        if self.datatype == "BYTES":
            try:
                return [self.item.data.decode("utf-8")]
            except UnicodeDecodeError:
                import binascii
                self.parameters["encoding"] = "base64"
                return [binascii.b2a_base64(self.item.data, newline=False).decode()]
        if self.datatype == "BF16":
            raise AigesError(errors.INVALID_OUTPUT, f"output {self.name} is BF16: JSON cannot "
                                                    f"carry it, ask for binary data")
        import numpy as np
        return np.frombuffer(self.item.data, DTYPES[self.datatype]).tolist()


def to_node(tensor: Tensor, kind: str = "text", status: int = DataStatus.ONCE) -> Data:
    """The DataList node of an input tensor; ``kind``: the [schema] input's type."""
    name, datatype = tensor.name, tensor.datatype
    if not isinstance(name, str) or not name:
        raise AigesError(errors.INVALID_INPUT, "every input tensor needs a name")
    if datatype not in DATATYPES:
        raise AigesError(errors.INVALID_INPUT, f"input {name}: datatype {datatype!r} is not "
                                               f"one of {', '.join(DATATYPES)}")
    count = _count(name, tensor.shape)
    desc = {k: text_value(v) for k, v in tensor.parameters.items()
            if k not in RESERVED and v is not None and not isinstance(v, (dict, list))}
    if datatype == "BYTES":
        elements = _elements(tensor)
        if len(elements) != count:
            raise AigesError(errors.INVALID_INPUT, f"input {name}: shape {tensor.shape} "
                                                   f"holds {count} elements, got {len(elements)}")
        if count != 1:
            raise AigesError(errors.INVALID_INPUT, f"input {name}: a BYTES tensor is one "
                                                   f"DataList node, so one element (shape "
                                                   f"[1]); got {count}")
        raw = elements[0]
    else:
        raw = _numeric(tensor, count)
        desc["datatype"] = datatype
        desc["shape"] = ",".join(str(d) for d in tensor.shape)
    return Data(name, raw, KINDS.get(kind, DataType.TEXT), status, desc)


def _count(name: str, shape) -> int:
    if not isinstance(shape, list) or any(isinstance(d, bool) or not isinstance(d, int)
                                          or d < 0 for d in shape):
        raise AigesError(errors.INVALID_INPUT, f"input {name}: shape must be a list of "
                                               f"sizes, got {shape!r}")
    return math.prod(shape)


def _elements(tensor: Tensor) -> list[bytes]:
    if tensor.raw is not None:
        raw, out, at = tensor.raw, [], 0
        while at < len(raw):
            if at + 4 > len(raw):
                raise _bad(tensor, "a BYTES element's 4-byte length is cut short")
            (size,) = LENGTH.unpack_from(raw, at)
            at += 4
            if at + size > len(raw):
                raise _bad(tensor, "a BYTES element is longer than the data")
            out.append(raw[at:at + size])
            at += size
        return out
    data = tensor.data
    if type(data) is list and all(type(v) is str for v in data):  # the usual: flat text
        return [v.encode("utf-8") for v in data]
    import numpy as np
    values = np.asarray(data if data is not None else [], dtype=object).ravel()
    out = []
    for value in values.tolist():
        if isinstance(value, str):
            out.append(value.encode("utf-8"))
        elif isinstance(value, (bytes, bytearray)):
            out.append(bytes(value))
        else:
            raise _bad(tensor, f"BYTES elements are strings, got {type(value).__name__}")
    return out


def _numeric(tensor: Tensor, count: int) -> bytes:
    datatype = tensor.datatype
    size = SIZES[datatype]
    if tensor.raw is not None:
        if len(tensor.raw) != count * size:
            raise _bad(tensor, f"{len(tensor.raw)} bytes for {count} {datatype} elements")
        return tensor.raw
    if datatype == "BF16":
        raise _bad(tensor, "BF16 values travel as binary data only")
    import numpy as np
    try:
        values = np.asarray(tensor.data, dtype=DTYPES[datatype]).ravel()
    except (TypeError, ValueError, OverflowError) as exc:
        raise _bad(tensor, f"not {datatype} values: {exc}") from None
    if values.size != count:
        raise AigesError(errors.INVALID_INPUT, f"input {tensor.name}: shape {tensor.shape} "
                                               f"holds {count} elements, got {values.size}")
    return values.tobytes()


def _bad(tensor: Tensor, why: str) -> AigesError:
    return AigesError(errors.BAD_PAYLOAD, f"input {tensor.name}: {why}")


def from_node(item: Data, datatype: str = "BYTES", shape: tuple[int, ...] = ()) -> Output:
    """The tensor of an output node; ``datatype``/``shape``: what [schema] declares,
    which the node's own desc overrides."""
    desc = item.desc
    datatype = desc.get("datatype", datatype)
    if datatype not in DATATYPES:
        datatype = "BYTES"
    params = {k: v for k, v in desc.items() if k not in ("datatype", "shape")}
    if datatype == "BYTES":
        return Output(item.key, datatype, [1], params,
                      LENGTH.pack(len(item.data)) + item.data, item)
    size = SIZES[datatype]
    count, extra = divmod(len(item.data), size)
    dims = _dims(desc.get("shape"), shape, count)
    if extra or dims is None:
        raise AigesError(errors.INVALID_OUTPUT, f"output {item.key}: {len(item.data)} bytes "
                                                f"are not {datatype} values of shape "
                                                f"{desc.get('shape') or list(shape) or '?'}")
    return Output(item.key, datatype, dims, params, item.data, item)


def _dims(text: str | None, declared: tuple[int, ...], count: int) -> list[int] | None:
    """The output's shape: its desc's, else the declared one with a free dimension (-1)
    filled in, else [count]; None when it cannot hold ``count`` elements."""
    if text:
        try:
            dims = [int(d) for d in text.split(",") if d.strip()]
        except ValueError:
            return None
    else:
        dims = list(declared) or [count]
    if dims.count(-1) == 1:
        known = math.prod(d for d in dims if d != -1)
        if known == 0 or count % known:
            return None
        dims[dims.index(-1)] = count // known
    return dims if math.prod(dims) == count and all(d >= 0 for d in dims) else None
