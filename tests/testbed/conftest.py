"""Fixtures of the live test bed (marker `testbed`).

`bed`: the bed, up once per session, torn down at the end even when tests fail
(DJSCALE_TESTBED_KEEP=1 keeps it for inspection; `python -m tests.testbed down` removes it;
DJSCALE_TESTBED_REUSE=1 uses the bed that `python -m tests.testbed up` brought up, and
leaves it up).
`deployed`: the program deployed onto it once (the real __main__.py, stand-in engine);
its stack outputs. A failed deploy fails every test that needs it with the same error,
without deploying again.
"""
from __future__ import annotations

import os
import re
import time

import pytest

from .probes import Bed

_PROOF_FILE = re.compile(r"^test_\d\d_")  # test_10_bed.py, test_95_firewall_lockout.py, ...


def pytest_collection_modifyitems(items):
    """Mark every numbered proof in this directory `testbed` (a proof left unmarked would
    bring the bed up, or tear down one that is up, in a `-m "not testbed"` run)."""
    for item in items:
        if "tests/testbed/test_" in str(item.fspath).replace(os.sep, "/") and \
                _PROOF_FILE.match(os.path.basename(str(item.fspath))):
            item.add_marker(pytest.mark.testbed)


@pytest.fixture(scope="session")
def bed(docker_engine):
    from . import bed as lifecycle

    apps = int(os.environ.get("DJSCALE_TESTBED_APPS", "2"))
    if os.environ.get("DJSCALE_TESTBED_REUSE") == "1":  # development: the bed that is up
        from . import layout

        state = layout.BedState.load()
        assert state is not None, "DJSCALE_TESTBED_REUSE=1 but no bed is up"
        yield Bed(engine=docker_engine, state=state)
        return
    try:
        state = lifecycle.up(app_count=apps, engine=docker_engine)
        yield Bed(engine=docker_engine, state=state)
    finally:
        if os.environ.get("DJSCALE_TESTBED_KEEP") != "1":
            lifecycle.down(docker_engine)  # raises if anything of the bed is left
            lifecycle.down(docker_engine)  # and is idempotent


_deploy_result: dict = {}


@pytest.fixture(scope="session")
def deployed(bed):
    from .deploy import deploy_bed

    if "error" in _deploy_result:
        raise _deploy_result["error"]
    if "outputs" not in _deploy_result:
        started = time.monotonic()
        try:
            outputs, actions = deploy_bed(with_actions=True)
        except Exception as exc:
            _deploy_result["error"] = exc
            raise
        _deploy_result.update(outputs=outputs, actions=actions,
                              seconds=round(time.monotonic() - started, 1))
        bed.fetch_pebble_root()
    return _deploy_result["outputs"]
