"""Triton's perf_analyzer drives the service unchanged: a short concurrency sweep over
HTTP and over gRPC (unary, and a stream) with no failed request.

The binary comes with the Linux wheel of tritonclient 2.50.0 (the test extra); it
needs libcudart.so.12, from the nvidia-cuda-runtime-cu12 wheel (no GPU is used), and
Debian's libb64-0d (``make test`` installs it). Skipped, saying why, where it cannot run.
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import free_port, metric_samples

pytestmark = pytest.mark.e2e

PERF = Path(sys.executable).parent / "perf_analyzer"
SCHEMA = '[schema.inputs.text]\ntype = "text"\n[schema.outputs.text]\ntype = "text"\n'


def _env() -> dict:
    env = dict(os.environ)
    try:
        import nvidia.cuda_runtime
        lib = str(Path(list(nvidia.cuda_runtime.__path__)[0]) / "lib")
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (lib, env.get("LD_LIBRARY_PATH")) if p)
    except ImportError:
        pass
    return env


@pytest.fixture(scope="module")
def perf_env() -> dict:
    if not PERF.exists():
        pytest.skip(f"no {PERF}: perf_analyzer comes with tritonclient 2.50.0's Linux wheel")
    env = _env()
    run = subprocess.run([str(PERF), "--version"], env=env, capture_output=True, text=True,
                         timeout=30)
    if run.returncode != 0:
        pytest.skip(f"perf_analyzer cannot run here ({(run.stderr or run.stdout).strip()}): "
                    f"it needs libb64-0d (make libb64) and nvidia-cuda-runtime-cu12")
    return env


@pytest.mark.parametrize("protocol", ["http", "grpc", "grpc-stream"])
def test_perf_analyzer_sweep_has_no_errors(start, tmp_path, echo_so, perf_env, protocol):
    (tmp_path / "aiges.toml").write_text(SCHEMA)
    grpc_port = free_port()
    service = start(echo_so, "-c", str(tmp_path / "aiges.toml"), "--grpc-port",
                    str(grpc_port), "--no-access-log")
    url = f"127.0.0.1:{service.port}" if protocol == "http" else f"127.0.0.1:{grpc_port}"
    report = tmp_path / "perf.csv"
    # -s 1000: a busy machine (CI) is rarely stable within the default 10 %.
    args = [str(PERF), "-m", "svcName", "-u", url, "-i", protocol.split("-")[0],
            "--concurrency-range", "1:4:3", "-p", "500", "--max-trials", "5", "-s", "1000",
            "-f", str(report)]
    if protocol == "grpc-stream":
        args.append("--streaming")
    run = subprocess.run(args, env=perf_env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = list(csv.DictReader(report.open()))
    assert sorted(row["Concurrency"] for row in rows) == ["1", "4"]  # CSV: by throughput
    assert all(float(row["Inferences/Second"]) > 0 for row in rows), rows
    with urllib.request.urlopen(service.url + "/metrics", timeout=5) as resp:
        samples = metric_samples(resp.read().decode())
    failed = {labels: value for (name, labels), value in samples.items()
              if name == "aiges_requests_total" and dict(labels).get("code") != "0" and value}
    if protocol == "grpc-stream":
        # perf_analyzer never sends sequence_end: each stream ends as its client closes
        # it (10009, counted once per stream), its requests all answered.
        failed = {k: v for k, v in failed.items() if dict(k).get("mode") != "session_grpc"}
    assert not failed, failed
