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
                                        render_db_setup_stdin, render_db_tls_script,
                                        render_install_postgres_script, render_pg_hba,
                                        render_postgresql_conf)
from tests.render.conftest import assert_golden, check_shell, make_config, replace
from tests.render.stubs import calls, make_stubs, run_sandboxed
from tests.support.postgres import free_port


def test_postgresql_conf_listens_on_private_address_only_with_tls(cfg):
    assert render_postgresql_conf(cfg) == """\
# managed by djscale, do not edit
# PostgreSQL settings for djscale, included from the cluster's conf.d/ (read after
# postgresql.conf, so these values win).
# TCP only on the private address: app servers connect there. Local administration uses the
# unix socket with peer authentication, which needs no TCP listener.
listen_addresses = '10.0.0.10'
port = 5432
password_encryption = 'scram-sha-256'
# database.maxConnections: djscale checked that every app server's workers fit (each keeps
# one connection open) with the release's, beside the 3 kept for superusers. Takes effect on
# a restart, which db-configure does when the running value differs.
max_connections = 100
# TLS with the key and certificate djscale made on this host; pg_hba.conf admits clients
# from the network over TLS only, and they verify this certificate (sslmode=verify-full).
ssl = on
ssl_cert_file = '/etc/djscale/postgres-tls/server.crt'
ssl_key_file = '/etc/djscale/postgres-tls/server.key'
ssl_min_protocol_version = 'TLSv1.2'
"""


def test_pg_hba_admits_each_app_server_over_tls_only_sorted_and_deduplicated(cfg):
    text = render_pg_hba(cfg, ["10.0.0.22", "10.0.0.3", "10.0.0.22", "10.0.0.21"])
    assert text == """\
# managed by djscale, do not edit
# Client authentication for djscale: the postgres superuser over the local socket, and the
# app's role to the app's database from each app server's private address over TLS, nothing
# broader. The first matching line decides: no connection from the network without TLS.
# TYPE  DATABASE  USER  ADDRESS  METHOD
local   all   postgres   peer
hostnossl   all   all   0.0.0.0/0   reject
hostnossl   all   all   ::/0   reject
hostssl   django   django   10.0.0.3/32   scram-sha-256
hostssl   django   django   10.0.0.21/32   scram-sha-256
hostssl   django   django   10.0.0.22/32   scram-sha-256
"""
    words = [line.split()[0] for line in text.splitlines() if not line.startswith("#")]
    assert "host" not in words  # `host` would admit a client without TLS too


def test_tls_script(cfg, tmp_path):
    script = render_db_tls_script(cfg)
    assert_golden("db-tls.sh", script)
    check_shell(script, tmp_path)
    assert "\naddress=10.0.0.10\n" in script


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


def _run_install(cfg, tmp_path, *, candidate: str):
    """The install script with apt, dpkg and systemd stubbed: nothing is installed yet, the
    distribution's `postgresql` depends on postgresql-15 (Debian 12), and `candidate` is what
    apt-cache policy says of the pinned package."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    make_stubs(bin_dir, {
        "dpkg-query": "exit 1",
        "apt-get": "exit 0",
        "systemctl": "exit 0",
        "apt-cache": f"""case "$1" in
    policy) printf '%s:\\n  Installed: (none)\\n  Candidate: {candidate}\\n' "$2" ;;
    depends) printf 'postgresql\\n  Depends: postgresql-15\\n' ;;
