"""--plot: a latency histogram and throughput over time (matplotlib, optional extra)."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

# The pip of the Python running aiges (a venv's), not whatever pip is on PATH.
MISSING = ("--plot needs matplotlib, which is not installed: "
           f"{shlex.quote(sys.executable)} -m pip install matplotlib")


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def draw(path: Path, rep: dict, ok_ms: list[float], error_ms: list[float]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (hist, line) = plt.subplots(1, 2, figsize=(12, 4.5))
    if ok_ms:
        hist.hist(ok_ms, bins=60, color="tab:blue", label=f"ok ({len(ok_ms)})")
    if error_ms:
        hist.hist(error_ms, bins=60, color="tab:red", alpha=0.6, label=f"errors ({len(error_ms)})")
    hist.set_xlabel("latency (ms)")
    hist.set_ylabel("count")
    hist.set_title("latency")
    hist.legend()
    seconds = [row["second"] for row in rep["timeline"]]
    line.plot(seconds, [row["ok"] for row in rep["timeline"]], color="tab:blue", label="ok/s")
    line.plot(seconds, [row["errors"] for row in rep["timeline"]], color="tab:red",
              label="errors/s")
    line.set_xlabel("second of the run")
    line.set_ylabel("completed per second")
    line.set_title("throughput")
    line.legend()
    fig.suptitle(f"{rep['url']}  {rep['mode']}, concurrency {rep['concurrency']}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
