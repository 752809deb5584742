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

from components.render.release import (PINNED_RELEASE_STEPS, RELEASE_STEPS,
                                       render_release_script)
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


def test_a_pinned_release_migrates_nothing_and_refuses_a_database_behind_it(env, release_s3):
    """A rollback's release step: on a database its migrations reached (or passed: Django
    ignores applied migrations the image does not know), static files collected, nothing
    migrated; on a database without one of its migrations, it fails before anything."""
    assert _release(env).returncode == 0  # the release it rolls back to ran once
    newer = manage(env, "shell", "-c", (
        "from django.db.migrations.recorder import MigrationRecorder as R; from django.db "
        "import connection; R(connection).record_applied('mydb', '0099_from_a_newer_release')"))
    assert newer.returncode == 0, newer.stderr
    rollback = subprocess.run(["sh", "-c", PINNED_RELEASE_STEPS], cwd=APP_DIR, env=env,
                              text=True, capture_output=True, timeout=600)
    assert rollback.returncode == 0, rollback.stdout + rollback.stderr
    assert "static files copied" in rollback.stdout and "Applying" not in rollback.stdout
    assert "createsuperuser" not in PINNED_RELEASE_STEPS
    assert "migrate --noinput" not in PINNED_RELEASE_STEPS

    behind = manage(env, "migrate", "mydb", "0001")  # the image's 0002 is missing now
    assert behind.returncode == 0, behind.stderr
    try:
        refused = subprocess.run(["sh", "-c", PINNED_RELEASE_STEPS], cwd=APP_DIR, env=env,
                                 text=True, capture_output=True, timeout=600)
        assert refused.returncode != 0
        assert "static files copied" not in refused.stdout  # stopped at the check
    finally:
        assert manage(env, "migrate", "mydb").returncode == 0
    script = render_release_script("sha256:abc", steps=PINNED_RELEASE_STEPS)
    assert script.endswith(" sha256:abc sh -c " + shlex.quote(PINNED_RELEASE_STEPS) + "\n")


def test_release_fails_when_the_database_is_unreachable(env, release_postgres):
    release_postgres.stop()
    try:
        result = _release(env)
    finally:
        release_postgres.start()
    assert result.returncode != 0
    assert "Superuser created" not in result.stdout


# --- a project whose user model logs in by email ----------------------------------------------

def test_release_of_an_email_login_project_creates_its_superuser_once(release_postgres,
                                                                       release_s3, env):
    """tests/fixtures/own_project: USERNAME_FIELD = "email", no username field at all. Its
    release environment is what djscale renders for its stack (the project's own names, its
    constants), pointed at this PostgreSQL and S3: the first release creates the superuser
    with the configured email as its login, the second finds it (by email, without case) and
    creates nothing; the superuser logs in by email."""
    from dataclasses import replace

    from components.render.appenv import parse_env_file, render_app_env
    from tests.render.test_appenv import OWN_PROJECT, own_project_config

    database = release_postgres.create_database("own_project", "own_app")
    cfg = own_project_config()
    cfg = replace(
        cfg,
        app=replace(cfg.app, env=(("DATABASE_ENGINE", "postgresql"),
                                  ("DATABASE_OPTIONS", "{}")),  # this server has no TLS
                    superuser=replace(cfg.app.superuser, email="Admin@Own.Example.com")),
        static_storage=replace(cfg.static_storage, bucket=release_s3.bucket,
                               endpoint_url=release_s3.endpoint_url,
                               access_key_id=release_s3.access_key_id))
    text = render_app_env(cfg, db_host=database.host, db_port=database.port,
                          db_name=database.name, db_user=database.user,
                          db_password=database.password, secret_key="k" * 50,
                          s3_secret_key=release_s3.secret_access_key,
                          app_secrets={"API_TOKEN": "token"}, superuser_password="pw-Long-1x")
    release_env = {"PATH": env["PATH"], "HOME": env.get("HOME", "/root"),
                   "PYTHONDONTWRITEBYTECODE": "1", "AWS_DEFAULT_REGION": "us-east-1",
                   **dict(line.split("=", 1) for line in parse_env_file(text))}

    def release() -> subprocess.CompletedProcess:
        return subprocess.run(["sh", "-c", RELEASE_STEPS], cwd=OWN_PROJECT, env=release_env,
                              text=True, capture_output=True, timeout=600)

    first = release()
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Superuser created successfully." in first.stdout
    second = release()
    assert second.returncode == 0, second.stdout + second.stderr
    assert "djscale: superuser exists" in second.stdout
    assert "Superuser created" not in second.stdout
    login = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); "
         "from django.contrib.auth import authenticate, get_user_model; "
         "u = authenticate(email='Admin@own.example.com', password='pw-Long-1x'); "
         "print(u is not None and u.is_superuser, get_user_model().objects.count())"],
        cwd=OWN_PROJECT, env={**release_env, "DJANGO_SETTINGS_MODULE": "mysite.settings"},
        text=True, capture_output=True, timeout=60)
    assert login.stdout.split()[-2:] == ["True", "1"], login.stderr


def test_a_login_field_djscale_sets_no_variable_for_fails_the_release_saying_so(tmp_path):
    """A user model that logs in by a field other than username or email: the check names
    the variable to set (app.env) instead of letting createsuperuser fail vaguely."""
    project = tmp_path / "phone"
    (project / "site_").mkdir(parents=True)
    (project / "people").mkdir()
    (project / "site_" / "__init__.py").write_text("")
    (project / "people" / "__init__.py").write_text("")
    (project / "site_" / "settings.py").write_text(
        "SECRET_KEY = 'x'\nINSTALLED_APPS = ['django.contrib.auth', "
        "'django.contrib.contenttypes', 'django.contrib.staticfiles', 'people']\n"
        "AUTH_USER_MODEL = 'people.Person'\n"
        f"DATABASES = {{'default': {{'ENGINE': 'django.db.backends.sqlite3', "
        f"'NAME': {str(tmp_path / 'db.sqlite3')!r}}}}}\n"
        "STATIC_ROOT = " + repr(str(tmp_path / "static")) + "\nSTATIC_URL = 'static/'\n"
        "USE_TZ = True\n")
    (project / "people" / "models.py").write_text(
        "from django.contrib.auth.models import AbstractBaseUser\nfrom django.db import models\n"
        "class Person(AbstractBaseUser):\n    phone = models.CharField(max_length=20, unique=True)\n"
        "    USERNAME_FIELD = 'phone'\n")
    (project / "manage.py").write_text(
        "import os, sys\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'site_.settings')\n"
        "from django.core.management import execute_from_command_line\n"
        "execute_from_command_line(sys.argv)\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    steps = RELEASE_STEPS.replace("python manage.py migrate --noinput",
                                  "python manage.py migrate --run-syncdb --noinput")
    result = subprocess.run(
        ["sh", "-c", steps], cwd=project, text=True, capture_output=True, timeout=300,
        env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONDONTWRITEBYTECODE": "1",
             "DJANGO_SUPERUSER_USERNAME": "admin", "DJANGO_SUPERUSER_EMAIL": "a@b.example",
             "DJANGO_SUPERUSER_PASSWORD": "pw-Long-1x"})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "djscale: people.Person logs in by 'phone', so createsuperuser reads "
        "DJANGO_SUPERUSER_PHONE: djscale writes DJANGO_SUPERUSER_USERNAME and _EMAIL only; "
        "set DJANGO_SUPERUSER_PHONE in app.env")
    assert "must use --phone" not in result.stderr  # createsuperuser was not run