esac""",
    })
    return run_sandboxed(render_install_postgres_script(cfg), bin_dir, log), calls(log)


def test_a_version_the_distribution_does_not_ship_fails_naming_the_key(cfg, tmp_path):
    pinned = replace(cfg, database=replace(cfg.database, postgres_version="16"))
    result, log = _run_install(pinned, tmp_path, candidate="(none)")
    assert result.returncode == 1
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("djscale: database.postgresVersion is 16, but ")
    assert "ships PostgreSQL 15, not 16 (no package postgresql-16); set " \
           "database.postgresVersion to 15 or null (the distribution's own)" in message
    assert not any(line.startswith("apt-get ") and " install " in line for line in log)


def test_a_version_the_distribution_ships_is_installed(cfg, tmp_path):
    pinned = replace(cfg, database=replace(cfg.database, postgres_version="15"))
    result, log = _run_install(pinned, tmp_path, candidate="15+248")
    assert result.returncode == 0, result.stderr
    assert any(line.endswith("install -y --no-install-recommends postgresql-15")
               for line in log)


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


# --- the scripts against a real cluster made by pg_createcluster, on a host of its own ------

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

DB_ADDRESS, CLIENT_ADDRESS = "10.0.0.10", "10.0.0.21"


class DbHost:
    """A database host made of namespaces: a network namespace with the DB's private address
    on a veth whose peer, in a second namespace (`client_ns`), is an app server at
    10.0.0.21; private tmpfs mounts over /etc/postgresql, /var/lib/postgresql,
    /var/run/postgresql and /var/log/postgresql holding a Debian cluster "15/main"
    (pg_createcluster); systemd is a stub. The machine's own PostgreSQL is never touched.
    `tls_dir` is where the TLS script keeps the key (a directory postgres can reach)."""

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.tag = uuid.uuid4().hex[:8]
        self.db_ns, self.client_ns = f"djscale-pg-{self.tag}", f"djscale-pgc-{self.tag}"
        self.base = Path(tempfile.mkdtemp(prefix="djscale-pg-tls-"))
        os.chmod(self.base, 0o755)
        self.tls_dir = str(self.base / "tls")
        (tmp_path / "bin").mkdir()
        (tmp_path / "bin" / "systemctl").write_text(SYSTEMCTL_STUB)
        (tmp_path / "bin" / "systemctl").chmod(0o755)

    def script(self, name: str, text: str) -> Path:
        path = self.tmp / name
        path.write_text(text)
        return path

    def __enter__(self) -> "DbHost":
        db_end, client_end = f"djsd{self.tag}", f"djsc{self.tag}"
        for command in (
                ["ip", "netns", "add", self.db_ns], ["ip", "netns", "add", self.client_ns],
                ["ip", "link", "add", db_end, "type", "veth", "peer", "name", client_end],
                ["ip", "link", "set", db_end, "netns", self.db_ns],
                ["ip", "link", "set", client_end, "netns", self.client_ns],
                ["ip", "-n", self.db_ns, "addr", "add", f"{DB_ADDRESS}/24", "dev", db_end],
                ["ip", "-n", self.client_ns, "addr", "add", f"{CLIENT_ADDRESS}/24", "dev",
                 client_end]):
            subprocess.run(command, check=True, capture_output=True)
        for ns, end in ((self.db_ns, db_end), (self.client_ns, client_end)):
            for link in ("lo", end):
                subprocess.run(["ip", "-n", ns, "link", "set", link, "up"], check=True)
        return self

    def __exit__(self, *exc) -> None:
        for ns in (self.db_ns, self.client_ns):  # the veth goes with them
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)

    def run(self, body: str) -> subprocess.CompletedProcess:
        driver = f"""
set -u
mount --make-rprivate /
for d in /etc/postgresql /var/lib/postgresql /var/run/postgresql /var/log/postgresql; do
    mount -t tmpfs djscale-test "$d"
