"""DatabaseHost: PostgreSQL on one server, reachable only from the app servers, over TLS.

What the server receives is its plan (components/plans/database.py); this component owns
the database password and turns the plan into resources (components/apply.py). The server's
certificate is what the plan's TLS step prints: the app servers (of this stack, and of
stacks that reference it: `dbCaCert`) verify the database with it.

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

from components.apply import PlanResources
from components.config import ConfigError, StackConfig
from components.plans import database_plan
from components.remote import SshAccess


@dataclass(frozen=True)
class DatabaseEndpoint:
    """What the app servers need to reach the database (from this stack or another)."""

    private_address: pulumi.Output[str]
    port: pulumi.Output[int]
    name: pulumi.Output[str]
    user: pulumi.Output[str]
    password: pulumi.Output[str]  # secret
    ca_cert: pulumi.Output[str]  # the server's TLS certificate (public): clients verify it

    def values(self) -> dict[str, pulumi.Output]:
        """The deploy values an app server's plan needs from the database."""
        return {"db_host": self.private_address, "db_port": self.port, "db_name": self.name,
                "db_user": self.user, "db_password": self.password,
                "db_ca_cert": self.ca_cert}


# What a stack that deploys its database exports for the stacks that reference it
_ENDPOINT_EXPORTS = ("dbPrivateAddress", "dbPort", "dbName", "dbUser", "dbPassword")


def referenced_database(stack_name: str, cfg: StackConfig) -> DatabaseEndpoint:
    """The database another stack deploys (config `database.stack`), from its exports.

    A stack that exports no endpoint (never deployed, or destroyed: its outputs are empty)
    fails the program, naming what is missing, instead of the SDK's bare KeyError of
    `require_output`; the Pulumi engine itself fails a name that names no stack.
    That stack exports `dbClientAddresses`, what its pg_hba and firewall admit: when one of
    our app servers is missing there, the program fails (in preview too) instead of deploying
    app servers that PostgreSQL refuses. A database stack without that export is not checked.
    That stack's connection budget counts each of our app servers with its own `app.workers`
    (exported as `dbWorkersPerClient`): more workers here would overrun its max_connections,
    so the program fails on that too.
    It exports `dbCaCert`, the certificate our app servers verify it with: a database stack
    without it (deployed by a djscale without TLS) fails the program, naming what to do.
    Every value below waits for these checks, so each fails with all their problems at once.
    """
    ref = pulumi.StackReference("database-stack", stack_name=stack_name)
    # Whether each export is there: not a secret, even where the value is (dbPassword)
    present = [pulumi.Output.unsecret(ref.get_output(name).apply(lambda v: v is not None))
               for name in _ENDPOINT_EXPORTS]

    def problems_of(values: list) -> None:
        *exported, clients, workers_per_client, ca_cert = values
        missing = [name for name, there in zip(_ENDPOINT_EXPORTS, exported) if not there]
        problems = []
        if missing:
            problems.append(
                f"database.stack: {stack_name} exports no {', '.join(missing)}: name the "
                f"stack that deploys the database, and deploy it (pulumi up) before this one")
        elif not ca_cert:
            problems.append(f"database.stack: {stack_name} exports no dbCaCert (its database "
                            f"takes no TLS yet); update that stack with this djscale first")
        if clients is not None:
            problems += [
                f"appServers[{i}].privateAddress: {host.private_address!r} is not admitted by "
                f"the database of {stack_name}; add it to database.allowedClients of that "
                f"stack and update it first"
                for i, host in enumerate(cfg.app_servers) if host.private_address not in clients]
        if workers_per_client is not None and cfg.app.workers > int(workers_per_client):
            problems.append(
                f"app.workers: {cfg.app.workers} is more than the database of {stack_name} "
                f"counts per client ({int(workers_per_client)}, its app.workers): lower it, "
                f"or raise app.workers (and database.maxConnections) of that stack and update "
                f"it first")
        if problems:
            raise ConfigError(problems)

    checked = pulumi.Output.all(*present, ref.get_output("dbClientAddresses"),
                                ref.get_output("dbWorkersPerClient"),
                                ref.get_output("dbCaCert")).apply(problems_of)

    def export(name: str) -> pulumi.Output:
        """The export, once the checks passed (secret only if it is one there)."""
        return pulumi.Output.all(checked, ref.get_output(name)).apply(lambda v: v[1])

    return DatabaseEndpoint(
        private_address=export("dbPrivateAddress"),
        port=export("dbPort").apply(int),  # numbers arrive as floats
        name=export("dbName"),
        user=export("dbUser"),
        password=pulumi.Output.secret(export("dbPassword")),
        ca_cert=export("dbCaCert"),
    )


@dataclass(frozen=True)
class DatabaseHostArgs:
    cfg: StackConfig
    ssh: SshAccess
    # the backups' storage secret key and passphrase (secrets; None while not used)
    backup_s3_secret_key: Optional[pulumi.Output[str]] = None
    backup_passphrase: Optional[pulumi.Output[str]] = None


def _ready(value, *steps: pulumi.Resource) -> pulumi.Output:
    """`value`, available once `steps` are done: consumers then wait for a usable database."""
    return pulumi.Output.all(*[s.urn for s in steps], value).apply(lambda vs: vs[-1])


class DatabaseHost(pulumi.ComponentResource):
    def __init__(self, name: str, args: DatabaseHostArgs,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("djscale:index:DatabaseHost", name, None, opts)
        cfg = args.cfg
        self.password = random.RandomPassword(
            f"{name}-password", length=32, special=False,
            opts=pulumi.ResourceOptions(parent=self, protect=True))
        values = {"db_password": self.password.result}
        for name, secret in (("backup_s3_secret_key", args.backup_s3_secret_key),
                             ("backup_passphrase", args.backup_passphrase)):
            if secret is not None:
                values[name] = pulumi.Output.secret(secret)
        steps = PlanResources(self, database_plan(cfg), ssh=args.ssh, host=cfg.database.host,
                              values=values).apply()
        self.steps = steps

        ready = (steps["setup"], steps["firewall"])
        db = cfg.database
        self.endpoint = DatabaseEndpoint(
            private_address=_ready(db.private_address, *ready), port=_ready(db.port, *ready),
            name=_ready(db.name, *ready), user=_ready(db.user, *ready),
            password=pulumi.Output.secret(_ready(self.password.result, *ready)),
            ca_cert=_ready(steps.values["db_ca_cert"], *ready))
        self.client_addresses = _ready(cfg.database_client_addresses(), *ready)
        self.register_outputs({
            "privateAddress": self.endpoint.private_address,
            "port": self.endpoint.port,
            "dbName": self.endpoint.name,
            "dbUser": self.endpoint.user,
            "password": self.endpoint.password,
            "caCert": self.endpoint.ca_cert,
            "clientAddresses": self.client_addresses,
        })

    def finish(self, switched: Sequence[pulumi.Resource]) -> None:
        """The items that wait for nginx to route only to the servers of the stack: the
        revocation of the ones that left (pg_hba.conf, firewall)."""
        self.steps.apply_later({"@switched": list(switched)})
