"""The database host's plan: PostgreSQL reachable only from the admitted app servers.

install -> TLS key and certificate, staged settings drop-in and pg_hba.conf -> configure
(validate, install, reload or restart) -> role and database (the password's verifier on
stdin) and the firewall -> while backups are on: the alert unit, the backup tools, scripts,
credentials, service and timer, the operator's backup and restore commands, the timer
enabled. The password is a deploy value (`db_password`, a protected
RandomPassword the component owns); the certificate is one this plan provides
(`db_ca_cert`, the tls step's stdout), for the app servers.
"""
from __future__ import annotations

from components.config import StackConfig
from components.render import alerts, backups, firewall, postgres

from .items import Deferred, File, HashOf, HostPlan, Item, Step, Teardown, enable_step


def database_plan(cfg: StackConfig) -> HostPlan:
    """`cfg.database_client_addresses()`: the only clients pg_hba and the firewall admit."""
    clients = cfg.database_client_addresses()
    rules = firewall.database_rules(cfg, clients)
    items: tuple[Item, ...] = (
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
             script=postgres.render_configure_postgres_script(cfg, keep_clients=True),
             triggers=(HashOf("postgresql-conf"), HashOf("pg-hba")),
             source="postgres.render_configure_postgres_script(keep_clients=True)",
             what="validate (`postgres -C`, `pg_hba_file_rules`), install, restore on error, "
                  "reload or restart; a client that left keeps its pg_hba line until "
                  "`pg-hba-revoke`"),
        Step("setup", after=("configure",), script=postgres.render_db_setup_script(cfg),
             stdin=Deferred(lambda values: postgres.render_db_setup_stdin(
                 cfg, values["db_password"]), ("db_password",)),
             stdin_doc="the SCRAM-SHA-256 verifier", secret=True,
             source="postgres.render_db_setup_script",
             what="role (no superuser, createdb, createrole, replication or bypassrls) and "
                  "database if missing, attributes and password set every run; the password "
                  "is sent as its verifier, never itself"),
        Step("firewall", after=("configure",),
             script=firewall.render_ufw_script(rules, prune=False),
             ssh_client=True,
             source="firewall.render_ufw_script(database_rules, prune=False)",
             what="ufw: SSH from admin CIDRs, the database port from each client (rules "
                  "added; one that is no longer wanted stays until `firewall-revoke`)"),
    )
    if cfg.backups.enabled:
        items += tuple(_backups(cfg))
    items += tuple(_revoke(cfg, rules))
    return HostPlan(cfg.database.host.name, "database", items, later="pg-hba-revoke")


def _revoke(cfg: StackConfig, rules: firewall.FirewallRules) -> list[Item]:
    """What an app server leaving the stack loses, once nginx no longer sends it requests
    (`@switched`): until then it still serves, and a request needing a new connection would
    fail. (Its containers go after this, in the delete phase.)"""
    return [
        Step("pg-hba-revoke", after=("configure", "@switched"),
             script=postgres.render_configure_postgres_script(cfg),
             triggers=(HashOf("pg-hba"),),
             source="postgres.render_configure_postgres_script",
             what="pg_hba.conf exactly as staged (clients that left the stack lose their "
                  "line), checked, reloaded; a no-op when nothing left"),
        Step("firewall-revoke", after=("firewall", "@switched"),
             script=firewall.render_ufw_script(rules), ssh_client=True,
             source="firewall.render_ufw_script(database_rules)",
             what="ufw exactly as wanted: the rules of clients that left the stack deleted; "
                  "a no-op when nothing left"),
    ]


