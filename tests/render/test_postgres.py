"""PostgreSQL renderers: exact text, plus the role/database script run against a real
PostgreSQL 15 cluster that the test creates in a private directory."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from components.config import DatabaseConfig
from components.render.postgres import (render_configure_postgres_script,
                                        render_db_setup_script, render_db_setup_sql,
                                        render_db_setup_stdin,
                                        render_install_postgres_script, render_pg_hba,
                                        render_postgresql_conf)
from tests.render.conftest import assert_golden, check_shell, make_config, replace
from tests.support.postgres import free_port


def test_postgresql_conf_listens_on_private_address_only(cfg):
    assert render_postgresql_conf(cfg) == """\
# managed by djscale, do not edit
# PostgreSQL settings for djscale, included from the cluster's conf.d/ (read after
# postgresql.conf, so these values win).
# TCP only on the private address: app servers connect there. Local administration uses the
# unix socket with peer authentication, which needs no TCP listener.
listen_addresses = '10.0.0.10'
port = 5432
password_encryption = 'scram-sha-256'
"""


def test_pg_hba_one_host_line_per_app_server_sorted_and_deduplicated(cfg):
    text = render_pg_hba(cfg, ["10.0.0.22", "10.0.0.3", "10.0.0.22", "10.0.0.21"])
    assert text == """\
# managed by djscale, do not edit
# Client authentication for djscale: the postgres superuser over the local socket, and the
# app's role to the app's database from each app server's private address, nothing broader.
# TYPE  DATABASE  USER  ADDRESS  METHOD
local   all   postgres   peer
host   django   django   10.0.0.3/32   scram-sha-256
host   django   django   10.0.0.21/32   scram-sha-256
host   django   django   10.0.0.22/32   scram-sha-256
"""


@pytest.mark.parametrize("addresses", [["10.0.0.0/24"], ["10.0.0.300"]])
def test_pg_hba_refuses_networks_and_garbage(cfg, addresses):
    with pytest.raises(ValueError):
        render_pg_hba(cfg, addresses)


@pytest.mark.parametrize("name", ["all", "replication", "my db", "+group"])
def test_pg_hba_refuses_names_with_a_meaning_in_pg_hba(cfg, name):
    db = replace(cfg.database, name=name)
    with pytest.raises(ValueError):
        render_pg_hba(replace(cfg, database=db), ["10.0.0.21"])


def test_database_from_another_stack_has_no_host_to_render(cfg):
    other = replace(cfg, database=DatabaseConfig(stack="org/db/prod"))
    with pytest.raises(ValueError, match="another stack"):
        render_postgresql_conf(other)


def test_install_script_uses_distribution_default_package(cfg, tmp_path):
    script = render_install_postgres_script(cfg)
    assert_golden("install-postgres.sh", script)
    check_shell(script, tmp_path)


def test_install_script_pins_a_version_when_configured(cfg):
    pinned = replace(cfg, database=replace(cfg.database, postgres_version="16"))
    assert "\npackage=postgresql-16\n" in render_install_postgres_script(pinned)


def test_configure_script(cfg, tmp_path):
    script = render_configure_postgres_script(cfg)
    assert_golden("configure-postgres.sh", script)
    check_shell(script, tmp_path)
    pinned = replace(cfg, database=replace(cfg.database, postgres_version="15"))
    assert "\nversion=15\n" in render_configure_postgres_script(pinned)


def test_db_setup_sql_and_script(cfg, tmp_path):
    assert_golden("db-setup.sql", render_db_setup_sql(cfg))
    script = render_db_setup_script(cfg)
    assert_golden("db-setup.sh", script)
    check_shell(script, tmp_path)


def test_db_setup_sql_quotes_odd_names():
    cfg = make_config()
    odd = replace(cfg, database=replace(cfg.database, name="shop'db", user='we"b'))
    sql = render_db_setup_sql(odd)
    assert ("ALTER ROLE \"we\"\"b\" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
            "NOREPLICATION NOBYPASSRLS PASSWORD :'verifier';") in sql
    assert "WHERE datname = 'shop''db'" in sql


# --- the setup script against a real cluster --------------------------------------------

PG_BIN = Path("/usr/lib/postgresql/15/bin")


@pytest.fixture
def private_cluster():
    """A PostgreSQL 15 cluster owned by postgres in a private directory, TCP on 127.0.0.1."""
    base = Path(tempfile.mkdtemp(prefix="djscale-render-pg-"))
    data, sock = base / "data", base / "sock"
    as_pg = ["runuser", "-u", "postgres", "--"]
    port = str(free_port())  # psql and pg_ctl take it as an argument
    try:
        os.chmod(base, 0o755)
        shutil.chown(base, "postgres", "postgres")
        sock.mkdir()
        shutil.chown(sock, "postgres", "postgres")
        subprocess.run([*as_pg, str(PG_BIN / "initdb"), "-D", str(data), "-A", "peer",
                        "--auth-host=scram-sha-256"], check=True, capture_output=True, cwd="/")
        (data / "pg_hba.conf").write_text(
            "local all postgres peer\nhost django django 127.0.0.1/32 scram-sha-256\n")
        subprocess.run([*as_pg, str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-l",
                        str(base / "log"), "-o",
                        f"-k {sock} -p {port} -c listen_addresses=127.0.0.1", "start"],
                       check=True, capture_output=True, cwd="/")
        yield {"socket": str(sock), "port": port, "log": str(base / "log")}
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*as_pg, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast",
                            "stop"], capture_output=True, cwd="/")
        shutil.rmtree(base, ignore_errors=True)


def _run_setup(script: str, password: str, cluster, role: str = "django",
               stdin: str | None = None) -> subprocess.CompletedProcess:
    """The setup script with what the plan gives it: the password's verifier (or `stdin`)."""
    if stdin is None:
        cfg = make_config()
        cfg = replace(cfg, database=replace(cfg.database, user=role))
        stdin = render_db_setup_stdin(cfg, password) + "\n"
    env = dict(os.environ, PGHOST=cluster["socket"])
    return subprocess.run(["bash", "-c", script], input=stdin, text=True, env=env,
                          capture_output=True)


