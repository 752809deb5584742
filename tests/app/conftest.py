"""Fixtures for the app tests: one real PostgreSQL and one real S3 server per session."""
from __future__ import annotations

import pytest

from tests.support.postgres import free_port, postgres_fixture
from tests.support.s3 import s3_fixture

from .helpers import Gunicorn, app_env, manage

postgres = postgres_fixture()
s3 = s3_fixture()


@pytest.fixture(scope="session")
def prod_env(postgres, s3) -> dict[str, str]:
    """The production environment (DEBUG off) against the session's PostgreSQL and S3."""
    return app_env(postgres.database, s3)


@pytest.fixture(scope="session")
def migrated(prod_env) -> dict[str, str]:
    """The database after the deploy steps: migrate, then createsuperuser --noinput."""
    results = {
        "migrate": manage(prod_env, "migrate", "--noinput"),
        "createsuperuser": manage(prod_env, "createsuperuser", "--noinput"),
    }
    return results


@pytest.fixture(scope="session")
def collected(prod_env):
    """collectstatic --noinput into the S3 bucket (a deploy step)."""
    return manage(prod_env, "collectstatic", "--noinput")


@pytest.fixture(scope="module")
def gunicorn(prod_env, migrated, tmp_path_factory):
    server = Gunicorn(prod_env, free_port(), tmp_path_factory.mktemp("gunicorn") / "log")
    server.start()
    yield server
    server.stop()
