"""The Open Inference Protocol's mapping (docs/OIP.md): tensors <-> DataList nodes,
the binary tensor extension, model metadata from [schema], the error table."""
from __future__ import annotations

import json

import numpy as np
import pytest

from aiges import config, errors
from aiges import schema as engine_schema
from aiges.engine import Data, DataStatus, DataType, Modes
from aiges.errors import AigesError
from aiges.oip.model import Model
from aiges.oip.spec import HEADER_LENGTH, OipSpec
from aiges.oip.tensors import Tensor, from_node, to_node
from aiges.service import Service as State

SCHEMA = engine_schema.parse({
    "inputs": {"image": {"type": "image", "datatype": "UINT8", "shape": [8, 8]}},
    "outputs": {"scores": {"datatype": "FP32", "shape": [-1]}},
    "params": {"lang": {"enum": ["en", "zh"]}}})


class Engine:
    path = "stub"
    modes = Modes(True, False, False)
    routes: list = []


def state(schema=SCHEMA) -> State:
    cfg = config.load(None, "svc")
    cfg.schema = schema
    return State(cfg, Engine(), enums=engine_schema.enums(schema))


def model() -> Model:
    return Model(state().config, Engine(), SCHEMA)


def test_numeric_tensor_is_its_little_endian_bytes_with_shape_and_datatype():
    node = to_node(Tensor("x", "FP32", [2, 2], {"seq": 1}, data=[[1, 2], [3, 4.5]]))
    assert node.data == np.array([1, 2, 3, 4.5], "<f4").tobytes()
    assert node.desc == {"seq": "1", "datatype": "FP32", "shape": "2,2"}
    assert (node.type, node.status) == (DataType.TEXT, DataStatus.ONCE)
    raw = to_node(Tensor("x", "INT16", [3], raw=np.arange(3, dtype="<i2").tobytes()))
    assert raw.data == b"\0\0\1\0\2\0"


def test_bytes_tensor_is_its_one_element():
    assert to_node(Tensor("t", "BYTES", [1], data=["héllo"]), "audio").data == "héllo".encode()
    assert to_node(Tensor("t", "BYTES", [1], raw=b"\3\0\0\0abc")).type == DataType.TEXT
    assert to_node(Tensor("t", "BYTES", [1], raw=b"\3\0\0\0abc"), "audio").type == \
        DataType.AUDIO
    with pytest.raises(AigesError) as err:
        to_node(Tensor("t", "BYTES", [2], data=["a", "b"]))
    assert err.value.code == errors.INVALID_INPUT
    with pytest.raises(AigesError) as err:
        to_node(Tensor("t", "BYTES", [1], raw=b"\x09\0\0\0abc"))
    assert err.value.code == errors.BAD_PAYLOAD


@pytest.mark.parametrize("tensor,code", [
    (Tensor("x", "FP32", [3], data=[1, 2]), errors.INVALID_INPUT),
    (Tensor("x", "FP32", [1], data=["a"]), errors.BAD_PAYLOAD),
    (Tensor("x", "INT8", [2], raw=b"\0"), errors.BAD_PAYLOAD),
    (Tensor("x", "COMPLEX", [1], data=[1]), errors.INVALID_INPUT),
    (Tensor("x", "FP32", [-1], data=[1]), errors.INVALID_INPUT),
    (Tensor("", "FP32", [1], data=[1]), errors.INVALID_INPUT),
    (Tensor("x", "BF16", [1], data=[1]), errors.BAD_PAYLOAD),
])
def test_bad_tensors_have_their_codes(tensor, code):
    with pytest.raises(AigesError) as err:
        to_node(tensor)
    assert err.value.code == code


def test_output_datatype_from_desc_then_schema_then_bytes():
    echoed = from_node(Data("x", np.arange(6, dtype="<i4").tobytes(),
                            desc={"datatype": "INT32", "shape": "2,3", "seq": "1"}))
    assert (echoed.datatype, echoed.shape, echoed.parameters) == ("INT32", [2, 3], {"seq": "1"})
    assert echoed.values() == [0, 1, 2, 3, 4, 5]
    declared = from_node(Data("scores", np.ones(4, "<f4").tobytes()), "FP32", (-1,))
    assert (declared.shape, declared.values()) == ([4], [1.0] * 4)
    text = from_node(Data("t", b"\xff\x00"))
    assert (text.datatype, text.raw) == ("BYTES", b"\2\0\0\0\xff\x00")
    assert text.values() == ["/wA="] and text.parameters == {"encoding": "base64"}
    with pytest.raises(AigesError) as err:
        from_node(Data("x", b"\0" * 5), "FP32")
    assert err.value.code == errors.INVALID_OUTPUT


def _infer(body: bytes, header_length=None, st=None):
    spec = OipSpec(model(), header_length)
    req = spec.parse(st or state(), body, "sid1")
    return spec, req


