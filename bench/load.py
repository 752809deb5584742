"""What the benchmarks do with the bed's client load (tests/testbed/load.py: GETs and POSTs
in turn, a new TLS connection each, bounded in time and count, to the bed's proxy only): run
it around an event, cut it into phases, and sum each phase up. Everything but `under_load`
is pure (tests/bench/test_load.py)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from tests.testbed.load import Load, Request

__all__ = ["Load", "Request", "Stats", "UnderLoad", "under_load", "summary", "percentile",
           "error_window", "print_stats"]


def percentile(values: list[float], p: float) -> float:
    """The value below which `p` percent of `values` lie (nearest rank); nan when empty."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


@dataclass(frozen=True)
class Stats:
    """One phase of a load: what was sent, what failed (by method), how fast."""

    requests: int
    failed: int
    failed_get: int
    failed_post: int
    rps: float
    p50: float
    p90: float
    p99: float
    max: float
    over_half_second: int


def summary(requests: list[Request], seconds: float) -> Stats:
    times = [r.seconds for r in requests]
    failed = [r for r in requests if not r.ok]
    return Stats(
        requests=len(requests), failed=len(failed),
        failed_get=sum(1 for r in failed if r.method == "GET"),
        failed_post=sum(1 for r in failed if r.method == "POST"),
        rps=len(requests) / seconds if seconds > 0 else float("nan"),
        p50=percentile(times, 50), p90=percentile(times, 90), p99=percentile(times, 99),
        max=max(times, default=float("nan")),
        over_half_second=sum(1 for t in times if t > 0.5))


def error_window(requests: list[Request]) -> float:
    """Seconds from the start of the first failed request to the end of the last one (0 when
    none failed): how long clients saw errors."""
    failed = [r for r in requests if not r.ok]
    if not failed:
        return 0.0
    return max(r.ended for r in failed) - min(r.started for r in failed)


PHASES = ("before", "during", "after")


@dataclass(frozen=True)
class UnderLoad:
    """The requests of a load run around an event, and when each part began: the load
    started, the event started, the event ended, the load stopped (epoch seconds)."""

    requests: list[Request]
    marks: tuple[float, float, float, float]
    workers: int

    @property
    def event_seconds(self) -> float:
        return self.marks[2] - self.marks[1]

    def _bounds(self, name: str) -> tuple[float, float]:
        index = PHASES.index(name)
        return self.marks[index], self.marks[index + 1]

    def in_phase(self, name: str) -> list[Request]:
        """`before`, `during` (the event) or `after`: the requests started in it."""
        start, end = self._bounds(name)
        return [r for r in self.requests if start <= r.started < end]

    def phase(self, name: str) -> Stats:
        start, end = self._bounds(name)
        return summary(self.in_phase(name), end - start)


def under_load(bed, event: Callable[[], object], *, workers: int = 4, before: float = 30,
               after: float = 30, event_bound: float = 1800) -> UnderLoad:
    """Start the load, wait `before` seconds, run `event()`, wait `after` seconds, stop the
    load. The workers stop by themselves `event_bound` seconds after the phases around the
    event, whatever happens to this process."""
    load = Load(bed, workers, seconds=int(before + after + event_bound))
    try:
        t0 = time.time()
        time.sleep(before)
        t1 = time.time()
        event()
        t2 = time.time()
        time.sleep(after)
        t3 = time.time()
    finally:
        requests = load.stop()
    run = UnderLoad(requests, (t0, t1, t2, t3), workers)
    for line in failures(run):
        print(line, flush=True)
    return run


def failures(run: UnderLoad, most: int = 20) -> list[str]:
    """The failed requests, each with its start relative to the event's (`+1.25 s`)."""
    failed = [r for r in run.requests if not r.ok]
    lines = [f"failed: {r.method} got {r.status} (curl exit {r.curl_exit}) after "
             f"{r.seconds:.3f}s, started "
             f"{r.started - run.marks[1]:+.2f}s from the event" for r in failed[:most]]
    if len(failed) > most:
        lines.append(f"... and {len(failed) - most} more failed")
    return lines


def print_stats(rows: list[tuple[str, Stats]]) -> None:
    """Per-phase detail under the table (the scripts' own output)."""
    print(f"{'phase':<22}{'requests':>9}{'failed':>7}{'GET':>5}{'POST':>5}{'req/s':>8}"
          f"{'p50 s':>8}{'p90 s':>8}{'p99 s':>8}{'max s':>8}{'>0.5s':>7}")
    for label, s in rows:
        print(f"{label:<22}{s.requests:>9}{s.failed:>7}{s.failed_get:>5}{s.failed_post:>5}"
              f"{s.rps:>8.1f}{s.p50:>8.3f}{s.p90:>8.3f}{s.p99:>8.3f}{s.max:>8.3f}"
              f"{s.over_half_second:>7}")
