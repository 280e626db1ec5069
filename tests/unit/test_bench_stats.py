"""aiges bench's numbers without a server: percentiles, the code table, the report."""
from __future__ import annotations

import pytest

from aiges.client.stats import (Outcome, code_table, format_table, latency_summary,
                                percentile, report, timeline)


def test_percentile_is_nearest_rank():
    values = [float(i) for i in range(1, 101)]
    assert percentile(values, 50) == 50 and percentile(values, 90) == 90
    assert percentile(values, 99) == 99 and percentile(values, 100) == 100
    assert percentile(values, 0) == 1
    assert percentile([7.0], 99) == 7 and percentile([], 50) == 0.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2 and percentile([1.0, 2.0, 3.0], 50) == 2


def test_latency_summary_in_ms_from_unsorted_seconds():
    s = latency_summary([0.004, 0.001, 0.003, 0.002])
    assert s == pytest.approx({"count": 4, "min": 1, "p50": 2, "p90": 4, "p99": 4, "max": 4,
                               "mean": 2.5})
    assert latency_summary([]) == {"count": 0}


def ok(end, latency):
    return Outcome(end, latency, True, 200, 0)


def failed(end, latency, http=500, code=10909, message="echo: failure requested;code=9"):
    return Outcome(end, latency, False, http, code, "", message)


def mixed() -> list[Outcome]:
    return ([ok(0.5, 0.010)] * 6 + [failed(1.5, 0.001, 429, 10110, "no free instance")] * 3
            + [failed(1.7, 0.050)] + [Outcome(1.9, 5.0, False, None, None, "timeout", "t")])


def test_code_table_counts_every_status_and_code_apart():
    rows = code_table(mixed())
    assert code_table([failed(1, 1)] * 3 + [ok(1, 1)])[0]["ok"]  # successes lead
    assert [(r["http"], r["code"], r["error"], r["count"]) for r in rows] == [
        (200, 0, "", 6), (429, 10110, "", 3), (500, 10909, "", 1), (None, None, "timeout", 1)]
    assert [r["ok"] for r in rows] == [True, False, False, False]
    assert rows[1]["share"] == pytest.approx(3 / 11) and rows[1]["message"] == "no free instance"
    assert rows[1]["p50_ms"] == pytest.approx(1.0) and rows[0]["message"] == ""


def test_report_keeps_failure_latencies_out_of_success_latencies():
    rep = report(mixed(), 2.0, "once", "http://h/v1/s", 4)
    assert rep["requests"] == 11 and rep["ok"] == 6 and rep["errors"] == 5
    assert rep["success_rate"] == pytest.approx(6 / 11)
    assert rep["throughput"] == pytest.approx({"requests_per_s": 5.5, "ok_per_s": 3.0})
    assert rep["latency_ms"]["ok"] == pytest.approx(
        {"count": 6, "min": 10, "p50": 10, "p90": 10, "p99": 10, "max": 10, "mean": 10})
    errors = rep["latency_ms"]["errors"]
    assert errors["count"] == 5 and errors["min"] == pytest.approx(1)
    assert errors["max"] == pytest.approx(5000)
    assert "frames" not in rep and "first_result_ms" not in rep


def test_session_report_has_frames_and_first_result():
    outcomes = [Outcome(1.0, 0.020, True, 101, 0, first=0.005, frames=10),
                Outcome(1.2, 0.030, True, 101, 0, first=0.007, frames=10),
                Outcome(1.3, 0.004, False, 101, 10907, "", "write failed", first=0.004)]
    rep = report(outcomes, 2.0, "session", "ws", 2)
    assert rep["sessions"] == 3 and rep["frames"] == 20
    assert rep["throughput"]["sessions_per_s"] == 1.5 and rep["throughput"]["frames_per_s"] == 10
    assert rep["first_result_ms"]["count"] == 2
    assert rep["first_result_ms"]["max"] == pytest.approx(7)
    table = format_table(rep)
    assert "1.5 sessions/s, 10.0 frames/s" in table and "first result" in table
    assert "   101      10907        1   33.33%" in table


def test_timeline_buckets_by_whole_seconds():
    rows = timeline(mixed(), 2.0)
    assert rows == [{"second": 1, "ok": 6, "errors": 0}, {"second": 2, "ok": 0, "errors": 5}]
    assert timeline([], 0.0) == [{"second": 1, "ok": 0, "errors": 0}]
    assert timeline([ok(3.0, 0.1)], 3.0) == [{"second": s, "ok": int(s == 3), "errors": 0}
                                             for s in (1, 2, 3)]


def test_table_shows_successes_errors_and_each_code():
    table = format_table(report(mixed(), 2.0, "once", "http://h/v1/s", 4))
    lines = table.splitlines()
    assert "requests            11  ok 6, errors 5, success 54.55%" in lines[1]
    assert any(ln.split()[:2] == ["ok", "6"] for ln in lines)
    assert any(ln.split()[:2] == ["errors", "5"] for ln in lines)
    assert "     429      10110        3   27.27%      1.00  no free instance" in table
    assert "       -    timeout        1    9.09%   5000.00  t" in table
    empty = format_table(report([], 0.0, "once", "u", 1))
    assert "success 0.00%" in empty