def _as_postgres(sql: str, cluster) -> str:
    return subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-X", "-At", "-h", cluster["socket"],
         "-p", cluster["port"], "-c", sql],
        capture_output=True, text=True, check=True, cwd="/").stdout.strip()


def _can_login(password: str, cluster) -> bool:
    env = dict(os.environ, PGPASSWORD=password)
    result = subprocess.run(
        ["psql", "-X", "-At", "-h", "127.0.0.1", "-p", cluster["port"], "-U", "django",
         "-d", "django", "-c", "SELECT current_user || '@' || current_database()"],
        env=env, capture_output=True, text=True)
    return result.returncode == 0 and result.stdout.strip() == "django@django"


def test_db_setup_script_creates_role_and_database_and_rotates_password(private_cluster):
    cfg = make_config()
    cfg = replace(cfg, database=replace(cfg.database, port=int(private_cluster["port"])))
    script = render_db_setup_script(cfg)
    first = "s3cr3t 'with' \"quotes\" $HOME `x` \\n"

    result = _run_setup(script, first, private_cluster)
    assert result.returncode == 0, result.stderr
    assert first not in result.stdout + result.stderr
    assert _can_login(first, private_cluster)  # the verifier admits the password
    stored = _as_postgres("SELECT rolpassword FROM pg_authid WHERE rolname = 'django'",
                          private_cluster)
    assert stored == render_db_setup_stdin(cfg, first)  # stored as djscale computed it

    again = _run_setup(script, first, private_cluster)  # idempotent
    assert again.returncode == 0, again.stderr
    assert _can_login(first, private_cluster)

    rotated = _run_setup(script, "second-password", private_cluster)
    assert rotated.returncode == 0, rotated.stderr
    assert _can_login("second-password", private_cluster)
    assert not _can_login(first, private_cluster)

    owner = _as_postgres("SELECT pg_get_userbyid(datdba) FROM pg_database "
                         "WHERE datname = 'django'", private_cluster)
    assert owner == "django"


