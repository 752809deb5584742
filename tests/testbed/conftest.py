"""Fixtures of the live test bed (marker `testbed`).

`bed`: the bed, parametrized over the Debian suites of its hosts (DJSCALE_TESTBED_SUITES,
default "bookworm trixie"): pytest runs every proof on a bookworm bed, then brings that bed
down and runs them again on a trixie bed (test ids end in `[bookworm]` / `[trixie]`). Each
bed is torn down when its suite is done, even when tests fail (DJSCALE_TESTBED_KEEP=1 keeps
the last one for inspection; `python -m tests.testbed down` removes it;
DJSCALE_TESTBED_REUSE=1 uses the bed that `python -m tests.testbed up` brought up, proves its
suite only, and leaves it up).
`deployed`: the program deployed onto it once per bed (the real __main__.py, stand-in
engine); its stack outputs. A failed deploy fails every test of that bed that needs it with
the same error, without deploying again.
"""
from __future__ import annotations

import os
import re
import time

import pytest

from . import layout
from .probes import Bed

_PROOF_FILE = re.compile(r"^test_\d\d_")  # test_10_bed.py, test_95_firewall_lockout.py, ...


def pytest_collection_modifyitems(config, items):
    """Mark every numbered proof in this directory `testbed` (a proof left unmarked would
    bring the bed up, or tear down one that is up, in a `-m "not testbed"` run). Proofs
    marked `first_suite` test what does not depend on the hosts' Debian release (nginx's
    behaviour in its container, the rollout's order, the engine): they run on the first
    suite's bed only and are deselected (not skipped) for the others, which keeps CI's time
    for what differs between releases (packages, ufw, PostgreSQL, Docker, systemd)."""
    first = _suites()[0]
    kept, dropped = [], []
    for item in items:
        if "tests/testbed/test_" in str(item.fspath).replace(os.sep, "/") and \
                _PROOF_FILE.match(os.path.basename(str(item.fspath))):
            item.add_marker(pytest.mark.testbed)
        callspec = getattr(item, "callspec", None)
        suite = callspec.params.get("bed") if callspec else None
        if suite and suite != first and item.get_closest_marker("first_suite"):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _reuse() -> bool:
    return os.environ.get("DJSCALE_TESTBED_REUSE") == "1"


def _suites() -> list[str]:
    """The suites to prove: the one of the bed that is up when reusing it."""
    state = layout.BedState.load() if _reuse() else None
    return [state.suite] if state is not None else layout.suites_to_prove()


@pytest.fixture(scope="session", params=_suites())
def bed(request, docker_engine):
    from . import bed as lifecycle

    suite = request.param
    # Three app servers on the first suite (scale-in removes the middle one), two on the
    # others: the proofs that need no third server, at a third less deploy time.
    default_apps = "3" if suite == _suites()[0] else "2"
    apps = int(os.environ.get("DJSCALE_TESTBED_APPS", default_apps))
    if _reuse():  # development: the bed that is up
        state = layout.BedState.load()
        assert state is not None, "DJSCALE_TESTBED_REUSE=1 but no bed is up"
        yield Bed(engine=docker_engine, state=state)
        return
    try:
        state = lifecycle.up(app_count=apps, engine=docker_engine, suite=suite)
        yield Bed(engine=docker_engine, state=state)
    finally:
        if os.environ.get("DJSCALE_TESTBED_KEEP") != "1":
            lifecycle.down(docker_engine)  # raises if anything of the bed is left
            lifecycle.down(docker_engine)  # and is idempotent


_deploy_results: dict[str, dict] = {}  # suite -> outputs, actions, seconds (or error)


@pytest.fixture(scope="session")
def deployed(bed):
    from .deploy import deploy_bed

    _deploy_result = _deploy_results.setdefault(bed.state.suite, {})
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
