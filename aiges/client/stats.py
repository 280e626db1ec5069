"""What a bench run measured: outcomes in, report (a JSON-able dict) and table out.

Failed requests are counted by (HTTP status, header.code) and their latencies
kept apart from the successes', so errors are never averaged away.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

PERCENTILES = (50, 90, 99)


@dataclass(slots=True)
class Outcome:
    """One once request or one session."""
    end: float               # seconds since the run began, when it finished
    latency: float           # seconds (a session: connect to final frame)
    ok: bool
    http: int | None = None  # HTTP status (101 for a WebSocket that upgraded)
    code: int | None = None  # header.code of the response / error frame
    error: str = ""          # transport failure (timeout, connection refused, ...)
    message: str = ""
    first: float | None = None  # sessions: seconds to the first result frame
    frames: int = 0             # sessions: frames sent


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(0, math.ceil(pct / 100 * len(ordered)) - 1)
    return ordered[min(rank, len(ordered) - 1)]


def latency_summary(seconds: list[float]) -> dict:
    """count, min, p50, p90, p99, max and mean in milliseconds."""
    ordered = sorted(seconds)
    ms = {"count": len(ordered)}
    if not ordered:
        return ms
    ms["min"] = ordered[0] * 1e3
    ms.update({f"p{p}": percentile(ordered, p) * 1e3 for p in PERCENTILES})
    ms["max"] = ordered[-1] * 1e3
    ms["mean"] = sum(ordered) / len(ordered) * 1e3
    return ms


def error_key(o: Outcome) -> tuple:
    return (o.http, o.code, o.error)


def code_table(outcomes: list[Outcome]) -> list[dict]:
    """One row per (HTTP status, header.code, transport error): successes first, then
    failures, most frequent first, each with its share, latency p50 and a sample message."""
    counts: Counter = Counter()
    latencies: dict[tuple, list[float]] = {}
    messages: dict[tuple, str] = {}
    for o in outcomes:
        key = error_key(o)
        counts[key] += 1
        latencies.setdefault(key, []).append(o.latency)
        if o.message and key not in messages:
            messages[key] = o.message
    total = len(outcomes)
    rows = []
    for key, count in sorted(counts.items(),
                               key=lambda kv: (kv[0][1] != 0 or bool(kv[0][2]), -kv[1], str(kv[0]))):
        http, code, error = key
        ordered = sorted(latencies[key])
        rows.append({"http": http, "code": code, "error": error, "count": count,
                     "share": count / total, "ok": code == 0 and not error,
                     "p50_ms": percentile(ordered, 50) * 1e3,
                     "message": messages.get(key, "")})
    return rows


def timeline(outcomes: list[Outcome], elapsed: float) -> list[dict]:
    """Completions per second of the run: successes and failures. A last fraction of a
    second under half is counted with the second before (no misleading dip at the end)."""
    seconds = max(1, round(elapsed))
    ok, failed = [0] * seconds, [0] * seconds
    for o in outcomes:
        i = min(int(o.end), seconds - 1)
        if o.ok:
            ok[i] += 1
        else:
            failed[i] += 1
    return [{"second": i + 1, "ok": ok[i], "errors": failed[i]} for i in range(seconds)]


def report(outcomes: list[Outcome], elapsed: float, mode: str, url: str,
           concurrency: int) -> dict:
    good = [o for o in outcomes if o.ok]
    bad = [o for o in outcomes if not o.ok]
    rate = (lambda n: n / elapsed) if elapsed > 0 else (lambda n: 0.0)
    unit = "sessions" if mode == "session" else "requests"
    out = {"mode": mode, "url": url, "concurrency": concurrency, "elapsed_s": elapsed,
           unit: len(outcomes), "ok": len(good), "errors": len(bad),
           "success_rate": len(good) / len(outcomes) if outcomes else 0.0,
           "throughput": {f"{unit}_per_s": rate(len(outcomes)), "ok_per_s": rate(len(good))},
           "latency_ms": {"ok": latency_summary([o.latency for o in good]),
                          "errors": latency_summary([o.latency for o in bad])},
           "codes": code_table(outcomes),
           "timeline": timeline(outcomes, elapsed)}
    if mode == "session":
        frames = sum(o.frames for o in good)
        out["frames"] = frames
        out["throughput"]["frames_per_s"] = rate(frames)
        out["first_result_ms"] = latency_summary([o.first for o in good if o.first is not None])
    return out


def _fmt_ms(summary: dict, key: str) -> str:
    return f"{summary[key]:.2f}" if key in summary else "-"


def _latency_rows(name: str, summary: dict) -> str:
    cells = [_fmt_ms(summary, k) for k in ("min", "p50", "p90", "p99", "max")]
    return f"  {name:<14}{summary['count']:>8}  " + "".join(f"{c:>9}" for c in cells)


def _code_label(row: dict) -> tuple[str, str]:
    http = "-" if row["http"] is None else str(row["http"])
    code = row["error"] or ("-" if row["code"] is None else str(row["code"]))
    return http, code


def format_table(rep: dict) -> str:
    """The human summary printed at the end of a run."""
    session = rep["mode"] == "session"
    unit = "sessions" if session else "requests"
    tp = rep["throughput"]
    lines = [f"{rep['url']}  mode {rep['mode']}, concurrency {rep['concurrency']}, "
             f"{rep['elapsed_s']:.2f} s",
             f"  {unit:<14}{rep[unit]:>8}  ok {rep['ok']}, errors {rep['errors']}, "
             f"success {rep['success_rate'] * 100:.2f}%",
             f"  throughput    {tp[unit + '_per_s']:>8.1f} {unit}/s"
             + (f", {tp['frames_per_s']:.1f} frames/s" if session else ""),
             "",
             f"  latency (ms)  {'count':>8}  " + "".join(
                 f"{h:>9}" for h in ("min", "p50", "p90", "p99", "max")),
             _latency_rows("ok", rep["latency_ms"]["ok"]),
             _latency_rows("errors", rep["latency_ms"]["errors"])]
    if session:
        lines.append(_latency_rows("first result", rep["first_result_ms"]))
    lines += ["", f"  {'HTTP':>6} {'code':>10} {'count':>8} {'share':>8} {'p50 ms':>9}  message"]
    for row in rep["codes"]:
        http, code = _code_label(row)
        message = row["message"][:60]
        lines.append(f"  {http:>6} {code:>10} {row['count']:>8} {row['share'] * 100:>7.2f}% "
                     f"{row['p50_ms']:>9.2f}  {message}")
    return "\n".join(line.rstrip() for line in lines)
