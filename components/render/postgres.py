"""PostgreSQL on the database host: the packages, the TLS certificate, the settings drop-in,
pg_hba.conf and the app's role and database.

The settings and pg_hba.conf are uploaded to STAGING_DIR first; `render_configure_postgres_
script` installs them into the cluster's conf dir only after the server's own parser
accepts them.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Sequence

from components.config import StackConfig
from components.config.rules import PG_HBA_KEYWORDS
from components.render.scram import scram_sha256_verifier
from components.render.templating import render_script, render_template

STAGING_DIR = "/etc/djscale/postgres"
STAGED_CONF = f"{STAGING_DIR}/djscale.conf"
STAGED_HBA = f"{STAGING_DIR}/pg_hba.conf"
# The server's TLS key and certificate, made on the database host (render_db_tls_script).
TLS_DIR = "/etc/djscale/postgres-tls"
TLS_VALID_DAYS = 3650
TLS_RENEW_DAYS = 90

# A name pg_hba.conf takes unquoted (the config's rules allow only a subset of these:
# components/config/rules.py, sql_identifier_problem, which also refuses PG_HBA_KEYWORDS).
_HBA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$.-]*")


@dataclass(frozen=True)
class HbaHostEntry:
    database: str
    user: str
    address: str  # "10.0.0.21/32"


def _hba_name(kind: str, value: str) -> str:
    if not _HBA_NAME.fullmatch(value) or value.lower() in PG_HBA_KEYWORDS:
        raise ValueError(f"{kind} {value!r} cannot be written unquoted into pg_hba.conf")
    return value


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sql_identifier(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _private_address(cfg: StackConfig) -> str:
    if cfg.database.host is None:
        raise ValueError("the database comes from another stack (database.stack): "
                         "this stack renders nothing for a database host")
    return cfg.database.host.private_address


def _listen_addresses(cfg: StackConfig) -> str:
    return str(ipaddress.ip_address(_private_address(cfg)))


def render_postgresql_conf(cfg: StackConfig, *, tls_dir: str = TLS_DIR) -> str:
    """conf.d/djscale.conf: TCP on the DB's private address only, TLS with the certificate
    of `render_db_tls_script`, scram-sha-256 passwords."""
    return render_template("postgresql.conf.j2", listen_addresses=_listen_addresses(cfg),
                           port=int(cfg.database.port), tls_dir=tls_dir,
                           max_connections=int(cfg.database.max_connections))


def render_db_tls_script(cfg: StackConfig, *, tls_dir: str = TLS_DIR) -> str:
    """Root script: the server's private key (made here, kept here) and its self-signed
    certificate for the private address, made when missing or not current; prints the
    certificate, which the app servers trust (sslmode=verify-full)."""
    return render_script("db-tls.sh.j2", tls_dir=tls_dir, address=_listen_addresses(cfg),
                         valid_days=TLS_VALID_DAYS, renew_days=TLS_RENEW_DAYS)


def render_pg_hba(cfg: StackConfig, app_private_addresses: Sequence[str]) -> str:
    """pg_hba.conf: local peer for postgres, nothing without TLS from the network, one
    `hostssl` /32 (or /128) line per app server."""
    database = _hba_name("database name", cfg.database.name)
    user = _hba_name("database user", cfg.database.user)
    networks = sorted({ipaddress.ip_network(a) for a in app_private_addresses},
                      key=lambda n: (n.version, n))
    for network in networks:
        if network.num_addresses != 1:
            raise ValueError(f"app address {network} is a network, not one host")
    entries = [HbaHostEntry(database, user, str(n)) for n in networks]
    return render_template("pg_hba.conf.j2", host_entries=entries)


def render_install_postgres_script(cfg: StackConfig) -> str:
    """Root script: the distribution's `postgresql` package, or `postgresql-<version>`
    (database.postgresVersion), which fails naming the key when the distribution ships
    another version (djscale adds no apt repository: rules.POSTGRES_SHIPPED)."""
    version = cfg.database.postgres_version
    package = f"postgresql-{version}" if version else "postgresql"
    return render_script("install-postgres.sh.j2", package=package, version=version)


def render_configure_postgres_script(cfg: StackConfig, *, staged_conf: str = STAGED_CONF,
                                     staged_hba: str = STAGED_HBA,
                                     keep_clients: bool = False) -> str:
    """Root script: the staged settings and pg_hba.conf installed, checked, reloaded (or the
    server restarted). `keep_clients`: a `hostssl` line of the live pg_hba.conf that the
    staged one lacks is kept (clients are added, not removed: the plan's `configure`); without
    it the staged file is installed as it is (`pg-hba-revoke`, once the proxy no longer routes
    to a server that left)."""
    return render_script("configure-postgres.sh.j2", keep_clients=keep_clients,
                         version=cfg.database.postgres_version or "",
                         staged_conf=staged_conf, staged_hba=staged_hba,
                         listen_addresses=_listen_addresses(cfg), port=int(cfg.database.port),
                         max_connections=int(cfg.database.max_connections))


def render_db_setup_sql(cfg: StackConfig) -> str:
    """The psql script run by `render_db_setup_script` (the verifier on psql's stdin)."""
    name, user = cfg.database.name, cfg.database.user
    return render_template("db-setup.sql.j2",
                           user_literal=sql_literal(user), user_ident=sql_identifier(user),
                           db_literal=sql_literal(name), db_ident=sql_identifier(name))


def render_db_setup_script(cfg: StackConfig) -> str:
    """Role + database, idempotent; run as root with the role's password verifier on stdin
    (`render_db_setup_stdin`)."""
    return render_script("db-setup.sh.j2", port=int(cfg.database.port),
                         sql=render_db_setup_sql(cfg))


def render_db_setup_stdin(cfg: StackConfig, db_password: str) -> str:
    """What `render_db_setup_script` reads: the password's SCRAM-SHA-256 verifier for the
    role (components/render/scram.py), never the password."""
    return scram_sha256_verifier(db_password, cfg.database.user)