done
chown postgres:postgres /var/lib/postgresql /var/run/postgresql /var/log/postgresql
chmod 2775 /var/run/postgresql
pg_createcluster 15 main >/dev/null
export PATH={self.tmp}/bin:$PATH STUB_LOG={self.tmp}/systemctl.log
{body}
pg_ctlcluster 15 main stop
"""
        return subprocess.run(["ip", "netns", "exec", self.db_ns, "unshare", "-m", "bash",
                               "-c", driver], capture_output=True, text=True, timeout=180)


def test_configure_script_installs_validates_and_restores_on_a_real_cluster(tmp_path):
    cfg = make_config()
    staged = tmp_path / "staged"
    staged.mkdir()
    with DbHost(tmp_path) as host:
        tls = host.script("tls.sh", render_db_tls_script(cfg, tls_dir=host.tls_dir))
        script = host.script("configure.sh", render_configure_postgres_script(
            cfg, staged_conf=str(staged / "djscale.conf"),
            staged_hba=str(staged / "pg_hba.conf")))
        conf = render_postgresql_conf(cfg, tls_dir=host.tls_dir)
        hba_two = render_pg_hba(cfg, ["10.0.0.21", "10.0.0.22"])
        host.script("conf", conf)
        host.script("hba1", render_pg_hba(cfg, ["10.0.0.21"]))
        host.script("hba2", hba_two)
        host.script("hba-bad", hba_two + "host django django 10.0.0.23/32 bogus\n")
        host.script("conf-bad", conf + "port = many\n")
        more = replace(cfg, database=replace(cfg.database, max_connections=120))
        host.script("conf-more", render_postgresql_conf(more, tls_dir=host.tls_dir))
        script_more = host.script("configure-more.sh", render_configure_postgres_script(
            more, staged_conf=str(staged / "djscale.conf"),
            staged_hba=str(staged / "pg_hba.conf")))
        live = "/etc/postgresql/15/main"
        result = host.run(f"""