def _backups(cfg: StackConfig) -> list[Item]:
    """The backup timer and the operator's commands, after the database exists. The storage
    key and the passphrase are deploy values (`backup_s3_secret_key`, `backup_passphrase`:
    secrets) that land in root-only files."""
    encrypt = cfg.backups.encrypt
    files: list[File] = [
        File("alert-script", after=("setup",), path=alerts.ALERT_SCRIPT_PATH, mode="0755",
             content=alerts.render_alert_script(), source="alerts.render_alert_script",
             what=f"a failed unit: a critical journal entry and "
                  f"`{alerts.ALERT_STATE_DIR}/<unit>.failed`; a success removes it"),
        File("alert-unit", after=("setup",), path=alerts.ALERT_UNIT_PATH,
             content=alerts.render_alert_unit(), source="alerts.render_alert_unit",
             what="`OnFailure=` of the backup: runs the alert script"),
        File("s3-tool", after=("backup-tools",), path=backups.S3_TOOL_PATH, mode="0755",
             content=backups.render_s3_tool(), source="backups.render_s3_tool",
             what="djscale-s3: put, get, list and delete with AWS Signature V4, Python's "
                  "standard library only (components/s3.py)"),
        File("backup-credentials", after=("setup",), path=backups.CREDENTIALS_PATH,
             mode="0600", secret=True,
             content=Deferred(lambda values: backups.render_credentials(
                 cfg, values["backup_s3_secret_key"]), ("backup_s3_secret_key",)),
             source="backups.render_credentials",
             what="`backups.accessKeyId` and its secret (secret: root-only file)"),
        *([File("backup-passphrase", after=("setup",), path=backups.PASSPHRASE_PATH,
                mode="0600", secret=True,
                content=Deferred(lambda values: backups.render_passphrase(
                    values["backup_passphrase"]), ("backup_passphrase",)),
                source="backups.render_passphrase",
                what="the passphrase gpg encrypts the backups with (secret: root-only "
                     "file)")] if encrypt else []),
        File("backup-script", after=("setup",), path=backups.BACKUP_SCRIPT_PATH, mode="0755",
             content=backups.render_backup_script(cfg), source="backups.render_backup_script",
             what="`pg_dump -Fc`" + (", gpg (AES-256)" if encrypt else "") +
                  f", upload to s3://{cfg.backups.bucket}/{cfg.backups.prefix}, the last "
                  f"backup recorded in `{backups.LAST_BACKUP_PATH}`, retention (newest "
                  f"{cfg.backups.keep_count}, younger than {cfg.backups.keep_days} days; 0: "
                  f"off)"),
        File("backup-service", after=("setup",), path=backups.BACKUP_SERVICE_PATH,
             content=backups.render_backup_service(), source="backups.render_backup_service",
             what="runs the backup script; a failure raises the alert, a success clears it"),
        File("backup-timer", after=("setup",), path=backups.BACKUP_TIMER_PATH,
             content=backups.render_backup_timer(cfg), source="backups.render_backup_timer",
             what=f"`OnCalendar={cfg.backups.schedule}` (`backups.schedule`), persistent"),
        File("backup-now-command", after=("setup",), path=backups.BACKUP_NOW_PATH,
             mode="0755", content=backups.render_backup_now_script(),
             source="backups.render_backup_now_script",
             what="the operator's `djscale-backup-now`: a backup through the unit, then "
                  "the last backup's record"),
        File("restore-command", after=("setup",), path=backups.RESTORE_PATH, mode="0755",
             content=backups.render_restore_script(cfg),
             source="backups.render_restore_script",
             what="the operator's `djscale-restore [latest|KEY|--list]`: into a new "
                  "database, then swapped in by renaming (the replaced one kept)"),
    ]
    return [
        Step("backup-tools", after=("setup",),
             script=backups.render_install_backup_tools_script(cfg),
             source="backups.render_install_backup_tools_script",
             what="python3" + (" and gpg" if encrypt else "") + " (no-op when installed)"),
        *files,
        enable_step("backup-enable", files, script=backups.render_enable_backups_script(cfg),
                    undo=backups.render_disable_backups_script(),
                    source="backups.render_enable_backups_script (undone by "
                           "render_disable_backups_script)",
                    what="`systemd-analyze calendar` of the schedule, `systemctl "
                         "daemon-reload`, the backup timer enabled and started"),
        Teardown("backup-teardown", after=("setup",),
                 script=backups.render_backup_teardown_script(),
                 source="backups.render_backup_teardown_script",
                 what="when backups are turned off or the host leaves the stack: the "
                      "credentials and passphrase files deleted (the backups stay)"),
    ]
