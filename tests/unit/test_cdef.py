"""The cffi declarations come from include/ and match SPEC 1's layouts."""
import re

import pytest

from aiges.native.cdef import cdef_source, ffi, header_dir
from aiges.native.symbols import ALL


@pytest.mark.parametrize("struct, size, offsets", [
    ("struct ParamList", 32, {"key": 0, "value": 8, "vlen": 16, "next": 24}),
    ("struct DataList", 48, {"key": 0, "data": 8, "len": 16, "type": 20, "status": 24,
                             "desc": 32, "next": 40}),
])
def test_struct_layout(struct, size, offsets):
    assert ffi.sizeof(struct) == size
    assert {field: ffi.offsetof(struct, field) for field in offsets} == offsets


@pytest.mark.parametrize("typedef", ["pConfig", "pParamList", "pDescList"])
def test_param_pointer_typedefs(typedef):
    assert ffi.typeof(typedef) is ffi.typeof("struct ParamList*")


def test_enums_are_four_bytes_with_spec_values():
    for enum in ("CtrlType", "DataType", "DataStatus"):
        assert ffi.sizeof(enum) == 4
    expected = {"CTMeterCustom": 0, "CTMetricsLog": 1, "CTTraceLog": 2, "DataText": 0,
                "DataAudio": 1, "DataImage": 2, "DataVideo": 3, "DataPer": 4, "DataBegin": 0,
                "DataContinue": 1, "DataEnd": 2, "DataOnce": 3}
    declared = {}
    for enum in ("CtrlType", "DataType", "DataStatus"):
        declared.update(ffi.typeof(enum).relements)
    assert declared == expected


def test_every_header_function_and_ptr_typedef_is_declared():
    headers = (header_dir() / "wrapper.h").read_text()
    functions = set(re.findall(r"WrapperAPI[^;(]*?\b(wrapper\w+)\s*\(", headers))
    assert functions == set(ALL)
    source = cdef_source()
    for name in functions:
        assert ffi.typeof(f"{name}Ptr").kind == "function"  # a function-pointer type
        assert re.search(rf"\b{name}\s*\(", source)


def test_callback_typedefs():
    assert ffi.typeof("wrapperCallback") is ffi.typeof("int(*)(const void*, struct DataList*, int)")
    assert ffi.typeof("wrapperMeterCustom") is ffi.typeof("int(*)(const void*, const char*, int)")
    assert ffi.typeof("wrapperTraceLog") is ffi.typeof("int(*)(const char*, const char*, const char*)")
