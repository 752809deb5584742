"""The database host's plan: PostgreSQL reachable only from the admitted app servers.

install -> TLS key and certificate, staged settings drop-in and pg_hba.conf -> configure
(validate, install, reload or restart) -> role and database (the password's verifier on
stdin) and the firewall. The password is a deploy value (`db_password`, a protected
RandomPassword the component owns); the certificate is one this plan provides
(`db_ca_cert`, the tls step's stdout), for the app servers.
"""
from __future__ import annotations

from components.config import StackConfig
from components.render import firewall, postgres

from .items import Deferred, File, HashOf, HostPlan, Step


def database_plan(cfg: StackConfig) -> HostPlan:
    """`cfg.database_client_addresses()`: the only clients pg_hba and the firewall admit."""
    clients = cfg.database_client_addresses()
    return HostPlan(cfg.database.host.name, "database", (
        Step("install", script=postgres.render_install_postgres_script(cfg),
             source="postgres.render_install_postgres_script",
             what="`apt-get install postgresql[-V]`, waits for apt locks"),
        Step("tls", after=("install",), script=postgres.render_db_tls_script(cfg),
             provides="db_ca_cert", source="postgres.render_db_tls_script",
             what=f"private key made on the host (never leaves it) and a self-signed "
                  f"certificate for the private address in `{postgres.TLS_DIR}`, made when "
                  f"missing or not current; prints the certificate (public), which the app "
                  f"servers verify the database with"),
        File("postgresql-conf", after=("install",), path=postgres.STAGED_CONF,
             content=postgres.render_postgresql_conf(cfg), source="postgres.render_postgresql_conf",
             what="`listen_addresses` = private address, port, scram-sha-256, "
                  "`max_connections`, TLS with that certificate (staged)"),
        File("pg-hba", after=("install",), path=postgres.STAGED_HBA, mode="0640",
             content=postgres.render_pg_hba(cfg, clients), source="postgres.render_pg_hba",
             what="local peer for postgres; `hostnossl ... reject` for every network address; "
                  "one `hostssl db user IP/32 scram-sha-256` per client (staged)"),
        Step("configure", after=("tls", "postgresql-conf", "pg-hba"),
             script=postgres.render_configure_postgres_script(cfg),
             triggers=(HashOf("postgresql-conf"), HashOf("pg-hba")),
             source="postgres.render_configure_postgres_script",
             what="validate (`postgres -C`, `pg_hba_file_rules`), install, restore on error, "
                  "reload or restart"),
        Step("setup", after=("configure",), script=postgres.render_db_setup_script(cfg),
             stdin=Deferred(lambda values: postgres.render_db_setup_stdin(
                 cfg, values["db_password"]), ("db_password",)),
             stdin_doc="the SCRAM-SHA-256 verifier", secret=True,
             source="postgres.render_db_setup_script",
             what="role (no superuser, createdb, createrole, replication or bypassrls) and "
                  "database if missing, attributes and password set every run; the password "
                  "is sent as its verifier, never itself"),
        Step("firewall", after=("configure",),
             script=firewall.render_ufw_script(firewall.database_rules(cfg, clients)),
             ssh_client=True,
             source="firewall.render_ufw_script(database_rules)",
             what="ufw: SSH from admin CIDRs, the database port from each client"),
    ))
