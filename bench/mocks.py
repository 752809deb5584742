"""The whole program under Pulumi's mock runtime, for fleets of N app servers:
`python -m bench.mocks [N ...]` (default 1 2 10 50 100; no bed).

Per N: the wall seconds of one run of `__main__.py` (config parsed, every file rendered,
every resource registered and resolved by the mocks: what `pulumi up` costs on the
program's side), the resources it registers, and the critical path of a fresh deploy
(resources on the longest dependency chain: what the engine runs one after another however
many steps it runs at once) with the default `rollout.batchSize` (25%) and with a batch of
one server, for contrast. tests/test_program.py asserts the shape of the critical path;
this prints the numbers."""
from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .report import Row, markdown_table

SIZES = (1, 2, 10, 50, 100)


@dataclass(frozen=True)
class MockRun:
    servers: int
    seconds: float
    resources: int
    depth: int           # critical path, rollout.batchSize 25% (the default)
    depth_one_by_one: int  # rollout.batchSize 1


def measure(sizes=SIZES) -> list[MockRun]:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("DJSCALE_HOME", tmp)  # the program writes the SSH key there
        from tests.test_program import _fleet_stack, _run, critical_path

        _run(_fleet_stack(Path(tmp), 1, "25%"), "warmup")  # imports, template cache
        runs = []
        for n in sizes:
            started = time.perf_counter()
            graph = _run(_fleet_stack(Path(tmp), n, "25%"), f"fleet{n}")
            seconds = time.perf_counter() - started
            serial = _run(_fleet_stack(Path(tmp), n, "1"), f"serial{n}")
            runs.append(MockRun(n, seconds, len(graph.registrations), critical_path(graph),
                                critical_path(serial)))
        return runs


def rows(runs: list[MockRun]) -> list[Row]:
    return [Row(f"the program under mocks, N = {r.servers}",
                f"{r.seconds:.2f} s, {r.resources} resources, critical path {r.depth} "
                f"({r.depth_one_by_one} with `rollout.batchSize: 1`)") for r in runs]


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or list(SIZES)
    print(markdown_table(rows(measure(sizes))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
