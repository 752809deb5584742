"""The bed that `python -m tests.testbed up` brought up, as the proofs see it."""
from __future__ import annotations

from tests.support.dockerd import engine_from_environment
from tests.testbed import layout
from tests.testbed.probes import Bed


def the_bed() -> Bed:
    state = layout.BedState.load()
    if state is None:
        raise SystemExit("the test bed is not up: python -m tests.testbed up && "
                         "python -m tests.testbed deploy")
    return Bed(engine=engine_from_environment(), state=state)
