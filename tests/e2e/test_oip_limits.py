"""Limits, 429, timeouts and drain behave on the Open Inference Protocol as on the
native routes, over HTTP and gRPC alike (docs/OIP.md, the error table); and the digits
engines classify through tritonclient."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import free_port

grpc = pytest.importorskip("grpc")
httpclient = pytest.importorskip("tritonclient.http")
grpcclient = pytest.importorskip("tritonclient.grpc")
from tritonclient.utils import InferenceServerException  # noqa: E402

pytestmark = pytest.mark.e2e

MODEL = "svcName"
REPO = Path(__file__).resolve().parents[2]
HELDOUT = json.loads((REPO / "native_examples/digits/heldout.json").read_text())


def _serve(start, tmp_path, engine: str, toml: str, *flags: str):
    (tmp_path / "aiges.toml").write_text(toml)
    port = free_port()
    service = start(engine, "-c", str(tmp_path / "aiges.toml"), "--grpc-port", str(port),
                    *flags)
    return service, f"127.0.0.1:{service.port}", f"127.0.0.1:{port}"


def _text(kind, value: bytes = b"hi"):
    tensor = kind.InferInput("text", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([value], dtype=object))
    return [tensor]


def _raw_grpc(url: str, **params):
    """A raw ModelInfer (tritonclient hides the trailing metadata): (status, metadata)."""
    from aiges.oip.proto import grpc_service_pb2 as pb
    from aiges.oip.proto import grpc_service_pb2_grpc as pb_grpc
    msg = pb.ModelInferRequest(model_name=MODEL)
    msg.inputs.add(name="text", datatype="BYTES", shape=[1])
    msg.raw_input_contents.append(b"\x02\x00\x00\x00hi")
    for key, value in params.items():
        msg.parameters[key].string_param = value
    with grpc.insecure_channel(url) as channel:
        try:
            pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(msg, timeout=10)
        except grpc.RpcError as err:
            return err.code(), dict(err.trailing_metadata() or ())
    return grpc.StatusCode.OK, {}


def test_busy_timeout_and_size_limits_map_alike(start, tmp_path, echo_so):
    toml = "[fc]\nmax = 1\nwait = 100\n[aiges]\nonceTimeout = 500\nmaxBody = 4096\n"
    _, http_url, grpc_url = _serve(start, tmp_path, echo_so, toml)
    http = httpclient.InferenceServerClient(http_url, network_timeout=10)
    big = _text(httpclient, b"x" * 8192)
    with pytest.raises(InferenceServerException) as err:
        http.infer(MODEL, big)
    assert err.value.status() == "413"
    with pytest.raises(InferenceServerException) as err:
        grpcclient.InferenceServerClient(grpc_url).infer(MODEL, _text(grpcclient, b"x" * 8192))
    assert "RESOURCE_EXHAUSTED" in err.value.status()

    # One slow request holds the only instance past its once timeout: it is answered
    # 504/10102; meanwhile every other request waits 100 ms for an instance, then 429.
    slow: list = []

    def hold():
        slow.append(_raw_grpc(grpc_url, delay_ms="1200"))

    thread = threading.Thread(target=hold)
    thread.start()
    time.sleep(0.25)
    with pytest.raises(InferenceServerException) as err:
        http.infer(MODEL, _text(httpclient))
    assert err.value.status() == "429"
    status, meta = _raw_grpc(grpc_url)
    assert (status, meta.get("aiges-code")) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "10110")
    assert int(meta["retry-after"]) >= 1
    thread.join(10)
    assert slow[0][0] == grpc.StatusCode.DEADLINE_EXCEEDED
    assert slow[0][1]["aiges-code"] == "10102"
    time.sleep(1.2)  # the engine call returns; the instance is free again
    with pytest.raises(InferenceServerException) as err:
        http.infer(MODEL, _text(httpclient), parameters={"delay_ms": 1200})
    assert err.value.status() == "504"


def test_drain_finishes_running_calls_and_refuses_new_ones(start, tmp_path, echo_so):
    service, _, grpc_url = _serve(start, tmp_path, echo_so, "[aiges]\ndrainTimeout = 5000\n")
    done: list = []
    thread = threading.Thread(target=lambda: done.append(_raw_grpc(grpc_url, delay_ms="1000")))
    thread.start()
    time.sleep(0.3)
    service.proc.send_signal(15)
    time.sleep(0.3)
    assert _raw_grpc(grpc_url)[0] == grpc.StatusCode.UNAVAILABLE
    thread.join(10)
    assert done == [(grpc.StatusCode.OK, {})]
    assert service.wait_exit(15) == 0


DIGITS_TOML = """
[schema.inputs.image]
type = "image"
datatype = "UINT8"
shape = [8, 8]
[schema.outputs.result]
type = "text"
"""


@pytest.mark.parametrize("kind", ["c", "py"])
def test_digits_classify_through_tritonclient(start, tmp_path, native_dir, py_examples, kind):
    engine = native_dir / "libdigits.so" if kind == "c" else \
        py_examples / "digits" / "wrapper.py"
    _, http_url, grpc_url = _serve(start, tmp_path, str(engine), DIGITS_TOML)
    clients = [(httpclient, httpclient.InferenceServerClient(http_url)),
               (grpcclient, grpcclient.InferenceServerClient(grpc_url))]
    meta = clients[0][1].get_model_metadata(MODEL)
    assert meta["inputs"] == [{"name": "image", "datatype": "UINT8", "shape": [8, 8]}]
    for image, predicted in list(zip(HELDOUT["images"], HELDOUT["predictions"]))[:10]:
        for module, client in clients:
            tensor = module.InferInput("image", [8, 8], "UINT8")
            tensor.set_data_from_numpy(np.array(image, dtype=np.uint8).reshape(8, 8))
            result = client.infer(MODEL, [tensor])
            assert json.loads(result.as_numpy("result")[0])["digit"] == predicted


def test_a_busy_grpc_port_fails_start_up_at_once(start, tmp_path, echo_so):
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        service = start(echo_so, "--grpc-port", str(port), ready=False)
        assert service.wait_exit(15) == 1
    assert "cannot listen (gRPC)" in service.log and "engine initialised" not in service.log
