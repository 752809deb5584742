"""The steady state: `python -m bench.steady [--workers 4] [--seconds 30]`.

On the bed that is up and deployed: GETs and POSTs in turn from the client for `--seconds`,
nothing else happening; throughput, latency percentiles and failures. The other rows compare
their event with the steady state measured in the same run, just before the event."""
from __future__ import annotations

import argparse
import sys

from ._bed import the_bed
from .load import Stats, UnderLoad, print_stats, under_load
from .report import Row, failed_by_method, latency, markdown_table


def measure(bed, workers: int = 4, seconds: float = 30) -> UnderLoad:
    return under_load(bed, lambda: None, workers=workers, before=seconds, after=0)


def rows(run: UnderLoad) -> list[Row]:
    steady: Stats = run.phase("before")
    return [Row(f"steady state ({run.workers} client workers, "
                f"{run.marks[1] - run.marks[0]:.0f} s)", latency(steady),
                steady.requests, failed_by_method(steady))]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.steady", description=__doc__)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args(argv)
    run = measure(the_bed(), args.workers, args.seconds)
    print_stats([("steady", run.phase("before"))])
    print(markdown_table(rows(run)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