def test_db_setup_gives_the_role_no_attribute_beyond_login_and_puts_them_back(
        private_cluster):
    cfg = make_config()
    cfg = replace(cfg, database=replace(cfg.database, port=int(private_cluster["port"])))
    script = render_db_setup_script(cfg)
    attributes = ("SELECT concat_ws(' ', rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, "
                  "rolreplication, rolbypassrls) FROM pg_roles WHERE rolname = 'django'")
    assert _run_setup(script, "first-password", private_cluster).returncode == 0
    assert _as_postgres(attributes, private_cluster) == "t f f f f f"
    _as_postgres("ALTER ROLE django SUPERUSER CREATEDB CREATEROLE REPLICATION BYPASSRLS",
                 private_cluster)  # changed by hand
    assert _run_setup(script, "first-password", private_cluster).returncode == 0
    assert _as_postgres(attributes, private_cluster) == "t f f f f f"


def test_a_failing_setup_shows_the_password_neither_in_its_output_nor_in_the_server_log(
        private_cluster):
    """Failure injected: the cluster refuses every write (read-only transactions), so the
    ALTER ROLE carrying the password fails. pulumi-command puts a failed step's stdout and
    stderr into the error (commandOutputs.go, run): neither may hold the password; and the
    server's log, which by default records a failed statement's text, holds it neither."""
    cfg = make_config()
    cfg = replace(cfg, database=replace(cfg.database, port=int(private_cluster["port"])))
    script = render_db_setup_script(cfg)
    assert _run_setup(script, "first-password", private_cluster).returncode == 0
    as_pg = ["runuser", "-u", "postgres", "--", "psql", "-X", "-h", private_cluster["socket"],
             "-p", private_cluster["port"], "-c"]
    subprocess.run([*as_pg, "ALTER SYSTEM SET default_transaction_read_only = on"],
                   check=True, capture_output=True, cwd="/")
    subprocess.run([*as_pg, "SELECT pg_reload_conf()"], check=True, capture_output=True,
                   cwd="/")
    secret = "Leak-Me-If-You-Can-7f3a"
    verifier = render_db_setup_stdin(cfg, secret)
    failed = _run_setup(script, secret, private_cluster)
    assert failed.returncode != 0
    assert "read-only transaction" in failed.stderr  # it failed where we wanted it to
    server_log = Path(private_cluster["log"]).read_text()
    assert "read-only transaction" in server_log
    for text in (failed.stdout, failed.stderr, server_log):
        assert secret not in text  # never sent at all
        for part in verifier.split("$")[1:]:  # nor any part of what was sent
            assert part not in text


@pytest.mark.parametrize("stdin", ["", "plain-text-password\n",
                                   "SCRAM-SHA-256$4096:c2FsdA==$a2V5:a2V5 ; DROP ROLE x"])
def test_db_setup_script_takes_nothing_but_a_verifier(private_cluster, stdin):
    """A plaintext password sent by mistake is refused before psql (so PostgreSQL) sees it."""
    script = render_db_setup_script(make_config())
    result = _run_setup(script, "", private_cluster, stdin=stdin)
    assert result.returncode == 1
    assert result.stderr == "djscale: expected the role's SCRAM-SHA-256 verifier on stdin\n"


# --- the configure script against a real cluster made by pg_createcluster -----------------

SYSTEMCTL_STUB = """#!/bin/bash
# stand-in for systemd: postgresql@V-C units through pg_ctlcluster
echo "systemctl $*" >> "$STUB_LOG"
unit=${2#postgresql@}
case $1 in
    start) pg_ctlcluster "${unit%%-*}" "${unit#*-}" status >/dev/null 2>&1 ||
           pg_ctlcluster "${unit%%-*}" "${unit#*-}" start ;;
    restart) pg_ctlcluster "${unit%%-*}" "${unit#*-}" restart ;;
esac
"""


