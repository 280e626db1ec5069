"""What an engine takes and gives (inputs, params, outputs), for the OpenAPI document.

Two sources: the ``[schema]`` section of aiges.toml (C engines, or to override a
wrapper), and the field declarations of a Python wrapper's requestCls/responseCls.
Plain data only: no HTTP, no cdata. ``parse`` checks every entry and raises
SchemaError naming the table and key, so a typo fails start-up instead of
silently producing a wrong document.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from aiges import sdk
from aiges.protocol import text_value
from aiges.core.types import Types

DATA_TYPES = ("text", "audio", "image", "video")
PARAM_TYPES = ("string", "integer", "number", "boolean")
EXAMPLE_LIMIT = 1 << 20  # larger examples would bloat the document (and the browser)

INPUT_KEYS = {"type", "encoding", "compress", "format", "description", "example", "example_file",
              "required", "attrs", "datatype", "shape"}
OUTPUT_KEYS = {"type", "encoding", "compress", "format", "description", "datatype", "shape"}
# Tensor datatypes of the Open Inference Protocol (aiges.oip): what an input or output is
# as a tensor there. BYTES (the default) is the node's bytes as one element.
TENSOR_TYPES = ("BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32",
                "INT64", "FP16", "FP32", "FP64", "BF16", "BYTES")
PARAM_KEYS = {"type", "description", "enum", "default", "example", "minimum", "maximum",
              "min_length", "max_length", "required"}
TOP_KEYS = {"description", "inputs", "params", "outputs"}


class SchemaError(ValueError):
    pass


@dataclass(frozen=True)
class Item:
    """An input (payload key) or an output of the engine."""

    key: str
    type: str = "text"
    encoding: str = ""
    compress: str = ""
    format: str = ""
    description: str = ""
    example: bytes | None = None  # raw data: the document shows it base64-encoded
    required: bool = True
    attrs: dict = field(default_factory=dict)  # other desc attributes, with example values
    datatype: str = "BYTES"   # as an Open Inference Protocol tensor (aiges.oip)
    shape: tuple[int, ...] = ()  # its tensor shape, -1 for a free dimension; () = [1] (BYTES)

    @property
    def declared(self) -> dict[str, str]:
        """The attributes a request declares for this output (parameter.<service>.<key>)."""
        return {k: v for k, v in (("encoding", self.encoding), ("compress", self.compress),
                                  ("format", self.format)) if v}


@dataclass(frozen=True)
class Param:
    key: str
    type: str = "string"
    description: str = ""
    enum: tuple = ()
    default: object = None
    example: object = None
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    required: bool = False


@dataclass(frozen=True)
class EngineSchema:
    inputs: dict[str, Item] = field(default_factory=dict)
    params: dict[str, Param] = field(default_factory=dict)
    outputs: dict[str, Item] = field(default_factory=dict)
    description: str = ""
    source: str = "config"  # "config" or "wrapper"


# -- [schema] in aiges.toml ------------------------------------------------------------------

def parse(table: dict, base: Path | None = None) -> EngineSchema:
    """The ``[schema]`` table; ``base`` is the folder relative example_file paths start from."""
    _known(table, TOP_KEYS, "[schema]")
    sections = {}
    for name in ("inputs", "params", "outputs"):
        sub = table.get(name, {})
        if not isinstance(sub, dict) or any(not isinstance(v, dict) for v in sub.values()):
            raise SchemaError(f"[schema.{name}] must hold one table per key, "
                              f"like [schema.{name}.NAME]")
        sections[name] = sub
    return EngineSchema(
        inputs={k: _item(k, v, "inputs", base) for k, v in sections["inputs"].items()},
        params={k: _param(k, v) for k, v in sections["params"].items()},
        outputs={k: _item(k, v, "outputs", base) for k, v in sections["outputs"].items()},
        description=_text(table, "description", "[schema]"))


def _known(table: dict, known: set[str], where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise SchemaError(f"{where}: unknown key {', '.join(map(repr, unknown))} "
                          f"(known: {', '.join(sorted(known))})")


def _text(table: dict, key: str, where: str) -> str:
    value = table.get(key, "")
    if not isinstance(value, str):
        raise SchemaError(f"{where} {key} must be a string, got {value!r}")
    return value


def _flag(table: dict, key: str, where: str, default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise SchemaError(f"{where} {key} must be true or false, got {value!r}")
    return value


def _item(key: str, table: dict, section: str, base: Path | None) -> Item:
    where = f"[schema.{section}.{key}]"
    _known(table, INPUT_KEYS if section == "inputs" else OUTPUT_KEYS, where)
    kind = table.get("type", "text")
    if kind not in DATA_TYPES:
        raise SchemaError(f"{where} type must be one of {', '.join(DATA_TYPES)}, got {kind!r}")
    attrs = table.get("attrs", {})
    if not isinstance(attrs, dict) or any(isinstance(v, (dict, list)) for v in attrs.values()):
        raise SchemaError(f"{where} attrs must be a table of plain values (sample_rate = 16000)")
    return Item(key, kind, *(_text(table, k, where) for k in ("encoding", "compress", "format",
                                                               "description")),
                example=_example(table, where, base),
                required=_flag(table, "required", where, True), attrs=dict(attrs),
                **_tensor(table, where))


def _tensor(table: dict, where: str) -> dict:
    datatype = table.get("datatype", "BYTES")
    if datatype not in TENSOR_TYPES:
        raise SchemaError(f"{where} datatype must be one of {', '.join(TENSOR_TYPES)}, "
                          f"got {datatype!r}")
    shape = table.get("shape", [])
    if not isinstance(shape, list) or any(isinstance(d, bool) or not isinstance(d, int)
                                          or d < -1 for d in shape):
        raise SchemaError(f"{where} shape must be a list of sizes (-1: any), got {shape!r}")
    return {"datatype": datatype, "shape": tuple(shape)}


def _example(table: dict, where: str, base: Path | None) -> bytes | None:
    if "example" in table and "example_file" in table:
        raise SchemaError(f"{where} has both example and example_file: keep one")
    if "example" in table:
        return _text(table, "example", where).encode()
    if "example_file" not in table:
        return None
    path = Path(_text(table, "example_file", where))
    if not path.is_absolute() and base is not None:
        path = base / path
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SchemaError(f"{where} example_file {str(path)!r}: {exc.strerror}") from None
    if len(raw) > EXAMPLE_LIMIT:
        raise SchemaError(f"{where} example_file {str(path)!r} is larger than {EXAMPLE_LIMIT} bytes")
    return raw


def _fits(kind: str, value) -> bool:
    if kind == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    return {"string": isinstance(value, str), "integer": isinstance(value, int),
            "number": isinstance(value, (int, float))}[kind]


def _param(key: str, table: dict) -> Param:
    where = f"[schema.params.{key}]"
    _known(table, PARAM_KEYS, where)
    kind = table.get("type", "string")
    if kind not in PARAM_TYPES:
        raise SchemaError(f"{where} type must be one of {', '.join(PARAM_TYPES)}, got {kind!r}")
    enum = table.get("enum", [])
    if not isinstance(enum, list) or any(not _fits(kind, v) for v in enum):
        raise SchemaError(f"{where} enum must be a list of {kind} values, got {enum!r}")
    bounds = {k: table.get(k) for k in ("minimum", "maximum", "min_length", "max_length")}
    for name, value in bounds.items():
        if value is None:
            continue
        wanted = ("integer", "number") if name in ("minimum", "maximum") else ("string",)
        if kind not in wanted:
            raise SchemaError(f"{where} {name} applies to {' and '.join(wanted)} params only")
        if not _fits("integer" if name.endswith("length") else "number", value) or \
                (name.endswith("length") and value < 0):
            raise SchemaError(f"{where} {name} must be a number, got {value!r}")
    low, high = bounds["minimum"], bounds["maximum"]
    if low is not None and high is not None and low > high:
        raise SchemaError(f"{where} minimum {low} is above maximum {high}")
    param = Param(key, kind, _text(table, "description", where), tuple(enum),
                  table.get("default"), table.get("example"), low, high,
                  bounds["min_length"], bounds["max_length"],
                  _flag(table, "required", where, False))
    for name in ("default", "example"):
        value = getattr(param, name)
        if value is not None and not _allowed(param, value):
            raise SchemaError(f"{where} {name} {value!r} is not a valid {kind} value here "
                              f"(check type, enum and bounds)")
    return param


def _allowed(param: Param, value) -> bool:
    if not _fits(param.type, value) or (param.enum and value not in param.enum):
        return False
    if param.minimum is not None and value < param.minimum:
        return False
    return param.maximum is None or value <= param.maximum


def enums(schema: EngineSchema | None) -> dict[str, frozenset[str]]:
    """Param -> its allowed values as the text an engine gets ("16000", "true")."""
    if schema is None:
        return {}
    return {key: frozenset(text_value(v) for v in param.enum)
            for key, param in schema.params.items() if param.enum}


# -- a Python wrapper's field declarations -----------------------------------------------------

def from_wrapper(wrapper) -> EngineSchema | None:
    """The schema a wrapper declares on requestCls/responseCls; None when it declares nothing.

    Wrapper declarations are user code of the upstream SDK: values that do not fit
    their field type are left out rather than refused."""
    request = sdk.declared_fields(getattr(wrapper, "requestCls", None))
    response = sdk.declared_fields(getattr(wrapper, "responseCls", None))
    if not request and not response:
        return None
    return EngineSchema(
        inputs={f.key: _wrapper_item(f, True) for f in request if isinstance(f, sdk.PayloadField)},
        params={f.key: _wrapper_param(f) for f in request if isinstance(f, sdk.ParamField)},
        outputs={f.key: _wrapper_item(f, False) for f in response
                 if isinstance(f, sdk.PayloadField)},
        source="wrapper")


def _wrapper_item(f: sdk.PayloadField, is_input: bool) -> Item:
    example = None
    # A file field without a path has no test value (and would log a warning for it).
    if is_input and (not hasattr(f, "path") or f.path):
        example = f.test_value
        example = example if isinstance(example, bytes) and len(example) <= EXAMPLE_LIMIT else None
    return Item(str(f.key), Types.get(f.data_type, "text"), str(f.encoding or ""),
                str(getattr(f, "compress", "") or ""), str(getattr(f, "format", "") or ""),
                str(f.description or f.title or ""), example)


def _coerce(kind: str, value):
    """value as a ``kind`` value, or None when it is not one."""
    try:
        if kind == "boolean":
            return value if isinstance(value, bool) else None
        if kind == "string":
            return value if isinstance(value, str) else None
        number = float(value)
        return int(number) if kind == "integer" and number.is_integer() else \
            (number if kind == "number" else None)
    except (TypeError, ValueError):
        return None


def _wrapper_param(f: sdk.ParamField) -> Param:
    kind = f.kind if f.kind in PARAM_TYPES else "string"
    enum = tuple(v for v in (_coerce(kind, e) for e in f.enums) if v is not None)
    low = _coerce("number", getattr(f, "minimum", None))
    high = _coerce("number", getattr(f, "maximum", None))
    if low is not None and high is not None and low > high:
        low = high = None
    lengths = [_coerce("integer", getattr(f, name, None)) for name in ("min_length", "max_length")]
    param = Param(str(f.key), kind, str(f.description or f.title or ""), enum, None, None,
                  low, high, *(n if n is not None and n >= 0 else None for n in lengths),
                  required=bool(f.required))
    default = _coerce(kind, f.value)
    if default is not None and default != "" and _allowed(param, default):
        param = dataclasses.replace(param, default=default)
    return param
