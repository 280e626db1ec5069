"""Python <-> ParamList/DataList conversion.

A pointer stored in a struct field does not keep its ``ffi.new`` owner alive, so
every builder returns the head together with a ``keep`` list that the caller
holds until the engine call has returned. Input bytes are handed over without a
copy (``ffi.from_buffer``); outputs are copied before the engine frees them.
"""
from __future__ import annotations

from aiges.engine import Data
from aiges.native.cdef import ffi

NULL = ffi.NULL


def param_list(pairs: dict[str, str], keep: list) -> object:
    """A ParamList chain for ``pairs`` (NULL when empty), owners appended to ``keep``."""
    head = NULL
    for key, value in reversed(pairs.items()):
        raw = value.encode()
        node = ffi.new("struct ParamList*")
        key_buf = ffi.new("char[]", key.encode())
        value_buf = ffi.new("char[]", raw)
        node.key = key_buf
        node.value = value_buf
        node.vlen = len(raw)
        node.next = head
        keep += (node, key_buf, value_buf)
        head = node
    return head


def data_list(items: list[Data], keep: list) -> object:
    head = NULL
    for item in reversed(items):
        node = ffi.new("struct DataList*")
        key_buf = ffi.new("char[]", item.key.encode())
        node.key = key_buf
        if item.data:
            payload = ffi.from_buffer(item.data)
            node.data = payload
            keep.append(payload)
        node.len = len(item.data)
        node.type = int(item.type)
        node.status = int(item.status)
        node.desc = param_list(item.desc, keep) if item.desc else NULL
        node.next = head
        keep += (node, key_buf)
        head = node
    return head


def u32_array(values: list[int], keep: list) -> object:
    if not values:
        return NULL
    array = ffi.new("unsigned int[]", values)
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
        payload = ffi.buffer(head.data, head.len)[:] if head.data != NULL and head.len else b""
        items.append(Data(text(head.key), payload, int(head.type), int(head.status),
                          read_params(head.desc)))
        head = head.next
    return items
