"""The critical path of a fresh deploy (resources that run one after another), for fleets of
N app servers, under Pulumi's mock runtime: `python -m bench.graph_depth [N ...]`.

Prints one line per N and batch size; the mock test
(tests/test_program.py::test_with_a_percentage_the_deploy_critical_path_does_not_grow_with_the_fleet)
asserts the shape, this prints the numbers."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or [2, 10, 50, 100]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("DJSCALE_HOME", tmp)
        from tests.test_program import _fleet_stack, _run, critical_path

        print(f"{'servers':>8} {'batch 25%':>10} {'batch 1':>8}")
        for n in sizes:
            row = [critical_path(_run(_fleet_stack(Path(tmp), n, size), f"b{n}{size[:1]}"))
                   for size in ("25%", "1")]
            print(f"{n:>8} {row[0]:>10} {row[1]:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