def test_configure_script_installs_validates_and_restores_on_a_real_cluster(tmp_path):
    """A Debian cluster (pg_createcluster) in private mounts over /etc/postgresql,
    /var/lib/postgresql, /var/run/postgresql and /var/log/postgresql, in a network namespace
    that has the DB's private address: the machine's own PostgreSQL is never touched."""
    cfg = make_config()
    staged = tmp_path / "staged"
    staged.mkdir()
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "systemctl").write_text(SYSTEMCTL_STUB)
    (tmp_path / "bin" / "systemctl").chmod(0o755)
    script = tmp_path / "configure.sh"
    script.write_text(render_configure_postgres_script(
        cfg, staged_conf=str(staged / "djscale.conf"), staged_hba=str(staged / "pg_hba.conf")))
    conf = render_postgresql_conf(cfg)
    hba_one = render_pg_hba(cfg, ["10.0.0.21"])
    hba_two = render_pg_hba(cfg, ["10.0.0.21", "10.0.0.22"])
    (tmp_path / "conf").write_text(conf)
    (tmp_path / "hba1").write_text(hba_one)
    (tmp_path / "hba2").write_text(hba_two)
    (tmp_path / "hba-bad").write_text(hba_two + "host django django 10.0.0.23/32 bogus\n")
    (tmp_path / "conf-bad").write_text(conf + "port = many\n")
    live = "/etc/postgresql/15/main"
    driver = f"""
set -u
mount --make-rprivate /
for d in /etc/postgresql /var/lib/postgresql /var/run/postgresql /var/log/postgresql; do
    mount -t tmpfs djscale-test "$d"
done
chown postgres:postgres /var/lib/postgresql /var/run/postgresql /var/log/postgresql
chmod 2775 /var/run/postgresql
ip link set lo up
ip addr add 10.0.0.10/32 dev lo
pg_createcluster 15 main >/dev/null
export PATH={tmp_path}/bin:$PATH STUB_LOG={tmp_path}/systemctl.log
step() {{  # step NAME CONF HBA
    cp {tmp_path}/$2 {staged}/djscale.conf
    cp {tmp_path}/$3 {staged}/pg_hba.conf
    : > "$STUB_LOG"
    bash {script} > {tmp_path}/$1.out 2>&1
    echo "$1 rc=$? $(tr '\\n' ';' < "$STUB_LOG")"
}}
step first conf hba1
stat -c '%U:%G %a %n' {live}/pg_hba.conf {live}/conf.d/djscale.conf
runuser -u postgres -- psql -X -At -c 'SHOW listen_addresses' -c 'SHOW password_encryption'
step again conf hba1
step more_apps conf hba2
# A run that stopped after installing the files, before the restart: the next one finishes.
pg_ctlcluster 15 main restart -- -o "-c listen_addresses=127.0.0.1" >/dev/null
step finish conf hba2
runuser -u postgres -- psql -X -At -c 'SHOW listen_addresses'
runuser -u postgres -- psql -X -At -c "SELECT count(*) FROM pg_hba_file_rules WHERE address = '10.0.0.22'"
step bad_hba conf hba-bad
cmp -s {live}/pg_hba.conf {tmp_path}/hba2 && echo "hba restored"
step bad_setting conf-bad hba2
cmp -s {live}/conf.d/djscale.conf {tmp_path}/conf && echo "settings restored"
runuser -u postgres -- psql -X -At -c 'SELECT 1'
pg_ctlcluster 15 main stop
"""
    netns = f"djscale-pg-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        result = subprocess.run(["ip", "netns", "exec", netns, "unshare", "-m", "bash", "-c",
                                 driver], capture_output=True, text=True, timeout=180)
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=True)
    assert result.stdout.splitlines() == [
        "first rc=0 systemctl start postgresql@15-main;systemctl restart postgresql@15-main;",
        f"postgres:postgres 640 {live}/pg_hba.conf",
        f"postgres:postgres 644 {live}/conf.d/djscale.conf",
        "10.0.0.10",
        "scram-sha-256",
        "again rc=0 systemctl start postgresql@15-main;",
        "more_apps rc=0 systemctl start postgresql@15-main;",  # pg_hba only: a reload
        "finish rc=0 systemctl start postgresql@15-main;systemctl restart postgresql@15-main;",
        "10.0.0.10",
        "1",
        "bad_hba rc=1 systemctl start postgresql@15-main;",
        "hba restored",
        "bad_setting rc=1 systemctl start postgresql@15-main;",
        "settings restored",
        "1",
    ], result.stderr
    assert (tmp_path / "more_apps.out").read_text() == \
        "djscale: configuration changed, reloading postgresql@15-main\n"
    assert (tmp_path / "again.out").read_text() == "djscale: PostgreSQL configuration unchanged\n"
    assert "invalid authentication method" in (tmp_path / "bad_hba.out").read_text()
    assert 'invalid value for parameter "port": "many"' in \
        (tmp_path / "bad_setting.out").read_text()