bash {tls} > {tmp_path}/tls.out 2>&1 || echo "tls failed"
step() {{  # step NAME CONF HBA
    cp {tmp_path}/$2 {staged}/djscale.conf
    cp {tmp_path}/$3 {staged}/pg_hba.conf
    : > "$STUB_LOG"
    bash "${{script:-{script}}}" > {tmp_path}/$1.out 2>&1
    echo "$1 rc=$? $(tr '\\n' ';' < "$STUB_LOG")"
}}
step first conf hba1
stat -c '%U:%G %a %n' {live}/pg_hba.conf {live}/conf.d/djscale.conf
runuser -u postgres -- psql -X -At -c 'SHOW listen_addresses' -c 'SHOW password_encryption' -c 'SHOW ssl'
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
script={script_more} step more_connections conf-more hba2
runuser -u postgres -- psql -X -At -c 'SHOW max_connections'
""")
    assert result.stdout.splitlines() == [
        "first rc=0 systemctl start postgresql@15-main;systemctl restart postgresql@15-main;",
        f"postgres:postgres 640 {live}/pg_hba.conf",
        f"postgres:postgres 644 {live}/conf.d/djscale.conf",
        "10.0.0.10",
        "scram-sha-256",
        "on",
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
        # database.maxConnections changed: a restart (a reload would not apply it)
        "more_connections rc=0 systemctl start postgresql@15-main;"
        "systemctl restart postgresql@15-main;",
        "120",
    ], result.stderr + (tmp_path / "tls.out").read_text()
    assert (tmp_path / "more_connections.out").read_text() == (
        "djscale: max_connections is 100, restarting postgresql@15-main for 120\n")
    assert (tmp_path / "more_apps.out").read_text() == \
        "djscale: configuration changed, reloading postgresql@15-main\n"
    assert (tmp_path / "again.out").read_text() == "djscale: PostgreSQL configuration unchanged\n"
    assert "invalid authentication method" in (tmp_path / "bad_hba.out").read_text()
    assert 'invalid value for parameter "port": "many"' in \
        (tmp_path / "bad_setting.out").read_text()


def test_configure_keeps_a_client_that_left_until_the_exact_file_is_installed(tmp_path):
    """`configure` (keep_clients) adds clients and keeps the line of one that left the
    stack; `pg-hba-revoke` (the same script without it, after nginx's switch) installs the
    staged file as it is. The server reads each file (pg_hba_file_rules)."""
    cfg = make_config()
    staged = tmp_path / "staged"
    staged.mkdir()
    with DbHost(tmp_path) as host:
        tls = host.script("tls.sh", render_db_tls_script(cfg, tls_dir=host.tls_dir))
        paths = dict(staged_conf=str(staged / "djscale.conf"),
                     staged_hba=str(staged / "pg_hba.conf"))
        keep = host.script("keep.sh", render_configure_postgres_script(
            cfg, keep_clients=True, **paths))
        exact = host.script("exact.sh", render_configure_postgres_script(cfg, **paths))
        host.script("conf", render_postgresql_conf(cfg, tls_dir=host.tls_dir))
        host.script("hba1", render_pg_hba(cfg, ["10.0.0.21"]))
        host.script("hba2", render_pg_hba(cfg, ["10.0.0.21", "10.0.0.22"]))
        rules = ("runuser -u postgres -- psql -X -At -c \"SELECT string_agg(address, ' ' "
                 "ORDER BY line_number) FROM pg_hba_file_rules WHERE type = 'hostssl'\"")
        result = host.run(f"""
bash {tls} > /dev/null 2>&1 || echo "tls failed"
step() {{  # step NAME SCRIPT HBA
    cp {tmp_path}/conf {staged}/djscale.conf
    cp {tmp_path}/$3 {staged}/pg_hba.conf
    bash $2 > {tmp_path}/$1.out 2>&1
    echo "$1 rc=$? $({rules})"
}}
step two {keep} hba2
step leaving {keep} hba1
step again {keep} hba1
step revoke {exact} hba1
step back {keep} hba2
""")
    assert result.stdout.splitlines() == [
        "two rc=0 10.0.0.21 10.0.0.22",
        "leaving rc=0 10.0.0.21 10.0.0.22",   # kept: nginx may still send it requests
        "again rc=0 10.0.0.21 10.0.0.22",
        "revoke rc=0 10.0.0.21",
        "back rc=0 10.0.0.21 10.0.0.22",
    ], result.stderr
    kept = (tmp_path / "leaving.out").read_text()
    assert "djscale: kept until the proxy no longer routes to it: hostssl" in kept
    assert "10.0.0.22/32" in kept
    assert (tmp_path / "again.out").read_text().endswith(
        "djscale: PostgreSQL configuration unchanged\n")
    assert (tmp_path / "revoke.out").read_text() == \
        "djscale: configuration changed, reloading postgresql@15-main\n"


def _other_certificate(tmp_path: Path) -> Path:
    """A certificate for the database's address too, of another key: not the one to trust."""
    path = tmp_path / "other.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(tmp_path / "other.key"),
                    "-subj", "/CN=impostor", "-addext", f"subjectAltName=IP:{DB_ADDRESS}",
                    "-days", "2", "-out", str(path)], check=True, capture_output=True)
    return path


