"""bench/report.py: the table, its phrases and the machine line, exact text. No bed."""
from __future__ import annotations

from bench.load import Stats
from bench.report import (
    Row, against_steady, failed_by_method, latency, machine_line, markdown_table, ratio,
    seconds,
)


def stats(**kw) -> Stats:
    values = dict(requests=100, failed=0, failed_get=0, failed_post=0, rps=50.0, p50=0.02,
                  p90=0.05, p99=0.1, max=0.25, over_half_second=0)
    return Stats(**{**values, **kw})


def test_the_table_is_markdown_with_a_dash_where_a_row_has_no_load():
    table = markdown_table([
        Row("steady state", "50.0 req/s", 1234, "0 (GET 0, POST 0)"),
        Row("mocks, N = 1 | 2", "0.12 s"),
    ])
    assert table == (
        "| benchmark | requests | failed | measured |\n"
        "|---|---|---|---|\n"
        "| steady state | 1,234 | 0 (GET 0, POST 0) | 50.0 req/s |\n"
        "| mocks, N = 1 \\| 2 | – | – | 0.12 s |\n")


def test_seconds_keep_three_significant_digits_below_ten():
    assert [seconds(v) for v in (0.0812, 0.5, 1.254, 9.99, 83.4, float("nan"))] == [
        "0.081 s", "0.500 s", "1.25 s", "9.99 s", "83 s", "–"]


def test_ratio_of_nothing_is_a_dash():
    assert ratio(0.3, 0.1) == "3.00×"
    assert ratio(0.3, 0) == ratio(float("nan"), 1) == "–"


def test_phrases():
    s = stats(failed=3, failed_get=1, failed_post=2)
    assert failed_by_method(s) == "3 (GET 1, POST 2)"
    assert latency(s) == "50.0 req/s, p50 0.020 s, p99 0.100 s, max 0.250 s"
    event = stats(rps=25.0, p99=0.31, max=5.8)
    assert against_steady(event, s) == (
        "p99 0.310 s (3.10×), max 5.80 s (23.20×), 0.50× of the throughput")


def test_the_machine_line_names_the_bed_when_there_is_one():
    common = dict(cores=2, cpu="Intel(R) Xeon(R) Processor", mem_bytes=24 * 2**30,
                  kernel="6.1.0-13-amd64", load="1.50 1.20 0.90")
    assert machine_line(**common) == (
        "Measured on 2 cores (Intel(R) Xeon(R) Processor), 24.0 GiB RAM, Linux "
        "6.1.0-13-amd64, load average 1.50 1.20 0.90 at the start.")
    assert machine_line(**common, suite="bookworm", debian_version="12.7", apps=3,
                        when="2026-12-01 11:00 UTC") == (
        "Measured on 2 cores (Intel(R) Xeon(R) Processor), 24.0 GiB RAM, Linux "
        "6.1.0-13-amd64, load average 1.50 1.20 0.90 at the start; bed hosts Debian 12.7 "
        "(bookworm), 3 app servers; 2026-12-01 11:00 UTC.")
