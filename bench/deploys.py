"""Deploy wall time on the bed: `python -m bench.deploys`.

- fresh: the first deploy onto hosts that `python -m tests.testbed up` just brought up
  (PostgreSQL, Docker, ufw installed from the Debian mirror; the image built on the first
  app server and shipped to the others; the certificate issued). Measured only when the bed
  has not been deployed yet (`python -m bench --fresh-bed` brings one up first);
- code change: one template changed (a new image: built, shipped, blue/green on every
  server), then the same project again (no-op: every resource the same), then the
  project's own source again (a second code change, which also leaves the bed as
  `python -m tests.testbed deploy` would).

Each through tests/testbed/deploy.py (the real `__main__.py` under the stand-in engine,
which runs independent steps one after another: the times are an upper bound of what the
Pulumi engine, with its parallel steps, takes)."""
from __future__ import annotations

import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass

from tests.testbed.deploy import ENGINE_STATE_DIR, deploy_bed, project_copy
from tests.testbed.engine import state_file

from ._bed import the_bed
from .report import Row, markdown_table, seconds


@dataclass(frozen=True)
class Deploy:
    what: str
    seconds: float
    actions: dict[str, int]  # kind -> resources (create, update, replace, same, delete...)


def deployed() -> bool:
    """The bed's stack has a state: it was deployed at least once."""
    return state_file(ENGINE_STATE_DIR, "testbed").exists()


def timed(what: str, **kw) -> Deploy:
    started = time.monotonic()
    _, actions = deploy_bed(with_actions=True, **kw)
    return Deploy(what, time.monotonic() - started, dict(Counter(a.kind for a in actions)))


def fresh() -> Deploy:
    if deployed():
        raise RuntimeError("the bed was deployed already: a fresh deploy needs a bed just "
                           "brought up (python -m bench --fresh-bed)")
    return timed("fresh")


def changes() -> list[Deploy]:
    with tempfile.TemporaryDirectory() as tmp:
        project = project_copy(tmp, marker=f"bench {uuid.uuid4().hex[:8]}")
        return [timed("code change (one template: a new image)", project_dir=project),
                timed("no-op (the same project again)", project_dir=project),
                timed("code change (back to the project's own source)")]


def _actions(counts: dict[str, int]) -> str:
    changed = {k: v for k, v in counts.items() if k != "same"}
    total = sum(counts.values())
    if not changed:
        return f"all {total} resources the same"
    return ", ".join(f"{v} {k}" for k, v in sorted(changed.items())) + f" of {total}"


def rows(deploys: list[Deploy]) -> list[Row]:
    return [Row(f"deploy wall time: {d.what}", f"{seconds(d.seconds)} ({_actions(d.actions)})")
            for d in deploys]


def main(argv: list[str]) -> int:
    the_bed()  # up, or say how
    deploys = ([] if deployed() else [fresh()]) + changes()
    print(markdown_table(rows(deploys)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
