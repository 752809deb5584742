"""A release rolled out under load: `python -m bench.rollout [--workers 4] [--baseline 30]`.

On the bed that is up and deployed: GETs and POSTs in turn from the client (a new TLS
connection each), first for `--baseline` seconds (the steady state), then while a release
(one template changed, so a new image: built on the first app server, shipped to the others,
blue/green on each) is deployed, then for the baseline time again. Failures by method, and
the rollout's p99, max and throughput as multiples of the steady state's. The proof that no
request fails is tests/testbed/test_60_redeploy.py; this measures what the rollout costs."""
from __future__ import annotations

import argparse
import sys
import tempfile
import uuid

from tests.testbed.deploy import deploy_bed, project_copy

from ._bed import the_bed
from .load import PHASES, UnderLoad, print_stats, under_load
from .report import Row, against_steady, failed_by_method, markdown_table


def measure(bed, workers: int = 4, baseline: float = 30) -> UnderLoad:
    with tempfile.TemporaryDirectory() as tmp:
        project = project_copy(tmp, marker=f"bench {uuid.uuid4().hex[:8]}")
        return under_load(bed, lambda: deploy_bed(project_dir=project), workers=workers,
                          before=baseline, after=baseline)


def rows(run: UnderLoad) -> list[Row]:
    during = run.phase("during")
    return [Row(f"rolling release under load (a new image; the deploy took "
                f"{run.event_seconds:.0f} s)",
                against_steady(during, run.phase("before")), during.requests,
                failed_by_method(during))]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rollout", description=__doc__)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--baseline", type=float, default=30)
    args = parser.parse_args(argv)
    run = measure(the_bed(), args.workers, args.baseline)
    print_stats([(name, run.phase(name)) for name in PHASES])
    print(markdown_table(rows(run)))
    return 1 if any(not r.ok for r in run.requests) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
