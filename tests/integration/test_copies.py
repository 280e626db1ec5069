"""A 16 MB input: decoded once by the loader, and handed to the engine in place."""
from __future__ import annotations

import base64
import sys
import tracemalloc

import orjson

from aiges import protocol
from aiges.native import lists, load
from aiges.native.cdef import ffi

MB = 1024 * 1024
# Where CPython keeps a bytes object's data, from the object's address.
BYTES_DATA_OFFSET = sys.getsizeof(b"") - 1


def body(size: int) -> bytes:
    return orjson.dumps({"parameter": {"svcName": {"empty": "true"}},
                         "payload": {"input": {"status": 3,
                                               "text": base64.b64encode(b"x" * size).decode()}}})


def test_a_16mb_input_is_decoded_once_and_reaches_c_without_a_copy(echo_so):
    engine = load(echo_so)
    engine.init({})
    raw = body(16 * MB)
    doc = protocol.loads(raw)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        req = protocol.parse(doc, "svcName", [], "sid")
        parsed, peak = tracemalloc.get_traced_memory()
        # The decoded bytes are the one new copy of the input.
        assert 16 * MB <= parsed - before < 17 * MB
        assert peak - before < 17 * MB

        keep: list = []
        head = lists.data_list(req.data, keep)
        data = req.data[0].data
        # The engine reads the decoded bytes themselves, not a copy of them.
        assert int(ffi.cast("uintptr_t", head[0].data)) == id(data) + BYTES_DATA_OFFSET
        assert head[0].len == 16 * MB

        tracemalloc.reset_peak()
        at_call = tracemalloc.get_traced_memory()[0]
        # echo's "empty" answers nothing: what the call allocates is the loader's own.
        assert engine.exec(req.sid, req.params, req.data, req.psr_ids) == []
        assert tracemalloc.get_traced_memory()[1] - at_call < MB
    finally:
        tracemalloc.stop()
        engine.fini()
