"""Python <-> ParamList/DataList conversion.

A pointer stored in a struct field does not keep its ``ffi.new`` owner alive, so
every builder returns the head together with a ``keep`` list that the caller
holds until the engine call has returned. Input bytes are handed over without a
copy (``ffi.from_buffer``); outputs are copied before the engine frees them.

This runs for every request: nodes of a list come from one array allocation,
C types are looked up once, and the few distinct keys (param names, payload
keys) and desc chains are built once and shared (``_key``, ``_desc_list``);
engines only read them.
"""
from __future__ import annotations

from aiges.engine import Data
from aiges.native.cdef import ffi

NULL = ffi.NULL
PARAM_NODES = ffi.typeof("struct ParamList[]")
DATA_NODES = ffi.typeof("struct DataList[]")
CHARS = ffi.typeof("char[]")
CHAR_P = ffi.typeof("char*")
U32S = ffi.typeof("unsigned int[]")
# Shared key strings and desc chains, capped by count and by size: they come from
# clients, and a flood of distinct ones must not grow memory. Only short ones are
# kept (the ones that repeat: "sid", "input", {"encoding": "utf8"}); past either cap
# each call allocates its own. At most 4096 x 64 + 1024 x 256 bytes of text.
MAX_KEYS, MAX_KEY_LEN = 4096, 64
_keys: dict[str, object] = {}
MAX_DESCS, MAX_DESC_LEN = 1024, 256
_descs: dict[tuple, object] = {}
_desc_owners: list[list] = []


def _key(key: str, keep: list):
    buf = _keys.get(key)
    if buf is None:
        buf = ffi.new(CHARS, key.encode())
        if len(_keys) < MAX_KEYS and len(key) <= MAX_KEY_LEN:
            _keys[key] = buf
        else:
            keep.append(buf)
    return buf


def param_list(pairs: dict[str, str], keep: list) -> object:
    """A ParamList chain for ``pairs`` (NULL when empty), owners appended to ``keep``."""
    count = len(pairs)
    if not count:
        return NULL
    nodes = ffi.new(PARAM_NODES, count)
    keep.append(nodes)
    last = count - 1
    for i, (key, value) in enumerate(pairs.items()):
        raw = value.encode()
        value_buf = ffi.new(CHARS, raw)
        keep.append(value_buf)
        node = nodes[i]
        node.key = _key(key, keep)
        node.value = value_buf
        node.vlen = len(raw)
        if i < last:
            node.next = nodes + (i + 1)
    return nodes


def _desc_list(desc: dict[str, str], keep: list) -> object:
    """Desc chains repeat ({"encoding": "utf8"} on every request): built once, shared
    (engines only read them), capped like the keys."""
    pairs = tuple(desc.items())
    chain = _descs.get(pairs)
    if chain is None:
        owners: list = []
        chain = param_list(desc, owners)
        if len(_descs) < MAX_DESCS and \
                sum(len(k) + len(v) for k, v in pairs) <= MAX_DESC_LEN:
            _descs[pairs] = chain
            _desc_owners.append(owners)
        else:
            keep += owners
    return chain


def data_list(items: list[Data], keep: list) -> object:
    count = len(items)
    if not count:
        return NULL
    nodes = ffi.new(DATA_NODES, count)
    keep.append(nodes)
    last = count - 1
    for i, item in enumerate(items):
        node = nodes[i]
        node.key = _key(item.key, keep)
        if item.data:
            payload = ffi.from_buffer(item.data)
            node.data = payload
            keep.append(payload)
        node.len = len(item.data)
        node.type = item.type
        node.status = item.status
        if item.desc:
            node.desc = _desc_list(item.desc, keep)
        if i < last:
            node.next = nodes + (i + 1)
    return nodes


def u32_array(values: list[int], keep: list) -> object:
    if not values:
        return NULL
    array = ffi.new(U32S, values)
    keep.append(array)
    return array


def text(ptr, limit: int = -1) -> str:
    """A NUL-terminated engine string (at most ``limit`` bytes when given); NULL is ""."""
    return ffi.string(ptr, limit).decode("utf-8", "replace") if ptr != NULL else ""


def read_params(head) -> dict[str, str]:
    pairs = {}
    while head != NULL:
        if head.key != NULL:
            pairs[text(head.key)] = text(head.value)
        head = head.next
    return pairs


def read_data(head) -> list[Data]:
    """Copies an engine-owned DataList chain into Python objects."""
    items = []
    while head != NULL:
        size, data, desc = head.len, head.data, head.desc
        payload = ffi.unpack(ffi.cast(CHAR_P, data), size) if size and data != NULL else b""
        items.append(Data(text(head.key), payload, head.type, head.status,
                          read_params(desc) if desc != NULL else {}))
        head = head.next
    return items
