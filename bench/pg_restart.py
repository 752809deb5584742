"""PostgreSQL restarted under load: `python -m bench.pg_restart [--workers 4] [--seconds 30]`.

On the bed that is up and deployed: GETs and POSTs in turn from the client (every GET reads
the database), `--seconds` of steady state, then `systemctl restart postgresql` on the
database host, then `--seconds` more. The requests that failed (by method) and the error
window: from the start of the first failed request to the end of the last one, the time
clients saw errors. Django checks a kept connection before it uses it
(`CONN_HEALTH_CHECKS`), so a restart should cost the requests that arrive while PostgreSQL
is down, not one per worker afterwards."""
from __future__ import annotations

import argparse
import sys

from ._bed import the_bed
from .load import PHASES, UnderLoad, error_window, print_stats, summary, under_load
from .report import Row, failed_by_method, markdown_table, seconds


def measure(bed, workers: int = 4, phase_seconds: float = 30) -> UnderLoad:
    return under_load(bed, lambda: bed.run_in("db", "systemctl restart postgresql"),
                      workers=workers, before=phase_seconds, after=phase_seconds)


def rows(run: UnderLoad) -> list[Row]:
    """From the restart on (the restart and the phase after it)."""
    affected = run.in_phase("during") + run.in_phase("after")
    stats = summary(affected, run.marks[3] - run.marks[1])
    failed = [r for r in affected if not r.ok]
    measured = f"error window {seconds(error_window(affected))}"
    if failed:
        first = min(r.started for r in failed) - run.marks[1]
        last = max(r.ended for r in failed) - run.marks[1]
        measured += f" (from +{first:.2f} s to +{last:.2f} s into the restart)"
    measured += f"; p99 {seconds(stats.p99)}, max {seconds(stats.max)}"
    return [Row(f"PostgreSQL restart under load (`systemctl restart postgresql`, "
                f"{run.event_seconds:.1f} s, and {run.marks[3] - run.marks[2]:.0f} s after)",
                measured, stats.requests, failed_by_method(stats))]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pg_restart", description=__doc__)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args(argv)
    run = measure(the_bed(), args.workers, args.seconds)
    print_stats([(name, run.phase(name)) for name in PHASES])
    print(markdown_table(rows(run)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
