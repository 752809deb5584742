"""bench/load.py and the log of tests/testbed/load.py: phases, percentiles, failures by
method, the error window. No bed."""
from __future__ import annotations

import math

import pytest

from bench.load import UnderLoad, error_window, percentile, summary
from tests.testbed.load import Request, parse_log, tally


def req(started: float, seconds: float = 0.1, ok: bool = True, method: str = "GET",
        status: str = "200") -> Request:
    return Request(method, status, seconds, started, ok)


def test_the_workers_log_is_read_in_start_order():
    log = ("POST 403 0.052 1700000001.5 1 0\n"
           "GET 200 0.031 1700000000.25 1 0\n"
           "\n"
           "GET 000 15.001 1700000002.0 0 28\n")
    requests = parse_log(log)
    assert requests == [Request("GET", "200", 0.031, 1700000000.25, True),
                        Request("POST", "403", 0.052, 1700000001.5, True),
                        Request("GET", "000", 15.001, 1700000002.0, False, 28)]
    assert requests[2].ended == pytest.approx(1700000017.001)
    assert tally(requests) == (2, 1)


def test_percentile_is_the_nearest_rank():
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 51.0  # round(0.5 * 99) = 50: the 51st value
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([0.2], 99) == 0.2
    assert math.isnan(percentile([], 50))


def test_summary_counts_failures_by_method_and_the_slow_requests():
    requests = [req(0, 0.1), req(1, 0.6, method="POST", status="403"),
                req(2, 0.2, ok=False, status="502"),
                req(3, 0.3, ok=False, method="POST", status="000"),
                req(4, 0.9, ok=False, method="POST", status="000")]
    stats = summary(requests, seconds=10)
    assert (stats.requests, stats.failed, stats.failed_get, stats.failed_post) == (5, 3, 1, 2)
    assert stats.rps == 0.5
    assert (stats.p50, stats.max, stats.over_half_second) == (0.3, 0.9, 2)


def test_an_empty_phase_has_no_latency():
    stats = summary([], seconds=0)
    assert stats.requests == 0 and math.isnan(stats.rps) and math.isnan(stats.max)


def test_the_error_window_runs_from_the_first_failed_start_to_the_last_failed_end():
    requests = [req(10.0), req(11.0, 0.5, ok=False), req(11.2, 0.1),
                req(12.0, 2.0, ok=False), req(13.0, 0.1, ok=False), req(20.0)]
    assert error_window(requests) == pytest.approx(14.0 - 11.0)
    assert error_window([req(1.0), req(2.0)]) == 0.0
    assert error_window([req(5.0, 0.25, ok=False)]) == 0.25


def test_phases_are_cut_by_start_time_around_the_event():
    requests = [req(t) for t in (100.0, 104.9, 105.0, 107.0, 109.99, 110.0, 114.0)]
    run = UnderLoad(requests, (100.0, 105.0, 110.0, 115.0), workers=4)
    assert run.event_seconds == 5.0
    assert [r.started for r in run.in_phase("before")] == [100.0, 104.9]
    assert [r.started for r in run.in_phase("during")] == [105.0, 107.0, 109.99]
    assert [r.started for r in run.in_phase("after")] == [110.0, 114.0]
    assert run.phase("during").requests == 3 and run.phase("during").rps == 0.6


def test_failures_are_listed_with_curls_reason_and_their_time_from_the_event():
    from bench.load import failures

    requests = [req(100.0), Request("POST", "000", 0.006, 111.5, False, 16),
                *(req(112.0 + i, ok=False, status="502") for i in range(3))]
    run = UnderLoad(requests, (100.0, 110.0, 120.0, 130.0), workers=4)
    assert failures(run, most=2) == [
        "failed: POST got 000 (curl exit 16) after 0.006s, started +1.50s from the event",
        "failed: GET got 502 (curl exit 0) after 0.100s, started +2.00s from the event",
        "... and 2 more failed"]
