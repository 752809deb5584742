"""Session-wide fixtures shared by every test area (app image tests, the test bed)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `components` is imported as the program imports it
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def docker_engine():
    """A Docker engine for the whole test session (started here, stopped at the end).

    With DJSCALE_DOCKER_HOST set, that running engine is used and left alone.
    """
    from tests.support.dockerd import engine_from_environment

    engine = engine_from_environment()
    engine.start()
    try:
        yield engine
    finally:
        engine.stop()
