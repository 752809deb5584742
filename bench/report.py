"""The one table every benchmark adds its rows to (markdown, to paste into the README), the
phrases its cells are made of, and the line that says which machine it ran on. Pure: no
bed, no clock (tests/bench/test_report.py)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from .load import Stats

HEADER = ("benchmark", "requests", "failed", "measured")


@dataclass(frozen=True)
class Row:
    benchmark: str
    measured: str
    requests: Optional[int] = None   # None: no load in this row
    failed: str = "–"


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in rows:
        requests = "–" if row.requests is None else f"{row.requests:,}"
        cells = (row.benchmark, requests, row.failed, row.measured)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def seconds(value: float) -> str:
    """0.081 s, 1.25 s, 83 s: three significant digits below 10 s, whole seconds above."""
    if math.isnan(value):
        return "–"
    if value >= 10:
        return f"{value:.0f} s"
    if value >= 1:
        return f"{value:.2f} s"
    return f"{value:.3f} s"


def ratio(value: float, base: float) -> str:
    if math.isnan(value) or math.isnan(base) or base <= 0:
        return "–"
    return f"{value / base:.2f}×"


def failed_by_method(stats: Stats) -> str:
    return f"{stats.failed} (GET {stats.failed_get}, POST {stats.failed_post})"


def latency(stats: Stats) -> str:
    return (f"{stats.rps:.1f} req/s, p50 {seconds(stats.p50)}, p99 {seconds(stats.p99)}, "
            f"max {seconds(stats.max)}")


def against_steady(event: Stats, steady: Stats) -> str:
    """The event's tail latency and throughput as multiples of the steady state's."""
    return (f"p99 {seconds(event.p99)} ({ratio(event.p99, steady.p99)}), "
            f"max {seconds(event.max)} ({ratio(event.max, steady.max)}), "
            f"{ratio(event.rps, steady.rps)} of the throughput")


def machine_line(*, cores: int, cpu: str, mem_bytes: int, kernel: str, load: str,
                 suite: Optional[str] = None, debian_version: Optional[str] = None,
                 apps: Optional[int] = None, when: str = "") -> str:
    """Which machine (and bed) a table was measured on, in one line."""
    parts = [f"{cores} cores ({cpu})", f"{mem_bytes / 2**30:.1f} GiB RAM",
             f"Linux {kernel}", f"load average {load} at the start"]
    text = "Measured on " + ", ".join(parts)
    if suite:
        version = f" {debian_version}" if debian_version else ""
        text += f"; bed hosts Debian{version} ({suite}), {apps} app servers"
    return text + (f"; {when}" if when else "") + "."
