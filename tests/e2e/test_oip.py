"""The Open Inference Protocol (docs/OIP.md) driven by Triton's own clients,
tritonclient.http and tritonclient.grpc, against the C and the Python echo engine:
metadata, readiness, config, infer (JSON and binary tensors), errors with their codes,
a gRPC stream as a session, and the same metrics and access log as the native routes.
One service per engine for the module (read-only use)."""
from __future__ import annotations

import json
import queue
import urllib.request

import numpy as np
import pytest

from tests.helpers import Service, free_port, metric, metric_samples

grpc = pytest.importorskip("grpc")
httpclient = pytest.importorskip("tritonclient.http")
grpcclient = pytest.importorskip("tritonclient.grpc")
from tritonclient.utils import InferenceServerException  # noqa: E402

pytestmark = pytest.mark.e2e

MODEL = "svcName"
SCHEMA = """
[schema.inputs.text]
type = "text"
[schema.outputs.text]
type = "text"
[schema.params.lang]
type = "string"
enum = ["en", "zh"]
"""


class Oip:
    """A service with gRPC on, and a client of each kind."""

    def __init__(self, service: Service, grpc_port: int):
        self.service = service
        self.http = httpclient.InferenceServerClient(f"127.0.0.1:{service.port}")
        self.grpc = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        self.grpc_url = f"127.0.0.1:{grpc_port}"


def serve_oip(folder, engine: str, toml: str = SCHEMA, *flags: str) -> Oip:
    (folder / "aiges.toml").write_text(toml)
    port = free_port()
    service = Service(engine, "-c", str(folder / "aiges.toml"), "--grpc-port", str(port),
                      *flags, cwd=folder)
    return Oip(service, port)


@pytest.fixture(scope="module", params=["c", "py"])
def oip(request, tmp_path_factory, native_dir, py_examples):
    engine = native_dir / "libecho.so" if request.param == "c" else \
        py_examples / "echo" / "wrapper.py"
    served = serve_oip(tmp_path_factory.mktemp(f"oip-{request.param}"), str(engine))
    yield served
    served.http.close()
    served.grpc.close()
    served.service.close()


def inputs(kind, text: bytes = b"hello", binary: bool = True):
    a = kind.InferInput("text", [1], "BYTES")
    b = kind.InferInput("x", [2, 2], "FP32")
    extra = {"binary_data": binary} if kind is httpclient else {}
    a.set_data_from_numpy(np.array([text], dtype=object), **extra)
    b.set_data_from_numpy(np.arange(4, dtype=np.float32).reshape(2, 2), **extra)
    return [a, b]


def test_live_ready_and_metadata_from_the_schema(oip):
    for client in (oip.http, oip.grpc):
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready(MODEL)
    meta = oip.http.get_model_metadata(MODEL)
    assert meta["name"] == MODEL and meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [1]}]
    grpc_meta = oip.grpc.get_model_metadata(MODEL, as_json=True)
    assert grpc_meta["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": ["1"]}]
    config = oip.http.get_model_config(MODEL)
    assert config["input"] == [{"name": "text", "data_type": "TYPE_STRING", "dims": [1]}]
    assert oip.grpc.get_model_config(MODEL).config.input[0].name == "text"
    assert "binary_tensor_data" in oip.http.get_server_metadata()["extensions"]
    with pytest.raises(InferenceServerException) as err:
        oip.http.get_model_metadata("other")
    assert err.value.status() == "404"


@pytest.mark.parametrize("binary", [True, False])
def test_http_infer_json_and_binary_tensors(oip, binary):
    outputs = None if binary else [httpclient.InferRequestedOutput(n, binary_data=False)
                                   for n in ("text", "x", "params")]
    result = oip.http.infer(MODEL, inputs(httpclient, binary=binary), outputs=outputs,
                            parameters={"lang": "en"})
    assert result.as_numpy("text").tolist() == ([b"hello"] if binary else ["hello"])
    assert result.as_numpy("x").tolist() == [[0, 1], [2, 3]]
    params = result.as_numpy("params")[0]
    params = json.loads(params if isinstance(params, str) else params.decode())
    assert params["lang"] == "en" and params["sid"] == result.get_response()["parameters"]["sid"]