def test_json_request_to_request_and_answer():
    doc = {"id": "r1", "parameters": {"lang": "zh", "res_id": "3,4", "binary_data_output": False},
           "inputs": [{"name": "image", "datatype": "UINT8", "shape": [8, 8],
                       "data": list(range(64))}],
           "outputs": [{"name": "scores"}]}
    spec, req = _infer(json.dumps(doc).encode())
    assert req.params == {"sid": "sid1", "lang": "zh"} and req.psr_ids == [3, 4]
    assert req.data[0].type == DataType.IMAGE and req.data[0].data == bytes(range(64))
    items = [Data("scores", np.array([0.5, 0.25], "<f4").tobytes()), Data("other", b"x")]
    out = json.loads(spec.success("sid1", items, req))
    assert spec.headers is None
    assert out == {"model_name": "svc", "model_version": "1", "id": "r1",
                   "parameters": {"sid": "sid1"},
                   "outputs": [{"name": "scores", "datatype": "FP32", "shape": [2],
                                "data": [0.5, 0.25]}]}


def test_binary_request_and_binary_answer():
    head = json.dumps({"inputs": [{"name": "image", "datatype": "UINT8", "shape": [8, 8],
                                   "parameters": {"binary_data_size": 64}}],
                       "parameters": {"binary_data_output": True}}).encode()
    spec, req = _infer(head + bytes(64), len(head))
    assert req.data[0].data == bytes(64)
    body = spec.success("s", [Data("t", b"abc")], req)
    length = int(spec.headers[HEADER_LENGTH])
    assert spec.headers["Content-Type"] == "application/octet-stream"
    meta = json.loads(body[:length])
    assert meta["outputs"][0]["parameters"] == {"binary_data_size": 7}
    assert body[length:] == b"\3\0\0\0abc"
    with pytest.raises(AigesError) as err:
        _infer(head + bytes(65), len(head))
    assert err.value.code == errors.BAD_PAYLOAD


@pytest.mark.parametrize("doc,code", [
    ({"inputs": "x"}, errors.INVALID_INPUT),
    ({"inputs": []}, errors.INVALID_INPUT),
    ({"inputs": [{"name": "t", "datatype": "BYTES", "shape": [1]}]}, errors.INVALID_INPUT),
    ({"inputs": [{"name": "t", "datatype": "BYTES", "shape": [1], "data": ["a"]}],
      "parameters": {"lang": "fr"}}, errors.INVALID_PARAM),
])
def test_bad_requests_have_their_codes(doc, code):
    with pytest.raises(AigesError) as err:
        _infer(json.dumps(doc).encode())
    assert err.value.code == code


def test_failure_body_carries_the_aiges_code():
    spec = OipSpec(model())
    body = json.loads(spec.failure(AigesError(errors.NO_INSTANCE, "busy"), "s1"))
    assert body == {"error": "busy", "code": 10110, "sid": "s1"}


def test_metadata_and_config_come_from_the_schema():
    meta = model().metadata()
    assert meta["inputs"] == [{"name": "image", "datatype": "UINT8", "shape": [8, 8]}]
    assert meta["outputs"] == [{"name": "scores", "datatype": "FP32", "shape": [-1]}]
    cfg = model().config()
    assert cfg["input"] == [{"name": "image", "data_type": "TYPE_UINT8", "dims": [8, 8]}]
    assert cfg["max_batch_size"] == 0


@pytest.mark.parametrize("table", [{"datatype": "COMPLEX"}, {"shape": [1, -2]},
                                   {"shape": "8"}])
def test_schema_refuses_bad_tensor_declarations(table):
    with pytest.raises(engine_schema.SchemaError):
        engine_schema.parse({"inputs": {"x": table}})


def test_grpc_port_setting(tmp_path):
    path = tmp_path / "aiges.toml"
    path.write_text("[grpc]\nport = 8001\n")
    assert config.load(path).grpc_port == 8001
    assert config.load(None).grpc_port == 0


def test_grpc_typed_contents_and_raw_answer():
    from aiges.oip.grpc_spec import GrpcSpec
    from aiges.oip.proto import grpc_service_pb2 as pb
    msg = pb.ModelInferRequest(model_name="svc", id="q")
    image = msg.inputs.add(name="image", datatype="UINT8", shape=[8, 8])
    image.contents.uint_contents.extend(range(64))
    msg.parameters["lang"].string_param = "en"
    msg.parameters["n"].int64_param = 3
    spec = GrpcSpec(model())
    req = spec.parse(state(), msg.SerializeToString(), "s")
    assert req.data[0].data == bytes(range(64)) and req.params["n"] == "3"
    answer = pb.ModelInferResponse.FromString(
        spec.success("s", [Data("scores", np.ones(2, "<f4").tobytes())], req))
    assert (answer.id, answer.outputs[0].datatype, list(answer.outputs[0].shape)) == \
        ("q", "FP32", [2])
    assert answer.raw_output_contents[0] == np.ones(2, "<f4").tobytes()
    assert answer.parameters["sid"].string_param == "s"
    with pytest.raises(AigesError) as err:
        GrpcSpec(model()).parse(state(), b"\xff\xff", "s")
    assert err.value.code == errors.BAD_JSON
