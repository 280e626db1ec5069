"""Request documents (SPEC 3) built from command-line inputs, and outputs read back.

No I/O beyond reading the input files and writing saved outputs.
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

DATA_TYPES = ("text", "audio", "image", "video")
EXT_TYPES = {".wav": "audio", ".pcm": "audio", ".mp3": "audio",
             ".png": "image", ".jpg": "image", ".jpeg": "image", ".bmp": "image",
             ".mp4": "video", ".avi": "video"}
# The encoding attribute sent with a file (upstream names), and back to an extension.
EXT_ENCODINGS = {"pcm": "raw", "mp3": "lame"}
ENCODING_EXTS = {"raw": "pcm", "lame": "mp3"}
DEFAULT_EXTS = {"audio": "pcm", "image": "img", "video": "bin", "text": "txt"}
DEFAULT_KEY = "input"


class UsageError(ValueError):
    """A bad flag value; the message names the flag."""


@dataclass(frozen=True)
class Input:
    key: str
    data: bytes
    type: str = "text"   # one of DATA_TYPES
    encoding: str = "utf8"


@dataclass
class Spec:
    """Everything that goes into a request besides the data's framing."""
    service: str
    inputs: list[Input]
    params: dict[str, str] = field(default_factory=dict)
    header: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Output:
    key: str
    type: str            # text, audio, image, video
    status: str
    text: str | None     # text outputs
    data: bytes          # the raw bytes (the UTF-8 text for text outputs)
    ext: str


def service_of(url: str) -> str:
    """svcName from http://host:port/v1/svcName."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https", "ws", "wss") or not parsed.netloc:
        raise UsageError(f"URL must look like http://HOST:PORT/v1/SERVICE, got {url!r}")
    parts = [p for p in parsed.path.split("/") if p]
    if len(parts) != 2 or parts[0] != "v1":
        raise UsageError(f"URL path must be /v1/SERVICE, got {parsed.path or '/'!r}")
    return parts[1]


def pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    """['k=v', ...] -> {k: v}; a missing '=' is a usage error naming the flag."""
    out: dict[str, str] = {}
    for item in values or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} expects KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def file_input(spec: str) -> Input:
    """KEY=PATH or KEY=PATH:TYPE; the type is inferred from the extension otherwise."""
    key, sep, path = spec.partition("=")
    if not sep or not key or not path:
        raise UsageError(f"--file expects KEY=PATH[:TYPE], got {spec!r}")
    dtype = None
    head, colon, tail = path.rpartition(":")
    if colon and tail in DATA_TYPES:
        path, dtype = head, tail
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise UsageError(f"--file {key}: cannot read {path}: {exc.strerror}") from None
    ext = file.suffix.lower()
    dtype = dtype or EXT_TYPES.get(ext, "text")
    if dtype == "text":
        return Input(key, data)
    name = ext.lstrip(".") or DEFAULT_EXTS[dtype]
    return Input(key, data, dtype, EXT_ENCODINGS.get(name, name))


def build_spec(url: str, text: str | None, key: str, files: list[str] | None,
               params: list[str] | None, headers: list[str] | None,
               res_id: str | None) -> Spec:
    inputs = [file_input(f) for f in files or ()]
    if text is not None:
        inputs.insert(0, Input(key, text.encode()))
    header = pairs(headers, "--header")
    if res_id is not None:
        header["res_id"] = res_id
    return Spec(service_of(url), inputs, pairs(params, "--param"), header)


def _entry(item: Input, data: bytes, status: int) -> dict:
    return {"encoding": item.encoding, "status": status,
            item.type: base64.b64encode(data).decode()}


def once_doc(spec: Spec) -> dict:
    return {"header": dict(spec.header), "parameter": {spec.service: dict(spec.params)},
            "payload": {i.key: _entry(i, i.data, 3) for i in spec.inputs}}


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)] or [b""]


def session_docs(spec: Spec, chunk_bytes: int, frames: int | None = None) -> list[dict]:
    """The frames of one session streaming the (single) input in chunks.

    Frame 1 carries header and params and has status Begin, the last has End;
    with `frames` the chunks repeat (or stop early) to make that many frames.
    A one-chunk stream still gets a Begin and an (empty) End frame.
    """
    if len(spec.inputs) != 1:
        raise UsageError("streaming needs exactly one input: one --file KEY=PATH or --text")
    item = spec.inputs[0]
    parts = chunks(item.data, chunk_bytes)
    if frames:
        parts = [parts[i % len(parts)] for i in range(frames)]
    if len(parts) == 1:
        parts.append(b"")
    docs = []
    for i, part in enumerate(parts):
        status = 0 if i == 0 else 2 if i == len(parts) - 1 else 1
        doc: dict = {"payload": {item.key: _entry(item, part, status)}}
        if i == 0:
            doc = {"header": dict(spec.header), "parameter": {spec.service: dict(spec.params)},
                   **doc}
        docs.append(doc)
    return docs


def outputs(doc: dict) -> list[Output]:
    """The payload of a response or server frame, decoded."""
    out = []
    for key, entry in (doc.get("payload") or {}).items():
        if not isinstance(entry, dict):
            continue
        dtype = next((t for t in DATA_TYPES if t in entry), "text")
        value = entry.get(dtype) or ""
        status = str(entry.get("status", ""))
        encoding = str(entry.get("encoding", ""))
        if dtype == "text" and encoding != "base64":
            out.append(Output(key, "text", status, value, value.encode(), "txt"))
            continue
        try:
            data = binascii.a2b_base64(value)
        except (binascii.Error, ValueError):
            data = value.encode()
        ext = ENCODING_EXTS.get(encoding, encoding)
        if not ext.isalnum() or len(ext) > 5 or ext in ("utf8", "base64"):
            ext = DEFAULT_EXTS[dtype] if dtype != "text" else "bin"
        out.append(Output(key, dtype, status, None, data, ext))
    return out