def test_grpc_infer(oip):
    text = "héllo".encode()
    result = oip.grpc.infer(MODEL, inputs(grpcclient, text), parameters={"lang": "zh"})
    assert result.as_numpy("text").tolist() == [text]
    assert result.as_numpy("x").dtype == np.float32
    assert result.as_numpy("x").tolist() == [[0, 1], [2, 3]]
    assert json.loads(result.as_numpy("params")[0])["lang"] == "zh"
    only = oip.grpc.infer(MODEL, inputs(grpcclient), outputs=[
        grpcclient.InferRequestedOutput("x")])
    assert [o.name for o in only.get_response().outputs] == ["x"]


def _http_error(oip, body: bytes, path: str = f"/v2/models/{MODEL}/infer"):
    req = urllib.request.Request(oip.service.url + path, data=body, method="POST")
    try:
        urllib.request.urlopen(req, timeout=10)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    raise AssertionError("no error")


def _grpc_error(oip, call):
    """(gRPC status, aiges code from the trailing metadata) of a failing raw call."""
    from aiges.oip.proto import grpc_service_pb2 as pb
    from aiges.oip.proto import grpc_service_pb2_grpc as pb_grpc
    with grpc.insecure_channel(oip.grpc_url) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            call(stub, pb)
    codes = dict(err.value.trailing_metadata() or ())
    return err.value.code(), int(codes.get("aiges-code", 0)), err.value.details()


def _tensor(pb, name="text", datatype="BYTES", shape=(1,), raw=b"\x02\x00\x00\x00hi",
            **params):
    msg = pb.ModelInferRequest(model_name=MODEL)
    msg.inputs.add(name=name, datatype=datatype, shape=list(shape))
    msg.raw_input_contents.append(raw)
    for key, value in params.items():
        msg.parameters[key].string_param = value
    return msg


@pytest.mark.parametrize("case,http_status,grpc_status,code", [
    ("engine", 500, grpc.StatusCode.INTERNAL, 10909),
    ("datatype", 400, grpc.StatusCode.INVALID_ARGUMENT, 10009),
    ("size", 400, grpc.StatusCode.INVALID_ARGUMENT, 10001),
    ("enum", 400, grpc.StatusCode.INVALID_ARGUMENT, 10107),
])
def test_errors_keep_their_codes_on_both_transports(oip, case, http_status, grpc_status, code):
    tensor = {"name": "text", "datatype": "BYTES", "shape": [1], "data": ["hi"]}
    params, grpc_args = {}, {}
    if case == "engine":
        params, grpc_args = {"fail": 7}, {"fail": "7"}
    elif case == "datatype":
        tensor["datatype"], grpc_args = "COMPLEX", {"datatype": "COMPLEX"}
    elif case == "size":
        tensor.update(datatype="FP32", shape=[2], data=[1.0, "x"])
        grpc_args = {"datatype": "FP32", "shape": (2,), "raw": b"\0" * 7}
    else:
        params, grpc_args = {"lang": "fr"}, {"lang": "fr"}
    status, body = _http_error(oip, json.dumps({"inputs": [tensor],
                                                "parameters": params}).encode())
    assert (status, body["code"]) == (http_status, code), body
    assert body["error"] and len(body["sid"]) == 32
    got = _grpc_error(oip, lambda stub, pb: stub.ModelInfer(_tensor(pb, **grpc_args)))
    assert got[:2] == (grpc_status, code), got


def test_unknown_model_and_bad_bodies(oip):
    assert _http_error(oip, b"{}", "/v2/models/other/infer")[0] == 404
    status, body = _http_error(oip, b"not json")
    assert (status, body["code"]) == (400, 10000)
    got = _grpc_error(oip, lambda stub, pb: stub.ModelInfer(pb.ModelInferRequest(
        model_name="other")))
    assert got[0] == grpc.StatusCode.NOT_FOUND


