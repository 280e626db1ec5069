"""ModelStreamInfer runs a real streaming engine (the `stream` sample, C and Python,
read and pushed) as one session: every per-chunk result and the final summary arrive
in order, also one that comes after the client's last request; every create is
matched by a destroy."""
from __future__ import annotations

import json
import queue

import numpy as np
import pytest

from tests.e2e.test_stream import expected_summary, sample_text
from tests.helpers import free_port, read_counters

grpcclient = pytest.importorskip("tritonclient.grpc")

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("flags,params", [((), {}), (("--async-mode",), {}),
                                          ((), {"final_delay_ms": 150})],
                         ids=["read", "pushed", "late-final"])
def test_stream_engine_session_over_grpc(start, stream_engine, tmp_path, flags, params):
    counters = tmp_path / "counters.txt"
    push = "true" if flags else "false"
    (tmp_path / "aiges.toml").write_text(
        f'[wrapper]\ncounters_file = "{counters}"\npush = "{push}"\n')
    port = free_port()
    service = start(stream_engine, "-c", str(tmp_path / "aiges.toml"), "--grpc-port",
                    str(port), *flags)
    data, chunk = sample_text(3000), 1000
    parts = [data[i:i + chunk] for i in range(0, len(data), chunk)]
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{port}")
    results: queue.Queue = queue.Queue()
    client.start_stream(callback=lambda result, error: results.put((result, error)))
    for i, part in enumerate(parts):
        tensor = grpcclient.InferInput("text", [1], "BYTES")
        tensor.set_data_from_numpy(np.array([part], dtype=object))
        client.async_stream_infer("svcName", [tensor], sequence_id=3,
                                  sequence_start=i == 0, sequence_end=i == len(parts) - 1,
                                  parameters=params if i == 0 else None)
    client.stop_stream()
    client.close()
    got = []
    while not results.empty():
        got.append(results.get())
    assert all(error is None for _, error in got), got
    outputs = [{o.name: r.as_numpy(o.name)[0] for o in r.get_response().outputs}
               for r, _ in got]
    stats = [json.loads(o["stats"]) for o in outputs if "stats" in o]
    assert [s["chunk"] for s in stats] == list(range(1, len(parts) + 1))
    assert json.loads(outputs[-1]["summary"]) == expected_summary(data, len(parts))
    assert got[-1][0].get_response().parameters["status"].int64_param == 2
    assert service.terminate() == 0
    c = read_counters(counters)
    assert c["create"] == c["destroy"] == 1 and c["live_sessions"] == 0
