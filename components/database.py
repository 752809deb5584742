"""DatabaseHost: PostgreSQL on one server, reachable only from the app servers.

The app servers are this stack's and those listed in `database.allowedClients` (app servers
of stacks that take this database through `database.stack`): pg_hba and the firewall admit
exactly `cfg.database_client_addresses()`, one /32 each.

Steps, in order:
  install PostgreSQL (apt) -> staged settings drop-in + pg_hba.conf -> configure (validate,
  install, reload/restart) -> role + database with a RandomPassword (password on stdin)
  -> firewall (5432 only from each client's private address).

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

from components.config import ConfigError, StackConfig
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


def referenced_database(stack_name: str, cfg: StackConfig) -> DatabaseEndpoint:
    """The database another stack deploys (config `database.stack`), from its exports.

    That stack exports `dbClientAddresses`, what its pg_hba and firewall admit: when one of
    our app servers is missing there, the program fails (in preview too) instead of deploying
    app servers that PostgreSQL refuses. A database stack without that export is not checked.
    """
    ref = pulumi.StackReference("database-stack", stack_name=stack_name)

    def admitted(values: list) -> str:
        clients, private_address = values
        if clients is not None:
            problems = [
                f"appServers[{i}].privateAddress: {host.private_address!r} is not admitted by "
                f"the database of {stack_name}; add it to database.allowedClients of that "
                f"stack and update it first"
                for i, host in enumerate(cfg.app_servers) if host.private_address not in clients]
            if problems:
                raise ConfigError(problems)
        return private_address

    return DatabaseEndpoint(
        private_address=pulumi.Output.all(ref.get_output("dbClientAddresses"),
                                          ref.require_output("dbPrivateAddress")).apply(admitted),
        port=ref.require_output("dbPort").apply(int),  # numbers arrive as floats
        name=ref.require_output("dbName"),
        user=ref.require_output("dbUser"),
        password=pulumi.Output.secret(ref.require_output("dbPassword")),
    )


@dataclass(frozen=True)
class DatabaseHostArgs:
    cfg: StackConfig
    ssh: SshAccess
    client_addresses: Sequence[str]  # the only clients pg_hba and the firewall admit


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
        addresses = list(args.client_addresses)

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
        self.client_addresses = _ready(addresses, *ready)
        self.register_outputs({
            "privateAddress": self.private_address,
            "port": self.port,
            "dbName": self.db_name,
            "dbUser": self.db_user,
            "password": self.db_password,
            "clientAddresses": self.client_addresses,
        })

    @property
    def endpoint(self) -> DatabaseEndpoint:
        return DatabaseEndpoint(self.private_address, self.port, self.db_name, self.db_user,
                                self.db_password)
