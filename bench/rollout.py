"""A release rolled out under load: `python -m bench.rollout [--workers 4] [--baseline 30]`.

On the bed that is up and deployed: GETs and POSTs in turn from the client (a new TLS
connection each), first for `--baseline` seconds, then while a release (one template
changed, so a new image) is deployed, then for the baseline time again. Prints requests,
failures (any method), throughput and latency percentiles per phase, and the ratios of the
rollout phase to the baseline. The proof that no request fails is
tests/testbed/test_60_redeploy.py; this measures what the rollout costs."""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

from tests.testbed.bed import PROJECT_DIR
from tests.testbed.deploy import deploy_bed

from ._bed import the_bed
from .load import Load, print_rows, summary


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rollout", description=__doc__)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--baseline", type=float, default=30)
    args = parser.parse_args(argv)
    bed = the_bed()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        shutil.copytree(PROJECT_DIR, project, ignore=shutil.ignore_patterns(
            ".git", "__pycache__", ".pytest_cache", "tests", "out", ".testbed"))
        base = project / "assets/app/mydb/templates/mydb/base.html"
        base.write_text(base.read_text() + f"<!-- bench {uuid.uuid4().hex[:8]} -->\n")
        load = Load(bed, args.workers)
        t0 = time.time()
        time.sleep(args.baseline)
        t1 = time.time()
        deploy_bed(project_dir=project)
        t2 = time.time()
        time.sleep(args.baseline)
        t3 = time.time()
        requests = load.stop()
    phases = [("before", t0, t1), ("during the rollout", t1, t2), ("after", t2, t3)]
    rows = [summary(label, [r for r in requests if a <= r.started < b], b - a)
            for label, a, b in phases]
    print(f"{len(bed.apps)} app servers, {args.workers} client workers, rollout took "
          f"{t2 - t1:.0f}s")
    print_rows(rows)
    before, during = rows[0], rows[1]
    print(f"rollout/before: throughput {during['rps'] / before['rps']:.2f}, "
          f"p50 {during['p50'] / before['p50']:.2f}, p99 {during['p99'] / before['p99']:.2f}")
    failed = sum(r["failed"] for r in rows)
    print("failed requests:", failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
