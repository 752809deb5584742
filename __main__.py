"""djscale: PostgreSQL, N Django app servers and an nginx proxy, wired together.

Only wiring lives here: config -> DatabaseHost (or the database of another stack) ->
AppServers (given the DB outputs) -> ProxyHost (given the app addresses). Each firewall
allow-list is built from the peers' addresses.
"""
import pulumi
import pulumi_random as random

from components.app_server import AppServer, AppServerArgs
from components.database import DatabaseEndpoint, DatabaseHost, DatabaseHostArgs
from components.proxy import ProxyHost, ProxyHostArgs
from components.remote import SshAccess, state_dir
from components.stack import load_stack

cfg, secrets = load_stack()  # raises ConfigError, listing every problem, before any resource
ssh = SshAccess.create(cfg, secrets.ssh_private_key,
                       state_dir(pulumi.get_project(), pulumi.get_stack()))
app_addresses = [host.private_address for host in cfg.app_servers]

if cfg.database.stack:
    db_stack = pulumi.StackReference("database-stack", stack_name=cfg.database.stack)
    database = DatabaseEndpoint(
        private_address=db_stack.require_output("dbPrivateAddress"),
        port=db_stack.require_output("dbPort").apply(int),  # numbers arrive as floats
        name=db_stack.require_output("dbName"),
        user=db_stack.require_output("dbUser"),
        password=pulumi.Output.secret(db_stack.require_output("dbPassword")),
    )
else:
    database = DatabaseHost("db", DatabaseHostArgs(
        cfg=cfg, ssh=ssh, app_private_addresses=app_addresses)).endpoint

secret_key = random.RandomPassword("django-secret-key", length=64, special=False)
superuser_password = random.RandomPassword("superuser-password", length=24, special=False)

app_servers: list[AppServer] = []
for host in cfg.app_servers:
    first = app_servers[0] if app_servers else None
    app_servers.append(AppServer(host.name, AppServerArgs(
        cfg=cfg, host=host, ssh=ssh, database=database,
        secret_key=pulumi.Output.secret(secret_key.result),
        superuser_password=pulumi.Output.secret(superuser_password.result),
        static_storage_secret_key=secrets.static_storage_secret_key,
        proxy_private_address=cfg.proxy.private_address,
        runs_release=first is None,
        release=first.release if first else None,
        previous=app_servers[-1].container if app_servers else None,
    )))

proxy = ProxyHost("proxy", ProxyHostArgs(
    cfg=cfg, ssh=ssh,
    app_private_addresses=[server.private_address for server in app_servers],
    app_containers=[server.container for server in app_servers],
))

pulumi.export("url", proxy.url)
pulumi.export("proxyAddress", proxy.public_address)
pulumi.export("appAddresses", [server.private_address for server in app_servers])
pulumi.export("dbPrivateAddress", database.private_address)
pulumi.export("dbPort", database.port)
pulumi.export("dbName", database.name)
pulumi.export("dbUser", database.user)
pulumi.export("dbPassword", pulumi.Output.secret(database.password))
pulumi.export("adminUsername", cfg.app.superuser.username)
pulumi.export("adminPassword", pulumi.Output.secret(superuser_password.result))