def test_the_database_admits_its_clients_over_verified_tls_only(tmp_path):
    """The whole database host on a real cluster: the TLS script, configure, the role's
    setup with the verifier. From the app server's address: without TLS, pg_hba refuses;
    over TLS with sslmode=verify-full and the certificate the TLS step printed, the password
    logs in and pg_stat_ssl shows TLS; a certificate of another key for the same address is
    refused. The key stays on the host (postgres-only), the certificate is re-made only
    when the address changes."""
    cfg = make_config()
    password = "Xq7" + "a" * 29  # 32 characters, like the RandomPassword
    staged = tmp_path / "staged"
    staged.mkdir()
    with DbHost(tmp_path) as host:
        tls = host.script("tls.sh", render_db_tls_script(cfg, tls_dir=host.tls_dir))
        moved = replace(cfg, database=replace(cfg.database, private_address="10.0.0.11"))
        tls_moved = host.script("tls-moved.sh",
                                render_db_tls_script(moved, tls_dir=host.tls_dir))
        configure = host.script("configure.sh", render_configure_postgres_script(
            cfg, staged_conf=str(staged / "djscale.conf"),
            staged_hba=str(staged / "pg_hba.conf")))
        (staged / "djscale.conf").write_text(render_postgresql_conf(cfg, tls_dir=host.tls_dir))
        (staged / "pg_hba.conf").write_text(render_pg_hba(cfg, [CLIENT_ADDRESS]))
        setup = host.script("setup.sh", render_db_setup_script(cfg))
        host.script("verifier", render_db_setup_stdin(cfg, password))
        other = _other_certificate(tmp_path)
        key = f"{host.tls_dir}/server.key"
        result = host.run(f"""
bash {tls} > {tmp_path}/ca.pem 2> {tmp_path}/tls.err; echo "tls rc=$?"
bash {tls} > {tmp_path}/ca-again.pem 2> {tmp_path}/tls-again.err; echo "again rc=$?"
cmp -s {tmp_path}/ca.pem {tmp_path}/ca-again.pem && echo "same certificate"
stat -c '%U:%G %a' {host.tls_dir} {key} {host.tls_dir}/server.crt
bash {configure} > {tmp_path}/configure.out 2>&1; echo "configure rc=$?"
bash {setup} < {tmp_path}/verifier > {tmp_path}/setup.out 2>&1; echo "setup rc=$?"
client() {{  # client NAME CONNINFO: from the app server's address, as the app's role
    ip netns exec {host.client_ns} env PGPASSWORD={password} PGCONNECT_TIMEOUT=5 psql -X -At \\
        "host={DB_ADDRESS} port=5432 dbname=django user=django $2" \\
        -c "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()" \\
        > {tmp_path}/$1.out 2>&1
    echo "$1 rc=$?"
}}
client plain "sslmode=disable"
client preferred "sslmode=prefer"
client verified "sslmode=verify-full sslrootcert={tmp_path}/ca.pem"
client impostor "sslmode=verify-full sslrootcert={other}"
sha256sum < {key} > {tmp_path}/key.sum
bash {tls_moved} > {tmp_path}/moved.pem 2>/dev/null; echo "moved rc=$?"
cmp -s {tmp_path}/ca.pem {tmp_path}/moved.pem || echo "new certificate"
sha256sum < {key} | cmp -s - {tmp_path}/key.sum && echo "same key"
""")
        out = {name: (tmp_path / f"{name}.out").read_text()
               for name in ("plain", "preferred", "verified", "impostor")}
        assert result.stdout.splitlines() == [
            "tls rc=0", "again rc=0", "same certificate",
            "root:postgres 750", "postgres:postgres 600", "root:postgres 644",
            "configure rc=0", "setup rc=0",
            "plain rc=2", "preferred rc=0", "verified rc=0", "impostor rc=2",
            "moved rc=0", "new certificate", "same key",
        ], (result.stderr, out, (tmp_path / "tls.err").read_text(),
            (tmp_path / "configure.out").read_text(), (tmp_path / "setup.out").read_text())
    assert (f'pg_hba.conf rejects connection for host "{CLIENT_ADDRESS}", user "django", '
            'database "django", no encryption') in out["plain"]
    assert out["preferred"].startswith("t|TLSv1.")  # libpq's default got TLS as well
    assert out["verified"].startswith("t|TLSv1.")  # pg_stat_ssl: this connection is TLS
    assert "certificate verify failed" in out["impostor"]
    certificate = (tmp_path / "ca.pem").read_text()
    assert certificate.startswith("-----BEGIN CERTIFICATE-----\n")
    assert certificate.endswith("-----END CERTIFICATE-----\n")
    assert certificate.count("BEGIN") == 1  # stdout: the certificate and nothing else
    assert "PRIVATE KEY" not in certificate + (tmp_path / "tls.err").read_text()
    assert (tmp_path / "tls-again.err").read_text() == ""  # nothing was made again
