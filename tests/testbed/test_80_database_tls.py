"""The database over the network (issue 9, items 5, 6 and 9), from real sockets on the bed:
from an app host, a connection without TLS is refused by pg_hba; the app's own connections
are TLS (pg_stat_ssl), verified against the certificate the database host made; the role
has no attribute beyond LOGIN; the password is in no PostgreSQL log, even after a forced
error of the step that sets it; max_connections is the configured budget; the release left
no environment file behind.

Connections "from an app host" run in its app container (python3 + psycopg, the app's own
client library): the bed's app hosts have no psql, and the container's traffic leaves
through the host's address, which is what pg_hba judges."""
from __future__ import annotations

import shlex

from . import layout
from .deploy import ENGINE_STATE_DIR
from .engine import state as engine_state
from tests.support.pulumi_runtime import plain

DB = layout.DB_ADDRESS
CONNECT = """
import sys, psycopg
options = dict(host={host!r}, port=5432, dbname="django", user="django", connect_timeout=5)
options.update({options})
try:
    with psycopg.connect(password=sys.stdin.read(), **options) as conn:
        row = conn.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
                           ).fetchone()
        print("connected", *row)
except psycopg.OperationalError as error:
    print("refused", str(error).replace("\\n", " "))
"""


def _connect_from(bed, app: str, password: str, **options) -> str:
    """A connection to the database from `app`'s app container, as the app's role."""
    script = CONNECT.format(host=DB, options=options)
    return bed.ssh(app, f"sudo docker exec -i {bed.app_container(app)} "
                   f"python3 -c {shlex.quote(script)}", input_text=password).stdout.strip()


def _as_postgres(bed, sql: str) -> str:
    return bed.sudo("db", f"cd / && sudo -u postgres psql -X -tA -c {shlex.quote(sql)}"
                    ).stdout.strip()


def test_without_tls_the_database_refuses_an_app_host(bed, deployed):
    for app in bed.apps:
        out = _connect_from(bed, app, deployed["dbPassword"], sslmode="disable")
        assert out.startswith("refused"), (app, out)
        assert (f'pg_hba.conf rejects connection for host "{bed.address(app)}", user '
                '"django", database "django", no encryption') in out, (app, out)


def test_with_the_printed_certificate_and_verify_full_an_app_host_gets_tls(bed, deployed):
    cert = deployed["dbCaCert"]
    assert cert.startswith("-----BEGIN CERTIFICATE-----")
    on_db = bed.sudo("db", "cat /etc/djscale/postgres-tls/server.crt").stdout
    assert on_db.strip() == cert.strip()  # (stdout as an output: trailing newline trimmed)
    # the certificate db-tls printed is the one PostgreSQL serves
    for app in bed.apps:
        on_app = bed.sudo(app, "stat -c '%U:%G %a' /etc/djscale/db-ca.pem; "
                          "cat /etc/djscale/db-ca.pem").stdout
        mode, _, served = on_app.partition("\n")
        assert mode == "root:root 644" and served.strip() == cert.strip(), app
        out = _connect_from(bed, app, deployed["dbPassword"], sslmode="verify-full",
                            sslrootcert="/etc/djscale/db-ca.pem")
        assert out.startswith("connected True TLSv1."), (app, out)
    key = bed.sudo("db", "stat -c '%U:%G %a' /etc/djscale/postgres-tls/server.key").stdout
    assert key.strip() == "postgres:postgres 600"


def test_the_apps_own_connections_are_tls(bed, deployed):
    for i in range(10):  # every worker of every server gets a request or two
        assert bed.curl(f"https://{layout.DOMAIN}/mydb/?tls={i}", "-f",
                        "-o", "/dev/null").returncode == 0
    rows = _as_postgres(bed, "SELECT a.client_addr, s.ssl FROM pg_stat_activity a "
                             "JOIN pg_stat_ssl s USING (pid) WHERE a.usename = 'django'")
    seen = {}
    for line in rows.splitlines():
        address, ssl = line.split("|")
        seen.setdefault(address, set()).add(ssl)
    assert set(seen) == {bed.address(app) for app in bed.apps}, rows
    assert all(values == {"t"} for values in seen.values()), rows


def test_the_role_is_minimal_and_the_budget_is_configured(bed, deployed):
    attributes = _as_postgres(bed, "SELECT rolsuper, rolcreatedb, rolcreaterole, "
                                   "rolreplication, rolbypassrls, rolcanlogin FROM pg_roles "
                                   "WHERE rolname = 'django'")
    assert attributes == "f|f|f|f|f|t"
    assert _as_postgres(bed, "SHOW max_connections") == "100"
    assert _as_postgres(bed, "SELECT rolpassword LIKE 'SCRAM-SHA-256$4096:%' FROM pg_authid "
                             "WHERE rolname = 'django'") == "t"


def test_the_release_left_no_environment_behind(bed, deployed):
    first = bed.apps[0]
    assert bed.sudo(first, "test -e /etc/djscale/release.env", check=False).returncode == 1
    # the admin password's value (sent on stdin, never on a command line) in no file left
    # on the host: the Django source in the uploads names the variable, it holds no value
    found = bed.ssh(first, "sudo grep -rlsF -f - /etc /run /tmp /var/tmp /var/lib/djscale "
                           "2>/dev/null || true",
                    input_text=deployed["adminPassword"] + "\n").stdout.split()
    assert found == [], found


def test_the_password_is_in_no_postgresql_log_even_after_a_forced_error(bed, deployed):
    """db-setup run again with the database made read-only: the ALTER ROLE fails. Neither
    the step's output nor any PostgreSQL log holds the password (it never reaches the host:
    the step sends its verifier) or the verifier."""
    (path,) = ENGINE_STATE_DIR.glob("*.engine-state.json")
    (setup,) = [r for r in engine_state.load(path)
                if r["name"] == "db-setup" and not r.get("delete")]
    verifier = plain(setup["inputs"]["stdin"])
    command = plain(setup["inputs"]["create"])
    assert verifier.startswith("SCRAM-SHA-256$") and deployed["dbPassword"] not in verifier
    _as_postgres(bed, "ALTER SYSTEM SET default_transaction_read_only = on")
    _as_postgres(bed, "SELECT pg_reload_conf()")
    try:
        failed = bed.ssh("db", command, check=False, input_text=verifier)
    finally:
        bed.sudo("db", "cd / && sudo -u postgres psql -X -c "
                       "'ALTER SYSTEM RESET default_transaction_read_only' "
                       "-c 'SELECT pg_reload_conf()'")
    assert failed.returncode != 0 and "read-only transaction" in failed.stderr, failed
    logs = bed.sudo("db", "cat /var/log/postgresql/*.log").stdout
    assert "read-only transaction" in logs  # the error is logged, its statement is not
    for text in (failed.stdout, failed.stderr, logs):
        assert deployed["dbPassword"] not in text
        for part in verifier.split("$")[1:]:
            assert part not in text
