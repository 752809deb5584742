"""DatabaseHost: PostgreSQL on one server, reachable only from the app servers.

Steps, in order:
  install PostgreSQL (apt) -> staged settings drop-in + pg_hba.conf -> configure (validate,
  install, reload/restart) -> role + database with a RandomPassword (password on stdin)
  -> firewall (5432 only from each app server's private address).

No step deletes anything on the server: destroying the stack leaves PostgreSQL, the cluster
and its data in place. The database password (a RandomPassword, whose inputs never change)
is protected, so `pulumi destroy` refuses until an operator runs `pulumi state unprotect` on
it: a mistyped destroy cannot throw away the credentials the app uses. Steps are not
protected themselves: a new djscale version changes their scripts, which replaces them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_random as random

from components.config import StackConfig
from components.remote import SshAccess, content_hash, remote_file, remote_step
from components.render import firewall, postgres


@dataclass(frozen=True)
class DatabaseEndpoint:
    """What the app servers need to reach the database (from this stack or another)."""

    private_address: pulumi.Output[str]
    port: pulumi.Output[int]
    name: pulumi.Output[str]
    user: pulumi.Output[str]
    password: pulumi.Output[str]  # secret


@dataclass(frozen=True)
class DatabaseHostArgs:
    cfg: StackConfig
    ssh: SshAccess
    app_private_addresses: Sequence[str]  # the only clients pg_hba and the firewall admit


def _ready(value, *steps: pulumi.Resource) -> pulumi.Output:
    """`value`, available once `steps` are done: consumers then wait for a usable database."""
    return pulumi.Output.all(*[s.urn for s in steps], value).apply(lambda vs: vs[-1])


class DatabaseHost(pulumi.ComponentResource):
    def __init__(self, name: str, args: DatabaseHostArgs,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("djscale:index:DatabaseHost", name, None, opts)
        cfg = args.cfg
        host = cfg.database.host
        conn = args.ssh.connection(host)
        addresses = list(args.app_private_addresses)

        def after(*deps: pulumi.Resource, **kw) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, depends_on=list(deps), **kw)

        install = remote_step(
            f"{name}-install", connection=conn,
            script=postgres.render_install_postgres_script(cfg),
            opts=after())

        conf = postgres.render_postgresql_conf(cfg)
        hba = postgres.render_pg_hba(cfg, addresses)
        staged_conf = remote_file(
            f"{name}-postgresql-conf", connection=conn, path=postgres.STAGED_CONF,
            content=conf, opts=after(install))
        staged_hba = remote_file(
            f"{name}-pg-hba", connection=conn, path=postgres.STAGED_HBA,
            content=hba, mode="0640", opts=after(install))
        configure = remote_step(
            f"{name}-configure", connection=conn,
            script=postgres.render_configure_postgres_script(cfg),
            triggers=[content_hash(conf), content_hash(hba)],
            opts=after(staged_conf, staged_hba))

        self.password = random.RandomPassword(
            f"{name}-password", length=32, special=False,
            opts=pulumi.ResourceOptions(parent=self, protect=True))
        setup = remote_step(
            f"{name}-setup", connection=conn,
            script=postgres.render_db_setup_script(cfg),
            stdin=self.password.result,
            triggers=[content_hash(self.password.result)],
            secret=True,
            opts=after(configure))

        fw = remote_step(
            f"{name}-firewall", connection=conn,
            script=firewall.render_ufw_script(firewall.database_rules(cfg, addresses)),
            opts=after(configure))

        ready = (setup, fw)
        self.private_address = _ready(host.private_address, *ready)
        self.port = _ready(cfg.database.port, *ready)
        self.db_name = _ready(cfg.database.name, *ready)
        self.db_user = _ready(cfg.database.user, *ready)
        self.db_password = pulumi.Output.secret(_ready(self.password.result, *ready))
        self.register_outputs({
            "privateAddress": self.private_address,
            "port": self.port,
            "dbName": self.db_name,
            "dbUser": self.db_user,
            "password": self.db_password,
        })

    @property
    def endpoint(self) -> DatabaseEndpoint:
        return DatabaseEndpoint(self.private_address, self.port, self.db_name, self.db_user,
                                self.db_password)