def test_grpc_stream_is_a_session_to_its_final_result(oip):
    client = grpcclient.InferenceServerClient(oip.grpc_url)
    results: queue.Queue = queue.Queue()
    client.start_stream(callback=lambda result, error: results.put((result, error)))
    flags = [(True, False), (False, False), (False, True)]
    for i, (start, end) in enumerate(flags):
        tensor = grpcclient.InferInput("text", [1], "BYTES")
        tensor.set_data_from_numpy(np.array([f"part{i}".encode()], dtype=object))
        client.async_stream_infer(MODEL, [tensor], sequence_id=5, sequence_start=start,
                                  sequence_end=end, request_id=f"r{i}")
    client.stop_stream()
    got = [results.get(timeout=10) for _ in flags]
    client.close()
    assert all(error is None for _, error in got), got
    texts = [r.as_numpy("text").tolist() for r, _ in got]
    assert texts == [[b"part0"], [b"part1"], [b"part2"]]
    last = got[-1][0].get_response()
    assert last.parameters["status"].int64_param == 2
    sids = {r.get_response().parameters["sid"].string_param for r, _ in got}
    assert len(sids) == 1
    assert results.empty()


def test_metrics_and_access_log_count_every_transport(oip):
    def count() -> float:
        with urllib.request.urlopen(oip.service.url + "/metrics", timeout=5) as resp:
            samples = metric_samples(resp.read().decode())
        return metric(samples, "aiges_requests_total", mode="once", code="0")

    before = count()
    oip.http.infer(MODEL, inputs(httpclient))
    oip.grpc.infer(MODEL, inputs(grpcclient))
    assert count() == before + 2
    log = oip.service.log
    assert f'"route":"/v2/models/{MODEL}/infer"' in log
    assert '"route":"/inference.GRPCInferenceService/ModelInfer"' in log
    assert "gRPC (Open Inference Protocol) on port" in log


def _stream(oip, frames, **first_params):
    """Send ``frames`` (start, end) on one stream; every callback's (result, error)."""
    client = grpcclient.InferenceServerClient(oip.grpc_url)
    results: queue.Queue = queue.Queue()
    client.start_stream(callback=lambda result, error: results.put((result, error)))
    for i, (start, end) in enumerate(frames):
        tensor = grpcclient.InferInput("text", [1], "BYTES")
        tensor.set_data_from_numpy(np.array([b"x"], dtype=object))
        client.async_stream_infer(MODEL, [tensor], sequence_id=9, sequence_start=start,
                                  sequence_end=end, parameters=first_params if i == 0 else None)
    client.stop_stream()
    client.close()
    got = []
    while not results.empty():
        got.append(results.get())
    return got


def test_grpc_stream_errors_end_the_session_with_their_code(oip):
    got = _stream(oip, [(True, True)], fail_create=5)
    errors = [e for _, e in got if e is not None]
    assert errors and all(r is None for r, _ in got), got
    assert "code=5" in errors[0].message()
    # Closed before sequence_end: the results so far, then 10009.
    got = _stream(oip, [(True, False)])
    assert got[0][0].as_numpy("text").tolist() == [b"x"]
    assert any(e is not None and "before sequence_end" in e.message() for _, e in got), got
    log = oip.service.log
    assert '"mode":"session_grpc","code":10905' in log
    assert '"mode":"session_grpc","code":10009' in log


def test_version_one_is_served_under_its_own_routes(oip):
    for kind, client in ((httpclient, oip.http), (grpcclient, oip.grpc)):
        result = client.infer(MODEL, inputs(kind), model_version="1")
        assert result.as_numpy("x").tolist() == [[0, 1], [2, 3]]
        assert client.is_model_ready(MODEL, "1")
        with pytest.raises(InferenceServerException) as err:
            client.get_model_metadata(MODEL, "2")
        assert err.value.status() in ("404", "StatusCode.NOT_FOUND")
