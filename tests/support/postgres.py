"""A real, throwaway PostgreSQL cluster for tests (Debian's postgresql package).

We run as root; PostgreSQL refuses to, so every server command runs as the `postgres` OS
user through `runuser`. The cluster lives in a private temporary directory (data, socket,
log), listens on a free port of the given addresses, and admits password logins
(scram-sha-256) from the given client networks only.

    from tests.support.postgres import postgres_fixture
    postgres = postgres_fixture()            # in a conftest: a session fixture
    def test_x(postgres): postgres.database  # Database(host, port, name, user, password)

`stop()` / `start()` keep the data, so a test can take the database away and bring it back.
"""
from __future__ import annotations

import glob
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import pytest

OS_USER = "postgres"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def find_bindir(version: int | None = None) -> Path:
    if version is not None:
        candidates = [f"/usr/lib/postgresql/{version}/bin"]
    else:
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                            key=lambda p: int(Path(p).parent.name), reverse=True)
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise RuntimeError(f"no PostgreSQL server binaries in {candidates}: "
                       "apt-get install postgresql")


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class Database:
    host: str
    port: int
    name: str
    user: str
    password: str


class PostgresServer:
    database: Database | None = None  # set by postgres_fixture

    def __init__(self, *, version: int | None = None, port: int | None = None,
                 listen_addresses: Sequence[str] = ("127.0.0.1",),
                 client_networks: Sequence[str] = ("127.0.0.1/32",), tls: bool = False):
        """`tls=True`: as djscale's database host, TLS only (`hostssl` lines, nothing
        without TLS), with a self-signed certificate for the first listen address in
        `ca_cert` (what clients verify with)."""
        self.bindir = find_bindir(version)
        self.listen_addresses = list(listen_addresses)
        self.client_networks = list(client_networks)
        self.tls = tls
        self.host = self.listen_addresses[0]
        self.port = port or free_port(self.host)
        # Not pytest's tmp_path: that lives under a 0700 root directory postgres can't enter.
        self.root = Path(tempfile.mkdtemp(prefix="djscale-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "run"
        self.log = self.root / "server.log"
        self.ca_cert = self.root / "server.crt"  # public; with tls=True
        self._databases: list[Database] = []

    # -- commands run as the postgres OS user ---------------------------------------------
    def _as_postgres(self, *args: str, input: str | None = None,
                     check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(["runuser", "-u", OS_USER, "--", *args], input=input,
                              text=True, capture_output=True, cwd=self.root)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n"
                               f"{proc.stdout}\n{proc.stderr}\n{self.tail_log()}")
        return proc

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the superuser over the private unix socket; return its output."""
        return self._as_postgres(
            str(self.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
            "-h", str(self.socket_dir), "-p", str(self.port), "-d", database,
            input=sql).stdout

    def tail_log(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text().splitlines()[-lines:])
        except OSError:
            return ""

    # -- lifecycle ------------------------------------------------------------------------
    def init(self) -> None:
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.root, OS_USER, OS_USER)
        shutil.chown(self.socket_dir, OS_USER, OS_USER)
        self._as_postgres(str(self.bindir / "initdb"), "-D", str(self.data), "-U", OS_USER,
                          "--auth-local=peer", "--auth-host=scram-sha-256",
                          "--encoding=UTF8", "--locale=C.UTF-8")
        conf = [
            f"listen_addresses = {_quote_literal(','.join(self.listen_addresses))}",
            f"port = {self.port}",
            f"unix_socket_directories = {_quote_literal(str(self.socket_dir))}",
            "fsync = off",  # throwaway data: speed over durability
            "synchronous_commit = off",
            "full_page_writes = off",
            "max_connections = 50",
        ]
        if self.tls:
            self._make_certificate()
            conf += ["ssl = on", f"ssl_cert_file = {_quote_literal(str(self.ca_cert))}",
                     f"ssl_key_file = {_quote_literal(str(self.root / 'server.key'))}"]
        with open(self.data / "postgresql.conf", "a") as f:
            f.write("\n# djscale tests\n" + "\n".join(conf) + "\n")
        self._write_hba()

    def _make_certificate(self) -> None:
        key = self.root / "server.key"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key),
                        "-out", str(self.ca_cert), "-days", "7", "-subj", "/CN=djscale test",
                        "-addext", f"subjectAltName=IP:{self.host}"],
                       check=True, capture_output=True)
        for path in (key, self.ca_cert):
            shutil.chown(path, OS_USER, OS_USER)
        key.chmod(0o600)
        self.ca_cert.chmod(0o644)

    def _write_hba(self) -> None:
        lines = ["local all postgres peer"]
        if self.tls:
            lines += ["hostnossl all all 0.0.0.0/0 reject", "hostnossl all all ::/0 reject"]
        for db in self._databases:
            for network in self.client_networks:
                kind = "hostssl" if self.tls else "host"
                lines.append(f"{kind} {db.name} {db.user} {network} scram-sha-256")
        path = self.data / "pg_hba.conf"
        path.write_text("\n".join(lines) + "\n")
        shutil.chown(path, OS_USER, OS_USER)

    def start(self) -> None:
        if not self.data.exists():
            self.init()
        self._as_postgres(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l",
                          str(self.log), "-w", "-t", "60", "start")

    def stop(self) -> None:
        """Fast shutdown: open sessions are terminated, as in a real database restart."""
        self._as_postgres(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast",
                          "-w", "-t", "60", "stop")

    def is_running(self) -> bool:
        return self._as_postgres(str(self.bindir / "pg_ctl"), "-D", str(self.data),
                                 "status", check=False).returncode == 0

    def destroy(self) -> None:
        if self.data.exists() and self.is_running():
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- databases ------------------------------------------------------------------------
    def create_database(self, name: str, user: str, password: str | None = None) -> Database:
        """A database owned by a login role with a password, reachable over TCP."""
        password = password or secrets.token_urlsafe(16)
        self.psql(f"CREATE ROLE {_quote_ident(user)} LOGIN PASSWORD {_quote_literal(password)};"
                  f"\nCREATE DATABASE {_quote_ident(name)} OWNER {_quote_ident(user)};")
        db = Database(host=self.host, port=self.port, name=name, user=user, password=password)
        self._databases.append(db)
        self._write_hba()
        self.psql("SELECT pg_reload_conf();")
        return db


def postgres_fixture(*, scope: str = "session", name: str = "postgres",
                     db_name: str = "django", db_user: str = "django",
                     **server_kw) -> pytest.FixtureFunctionMarker:
    """A pytest fixture yielding a started PostgresServer with one database, `.database`."""

    @pytest.fixture(scope=scope, name=name)
    def _postgres() -> Iterator[PostgresServer]:
        server = PostgresServer(**server_kw)
        try:
            server.start()
            server.database = server.create_database(db_name, db_user)
            yield server
        finally:
            server.destroy()

    return _postgres

