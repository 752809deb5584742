"""The release script: exact text, and its steps (migrate, collectstatic, superuser) against
real PostgreSQL and S3.

`render_release_script` runs these steps with `sh -c` in a one-off app container; here the
same text runs with `sh -c` in assets/app on this machine (the image's WORKDIR), with the
app's environment pointing at a throwaway PostgreSQL cluster and a moto S3 server. A second
release must succeed without touching the existing superuser; a release without its
database must fail, not pass silently.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys

import pytest

from components.render.release import RELEASE_STEPS, render_release_script
from tests.app.helpers import APP_DIR, SUPERUSER, app_env, manage
from tests.support.postgres import postgres_fixture
from tests.render.conftest import assert_golden, check_shell
from tests.support.s3 import s3_fixture

release_postgres = postgres_fixture(scope="module", name="release_postgres",
                                    db_name="release", db_user="release_app")
release_s3 = s3_fixture(scope="module", name="release_s3", bucket="release-static")


def test_release_script_runs_the_steps_in_one_container_of_the_image(tmp_path):
    script = render_release_script("sha256:abc")
    assert_golden("release.sh", script)
    check_shell(script, tmp_path)
    assert script.endswith(
        "docker run --rm --env-file <(printf '%s\\n' \"$release_env\") "
        "--volume /etc/djscale/db-ca.pem:/etc/djscale/db-ca.pem:ro sha256:abc sh -c "
        + shlex.quote(RELEASE_STEPS) + "\n")
    assert "legacy_env_file=/etc/djscale/release.env\n" in script
    assert RELEASE_STEPS.index("migrate --noinput") < RELEASE_STEPS.index(
        "collectstatic --noinput") < RELEASE_STEPS.index("createsuperuser --noinput")
    assert "makemigrations" not in RELEASE_STEPS
    assert "|| true" not in RELEASE_STEPS  # failures are not hidden


def test_release_script_quotes_its_values():
    script = render_release_script("img; rm -rf /", db_ca_file="/etc/dj scale/db-ca.pem")
    assert "--volume '/etc/dj scale/db-ca.pem:/etc/djscale/db-ca.pem:ro' 'img; rm -rf /' sh -c" \
        in script


@pytest.mark.parametrize("stdin", ["", "DJANGO_SECRET_KEY=x\n"])
def test_release_script_needs_its_environment_on_stdin(tmp_path, stdin):
    """Nothing, or an environment without the superuser's credentials: refused before
    docker is asked for anything."""
    from tests.render.stubs import calls, make_stubs

    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    make_stubs(bin_dir, {"docker": "exit 0"})
    script = render_release_script("sha256:abc", legacy_env_file=str(tmp_path / "old.env"))
    result = subprocess.run(["bash", "-c", script], input=stdin, text=True,
                            capture_output=True,
                            env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
                                 "STUB_LOG": str(log)})
    assert result.returncode == 1
    assert result.stderr == "djscale: expected the release's environment on stdin\n"
    assert calls(log) == []


@pytest.fixture(scope="module")
def env(release_postgres, release_s3, tmp_path_factory):
    bin_dir = tmp_path_factory.mktemp("bin")
    (bin_dir / "python").symlink_to(sys.executable)  # the image's venv `python`
    env = app_env(release_postgres.database, release_s3)
    env["PATH"] = f"{bin_dir}:{os.environ['PATH']}"
    return env


def _release(env) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", RELEASE_STEPS], cwd=APP_DIR, env=env, text=True,
                          capture_output=True, timeout=600)


def test_release_migrates_collects_and_creates_the_superuser_once(env, release_s3):
    first = _release(env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Superuser created successfully." in first.stdout
    objects = release_s3.client().list_objects_v2(Bucket=release_s3.bucket)
    assert objects.get("KeyCount", 0) > 0  # collectstatic uploaded the static files

    check = manage(env, "shell", "-c",
                   "from django.contrib.auth import get_user_model as m; "
                   "u = m().objects.get(username='%s'); print(u.is_superuser, "
                   "u.check_password('%s'))" % (SUPERUSER[0], SUPERUSER[2]))
    assert check.stdout.strip().splitlines()[-1] == "True True"

    second = _release(env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "djscale: superuser exists" in second.stdout
    assert "No migrations to apply." in second.stdout
    assert "Superuser created" not in second.stdout


def test_release_fails_when_the_database_is_unreachable(env, release_postgres):
    release_postgres.stop()
    try:
        result = _release(env)
    finally:
        release_postgres.start()
    assert result.returncode != 0
    assert "Superuser created" not in result.stdout
