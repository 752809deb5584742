"""The database host's plan: PostgreSQL reachable only from the admitted app servers.

install -> staged settings drop-in and pg_hba.conf -> configure (validate, install, reload
or restart) -> role and database (the password's verifier on stdin) and the firewall. The
password is a deploy value (`db_password`, a protected RandomPassword the component owns).
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
        File("postgresql-conf", after=("install",), path=postgres.STAGED_CONF,
             content=postgres.render_postgresql_conf(cfg), source="postgres.render_postgresql_conf",
             what="`listen_addresses` = private address, port, scram-sha-256 (staged)"),
        File("pg-hba", after=("install",), path=postgres.STAGED_HBA, mode="0640",
             content=postgres.render_pg_hba(cfg, clients), source="postgres.render_pg_hba",
             what="local peer for postgres; one `host db user IP/32 scram-sha-256` per client "
                  "(staged)"),
        Step("configure", after=("postgresql-conf", "pg-hba"),
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
