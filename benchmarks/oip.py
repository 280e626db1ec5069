"""The Open Inference Protocol's cost next to the native route: req/s of one aiges-load
(the C echo, 100-byte text) answering native POST /v1/svcName, OIP HTTP JSON
(POST /v2/models/svcName/infer) and OIP gRPC (ModelInfer).

    .venv/bin/python benchmarks/oip.py [--concurrency 1,16] [--duration 3] [--rounds 3]
                                       [--json out.json]

One server, pinned to the first CPU, the load generators to the others (taskset, as
paired.py). The targets take turns within every round (interleaved), so a slow spell
of a shared machine falls on all of them alike; req/s are summed over the rounds.
HTTP is driven by wrk (the same JSON document for every request); gRPC by
perf_analyzer (tritonclient 2.50.0's binary, C++), which also drives OIP HTTP as a
check of how much the two tools differ. Needs wrk, and perf_analyzer with
libcudart/libb64 (see docs/OIP.md).
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import loadgen
import servers

REPO = Path(__file__).resolve().parent.parent
ENGINE = REPO / "build" / "native_examples" / "libecho.so"
PERF = Path(sys.executable).parent / "perf_analyzer"
SCHEMA = '[schema.inputs.input]\ntype = "text"\n[schema.outputs.input]\ntype = "text"\n'
SIZE = 100


def perf_env() -> dict:
    env = dict(os.environ)
    import nvidia.cuda_runtime
    lib = Path(list(nvidia.cuda_runtime.__path__)[0]) / "lib"
    env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(lib),
                                                           env.get("LD_LIBRARY_PATH")]))
    return env


def oip_body(text: str) -> bytes:
    doc = {"inputs": [{"name": "input", "datatype": "BYTES", "shape": [1], "data": [text]}]}
    return json.dumps(doc, separators=(",", ":")).encode()


def run_perf(url: str, protocol: str, concurrency: int, seconds: int, data: Path,
             prefix: list[str], workdir: Path) -> float:
    """perf_analyzer's req/s over three windows of ``seconds`` / 3."""
    report = workdir / "perf.csv"
    window_ms = max(int(seconds * 1000 / 3), 300)
    cmd = prefix + [str(PERF), "-m", "svcName", "-u", url, "-i", protocol,
                    "--concurrency-range", f"{concurrency}:{concurrency}",
                    "-p", str(window_ms), "--max-trials", "3", "-s", "1000",
                    "--input-data", str(data), "-f", str(report)]
    run = subprocess.run(cmd, env=perf_env(), capture_output=True, text=True,
                         timeout=seconds * 10 + 60)
    if run.returncode != 0:
        raise RuntimeError(f"perf_analyzer failed: {run.stdout[-2000:]}{run.stderr[-2000:]}")
    return float(next(csv.DictReader(report.open()))["Inferences/Second"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--concurrency", default="1,16")
    p.add_argument("--duration", type=int, default=3, help="seconds per target per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    pinning = servers.choose_pinning(True)
    client = pinning.prefix(pinning.client)
    text = loadgen.payload_text(SIZE)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        (work / "aiges.toml").write_text(SCHEMA)
        data = work / "data.json"
        data.write_text(json.dumps({"data": [{"input": [text]}]}))
        port, grpc_port = servers.free_port(), servers.free_port()
        cmd = servers.aiges_command(ENGINE, port, None, ("-c", str(work / "aiges.toml"),
                                                         "--grpc-port", str(grpc_port)))
        server = stack.enter_context(servers.running("aiges", cmd, port, pinning, work))
        native_url = f"{server.base}/v1/svcName"
        loadgen.probe(native_url, loadgen.request_body(text), text)
        native = loadgen.write_wrk_script(work / "native.lua", loadgen.request_body(text))
        oip = loadgen.write_wrk_script(work / "oip.lua", oip_body(text))
        oip_url = f"{server.base}/v2/models/svcName/infer"
        targets = {
            "native HTTP (wrk)": lambda c, s: loadgen.run_wrk(native_url, native, c, s,
                                                              client).rps,
            "OIP HTTP JSON (wrk)": lambda c, s: loadgen.run_wrk(oip_url, oip, c, s,
                                                                client).rps,
            "OIP HTTP (perf_analyzer)": lambda c, s: run_perf(
                f"127.0.0.1:{port}", "http", c, s, data, client, work),
            "OIP gRPC (perf_analyzer)": lambda c, s: run_perf(
                f"127.0.0.1:{grpc_port}", "grpc", c, s, data, client, work),
        }
        print(f"pinning: {pinning.describe()}", file=sys.stderr)
        rows = []
        for concurrency in levels:
            sums = dict.fromkeys(targets, 0.0)
            for r in range(args.rounds):
                for name, measure in targets.items():
                    sums[name] += measure(concurrency, args.duration)
                print(f"  c={concurrency} round {r + 1}/{args.rounds} done", file=sys.stderr)
            base = sums["native HTTP (wrk)"]
            for name, total in sums.items():
                rows.append({"target": name, "concurrency": concurrency,
                             "rps": round(total / args.rounds),
                             "ratio": round(total / base, 2) if base else None})
    print(f"| target | c | req/s | vs native |\n|---|---|---|---|")
    for row in rows:
        print(f"| {row['target']} | {row['concurrency']} | {row['rps']} | {row['ratio']} |")
    if args.json:
        args.json.write_text(json.dumps({"pinning": pinning.describe(), "size": SIZE,
                                         "duration_s": args.duration, "rounds": args.rounds,
                                         "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
