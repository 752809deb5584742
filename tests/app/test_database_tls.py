"""The app against a PostgreSQL that takes TLS only, as djscale's database host does, with the
settings djscale writes (DATABASE_SSLMODE=verify-full, DATABASE_SSLROOTCERT = the server's
certificate) and the role's password set as djscale sends it: its SCRAM-SHA-256 verifier.

The database host's own scripts (certificate, pg_hba, the role's setup) are proven on a real
cluster in tests/render/test_postgres.py; this is the app's side of the same contract."""
from __future__ import annotations

import pytest

from components.render.appenv import DB_SSLMODE
from components.render.scram import scram_sha256_verifier
from tests.support.postgres import postgres_fixture

from .helpers import E, app_env, manage, probe_settings

tls_postgres = postgres_fixture(scope="module", name="tls_postgres", db_name="tlsapp",
                                db_user="tls_app", tls=True)

CONNECTION = ("from django.db import connection; c = connection.cursor(); "
              "c.execute('SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()'); "
              "print(*c.fetchone())")
PASSWORD = "Pw4" + "q" * 29  # 32 characters, like djscale's RandomPassword


@pytest.fixture(scope="module")
def env(tls_postgres, s3):
    """The role's password replaced by its verifier, as djscale's db-setup sets it."""
    db = tls_postgres.database
    verifier = scram_sha256_verifier(PASSWORD, db.user)
    tls_postgres.psql(f"ALTER ROLE {db.user} PASSWORD '{verifier}';")
    assert tls_postgres.psql(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{db.user}'"
                             ).strip() == verifier
    return app_env(db, s3, **{E.DB_PASSWORD: PASSWORD, E.DB_SSLMODE: DB_SSLMODE,
                              E.DB_SSLROOTCERT: str(tls_postgres.ca_cert)})


def test_the_app_logs_in_with_the_password_over_verified_tls(env):
    """The verifier admits the password; pg_stat_ssl shows the app's connection is TLS."""
    result = manage(env, "shell", "-c", CONNECTION)
    ssl, version = result.stdout.split()[-2:]
    assert ssl == "True" and version.startswith("TLSv1."), result.stdout


OPTIONS = ("import json, django; django.setup(); from django.conf import settings as s; "
           "print(json.dumps(s.DATABASES['default']['OPTIONS']))")


def test_the_settings_pass_sslmode_and_the_certificate_to_libpq(env, tls_postgres):
    result = manage(env, "shell", "-c", OPTIONS)
    assert result.stdout.strip().splitlines()[-1] == (
        '{"connect_timeout": 5, "sslmode": "verify-full", "sslrootcert": "%s"}'
        % tls_postgres.ca_cert)


def test_without_tls_settings_libpq_keeps_its_default(env):
    """The app outside djscale: unset means libpq's own default (sslmode=prefer)."""
    unset = {k: v for k, v in env.items() if k not in (E.DB_SSLMODE, E.DB_SSLROOTCERT)}
    result = manage(unset, "shell", "-c", OPTIONS)
    assert result.stdout.strip().splitlines()[-1] == '{"connect_timeout": 5}'


def test_without_tls_the_database_refuses_the_app(env):
    result = manage({**env, E.DB_SSLMODE: "disable"}, "shell", "-c", CONNECTION, check=False)
    assert result.returncode != 0
    assert "pg_hba.conf rejects connection" in result.stderr and "no encryption" in \
        result.stderr


def test_a_certificate_the_app_was_not_given_is_refused(env, tmp_path):
    """verify-full: a server whose certificate is not the one configured is not trusted,
    even when the name matches (here: the app told to trust another certificate)."""
    import subprocess

    other = tmp_path / "other.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(tmp_path / "k"),
                    "-out", str(other), "-days", "2", "-subj", "/CN=other",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    result = manage({**env, E.DB_SSLROOTCERT: str(other)}, "shell", "-c", CONNECTION,
                    check=False)
    assert result.returncode != 0 and "certificate verify failed" in result.stderr


def test_a_wrong_password_is_refused(env):
    result = manage({**env, E.DB_PASSWORD: PASSWORD + "x"}, "shell", "-c", CONNECTION,
                    check=False)
    assert result.returncode != 0 and "password authentication failed" in result.stderr


@pytest.mark.parametrize("name,value", [(E.DB_SSLMODE, "verify"),
                                        (E.DB_SSLROOTCERT, "/nonexistent/db-ca.pem")])
def test_bad_tls_settings_stop_boot(env, name, value):
    proc = probe_settings({**env, name: value})
    assert proc.returncode != 0 and name in proc.stderr

