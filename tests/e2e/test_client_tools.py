"""`aiges call` and `aiges bench` (SPEC 9) run as the user runs them, against the real
aiges-load with the echo and stream engines."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.e2e.test_stream import expected_summary, sample_text

pytestmark = pytest.mark.e2e


def aiges(*args: str, cwd=None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aiges.tool", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


@pytest.fixture
def echo(start, echo_so):
    return start(echo_so, "--no-access-log")


def url(service) -> str:
    return service.url + "/v1/svcName"


def test_call_text_prints_the_echo_and_params(echo):
    out = aiges("call", url(echo), "--text", "hello aiges", "--param", "rate=16000",
                "--header", "appid=t")
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(": ", 1) for line in out.stdout.splitlines())
    assert lines["input"] == "hello aiges"
    params = json.loads(lines["params"])
    assert params["rate"] == "16000" and len(params["sid"]) == 32


def test_call_custom_key_res_id_and_json(echo):
    out = aiges("call", url(echo), "--text", "x", "--key", "words", "--res-id", "7", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["header"]["code"] == 0 and doc["payload"]["words"]["text"] == "x"
    assert doc["payload"]["psr_ids"]["text"] == "7"


def test_call_binary_file_is_saved_identical(echo, tmp_path):
    raw = bytes(range(256)) * 40
    (tmp_path / "clip.wav").write_bytes(raw)
    (tmp_path / "pic.dat").write_bytes(b"\x89PNG\x00\xff")
    out = aiges("call", url(echo), "--file", f"speech={tmp_path / 'clip.wav'}",
                "--file", f"photo={tmp_path / 'pic.dat'}:image", "--out-dir", str(tmp_path / "o"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "o" / "speech.wav").read_bytes() == raw
    assert (tmp_path / "o" / "photo.dat").read_bytes() == b"\x89PNG\x00\xff"
    assert f"speech: saved {tmp_path / 'o' / 'speech.wav'} ({len(raw)} bytes, audio)" \
        in out.stdout


def test_call_engine_error_exits_1_with_the_message(echo):
    out = aiges("call", url(echo), "--text", "x", "--param", "fail=7")
    assert out.returncode == 1
    assert out.stdout == ""
    assert "error 10909 (HTTP 500)" in out.stderr and "code=7" in out.stderr


def test_call_usage_errors_exit_2(echo, tmp_path):
    assert aiges("call", url(echo)).returncode == 2
    bad = aiges("call", url(echo), "--text", "x", "--param", "novalue")
    assert bad.returncode == 2 and "--param expects KEY=VALUE" in bad.stderr
    missing = aiges("call", url(echo), "--file", f"a={tmp_path / 'nope.wav'}")
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    assert aiges("call", echo.url + "/v2/x/y", "--text", "x").returncode == 2


def test_call_stream_prints_every_frame_and_the_summary(start, native_dir, tmp_path):
    service = start(str(native_dir / "libstream.so"), "--no-access-log")
    data = sample_text(9000)
    (tmp_path / "words.txt").write_bytes(data)
    out = aiges("call", url(service), "--stream", "--file", f"text={tmp_path / 'words.txt'}",
                "--chunk-bytes", "1000", "--interval-ms", "5")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    stats = [json.loads(ln.split("stats: ", 1)[1]) for ln in lines if "] stats: " in ln]
    n = -(-len(data) // 1000)
    assert [s["chunk"] for s in stats] == list(range(1, n + 1))
    assert lines[0].startswith("[1 status=0] ")
    assert lines[-1].startswith(f"[{n} status=2] summary: ")
    assert json.loads(lines[-1].split("summary: ", 1)[1]) == expected_summary(data, n)


def test_call_stream_engine_error_exits_1(start, native_dir):
    service = start(str(native_dir / "libstream.so"), "--no-access-log")
    out = aiges("call", url(service), "--stream", "--text", "abcdef", "--chunk-bytes", "2",
                "--param", "fail_at_chunk=2")
    assert out.returncode == 1
    assert out.stdout.startswith("[1 status=0] stats: ")
    assert "error 10907" in out.stderr and "chunk 2" in out.stderr


def bench(*args: str) -> dict:
    out = aiges("bench", *args, "--json", "--quiet", timeout=120)
    assert out.stderr == ""
    return json.loads(out.stdout)


def test_bench_requests_count_and_percentiles(echo, tmp_path):
    rep = bench(url(echo), "--requests", "200", "--concurrency", "4",
                "--json-out", str(tmp_path / "r.json"))
    assert rep["requests"] == rep["ok"] == 200 and rep["errors"] == 0
    assert rep["success_rate"] == 1.0 and rep["throughput"]["requests_per_s"] > 0
    ms = rep["latency_ms"]["ok"]
    assert ms["count"] == 200
    assert 0 < ms["min"] <= ms["p50"] <= ms["p90"] <= ms["p99"] <= ms["max"] < 5000
    assert rep["latency_ms"]["errors"] == {"count": 0}
    assert [(r["http"], r["code"], r["count"]) for r in rep["codes"]] == [(200, 0, 200)]
    assert sum(t["ok"] for t in rep["timeline"]) == 200
    assert json.loads((tmp_path / "r.json").read_text()) == rep


def test_bench_counts_engine_errors(echo):
    out = aiges("bench", url(echo), "-n", "50", "-c", "2", "--param", "fail=9", "--quiet")
    assert out.returncode == 1  # nothing succeeded
    assert "  500      10909       50  100.00%" in out.stdout
    assert "echo: failure requested;code=9" in out.stdout
    rep = bench(url(echo), "-n", "50", "-c", "2", "--param", "fail=9")
    assert rep["ok"] == 0 and rep["errors"] == 50 and rep["success_rate"] == 0
    assert [(r["http"], r["code"], r["count"]) for r in rep["codes"]] == [(500, 10909, 50)]
    assert rep["latency_ms"]["ok"] == {"count": 0} and rep["latency_ms"]["errors"]["count"] == 50


def test_bench_mix_of_successes_and_rejections(start, echo_so, tmp_path):
    (tmp_path / "one.toml").write_text("[fc]\nmax = 1\nwait = 1\n")
    service = start(echo_so, "-c", str(tmp_path / "one.toml"), "--no-access-log")
    rep = bench(url(service), "-n", "80", "-c", "8", "--param", "delay_ms=40")
    codes = {(r["http"], r["code"]): r["count"] for r in rep["codes"]}
    assert set(codes) == {(200, 0), (429, 10110)}
    assert rep["ok"] == codes[(200, 0)] >= 1 and rep["errors"] == codes[(429, 10110)] >= 1
    assert rep["ok"] + rep["errors"] == 80
    # Latencies are kept apart: the engine's 40 ms only in the successes.
    assert rep["latency_ms"]["ok"]["min"] >= 40
    assert rep["latency_ms"]["errors"]["p50"] < 40


def test_bench_sessions(echo):
    rep = bench(url(echo), "--session", "--frames", "5", "-n", "30", "-c", "3",
                "--chunk-bytes", "10")
    assert rep["mode"] == "session" and rep["sessions"] == rep["ok"] == 30
    assert rep["frames"] == 150 and rep["throughput"]["frames_per_s"] > 0
    first, whole = rep["first_result_ms"], rep["latency_ms"]["ok"]
    assert first["count"] == 30 and 0 < first["p50"] <= whole["p50"]
    assert [(r["http"], r["code"]) for r in rep["codes"]] == [(101, 0)]


def test_bench_duration_progress_and_table(echo):
    out = aiges("bench", url(echo), "-d", "2.5", "-c", "2", "--ramp-up", "0.5")
    assert out.returncode == 0, out.stderr
    assert "req/s  errors 0" in out.stderr  # plain progress lines: stderr is not a TTY
    assert "mode once, concurrency 2" in out.stdout
    assert "latency (ms)" in out.stdout and "     200          0" in out.stdout


def test_bench_plot_needs_matplotlib(echo, tmp_path):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        out = aiges("bench", url(echo), "-n", "5", "--plot", str(tmp_path / "p.png"))
        assert out.returncode == 2 and "-m pip install matplotlib" in out.stderr
        return
    out = aiges("bench", url(echo), "-n", "20", "--quiet", "--plot", str(tmp_path / "p.png"))
    assert out.returncode == 0 and (tmp_path / "p.png").stat().st_size > 0


def test_bench_unreachable_server_counts_connection_errors():
    from tests.helpers import free_port
    rep = bench(f"http://127.0.0.1:{free_port()}/v1/svcName", "-n", "3", "--timeout", "5")
    assert rep["errors"] == 3
    assert rep["codes"][0]["http"] is None and rep["codes"][0]["error"]


def test_bench_error_distribution_with_the_faulty_engine(start, native_dir):
    """Half the load asks the faulty engine for an error, half for a slow success: the table
    keeps them apart instead of averaging the errors away."""
    service = start(str(native_dir / "libfaulty.so"), "--no-access-log")
    ok = bench(url(service), "-n", "30", "-c", "2", "--param", "fault=slow",
               "--param", "ms=5")
    bad = bench(url(service), "-n", "30", "-c", "2", "--param", "fault=error",
                "--param", "code=77")
    assert (ok["ok"], ok["errors"]) == (30, 0)
    assert (bad["ok"], bad["errors"]) == (0, 30)
    assert [(r["http"], r["code"], r["count"]) for r in bad["codes"]] == [(500, 10909, 30)]
    assert "faulty: requested error;code=77" in json.dumps(bad["codes"])
