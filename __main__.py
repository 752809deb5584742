"""djscale: PostgreSQL, N Django app servers and an nginx proxy, wired together.

Only wiring lives here: config -> DatabaseHost (or the database of another stack) ->
AppServers (given the database endpoint and the generated secrets) -> ProxyHost (given the
app containers it waits for). What each host receives is its plan (components/plans/).
"""
import pulumi
import pulumi_random as random

from components.app_server import AppSecrets, AppServer, AppServerArgs
from components.database import DatabaseHost, DatabaseHostArgs, referenced_database
from components.preflight import check_app_contract, check_operator_machine
from components.proxy import ProxyHost, ProxyHostArgs
from components.remote import SshAccess, state_dir
from components.stack import load_stack

cfg, secrets = load_stack()  # raises ConfigError, listing every problem, before any resource
check_operator_machine()  # a stale SSH_AUTH_SOCK would fail every remote step
check_app_contract(cfg)  # a project that cannot run under djscale: its files say so now
ssh = SshAccess.create(cfg, secrets.ssh_private_key)
staging = state_dir(pulumi.get_project(), pulumi.get_stack()) / "uploads"

if cfg.database.stack:  # checked to admit our app servers (its dbClientAddresses)
    database = referenced_database(cfg.database.stack, cfg)
    db_clients = None
else:  # own app servers + database.allowedClients
    db_host = DatabaseHost("db", DatabaseHostArgs(
        cfg=cfg, ssh=ssh, backup_s3_secret_key=secrets.backup_storage_secret_key,
        backup_passphrase=secrets.backup_encryption_passphrase))
    database, db_clients = db_host.endpoint, db_host.client_addresses

secret_key = random.RandomPassword("django-secret-key", length=64, special=False)
superuser_password = random.RandomPassword("superuser-password", length=24, special=False)
app_secrets = AppSecrets(secret_key=pulumi.Output.secret(secret_key.result),
                         superuser_password=pulumi.Output.secret(superuser_password.result),
                         static_storage_secret_key=secrets.static_storage_secret_key,
                         app_secrets=secrets.app_secrets)

# A release starts in batches (rollout.batchSize): each batch after the previous one's
# starts; the proxy switches to the new slots once all are up, then the old containers go.
batch = cfg.rollout.servers_per_batch(len(cfg.app_servers))
app_servers: list[AppServer] = []
for index, host in enumerate(cfg.app_servers):
    previous_batch = app_servers[max(0, (index // batch - 1) * batch):(index // batch) * batch]
    app_servers.append(AppServer(host.name, AppServerArgs(
        cfg=cfg, host=host, ssh=ssh, database=database, secrets=app_secrets, staging=staging,
        first=app_servers[0] if app_servers else None, batch_before=previous_batch,
    )))

proxy = ProxyHost("proxy", ProxyHostArgs(
    cfg=cfg, ssh=ssh, app_slot_ports={s.host_name: s.slot_port for s in app_servers},
    app_starts=[server.start for server in app_servers]))
for server in app_servers:
    server.finish(switched=proxy.upstream_switched)
if not cfg.database.stack:  # a server that left loses its database access after the switch
    db_host.finish(switched=proxy.upstream_switched)

pulumi.export("url", proxy.url)
pulumi.export("proxyAddress", proxy.public_address)
pulumi.export("appAddresses", [server.private_address for server in app_servers])
# the image id every app server was given (app.release: built, or the pinned one): what
# `python -m components.ops status` compares each server's running release with
pulumi.export("appImage", app_servers[0].image_id)
pulumi.export("dbPrivateAddress", database.private_address)
pulumi.export("dbPort", database.port)
pulumi.export("dbName", database.name)
pulumi.export("dbUser", database.user)
pulumi.export("dbPassword", pulumi.Output.secret(database.password))
pulumi.export("dbCaCert", database.ca_cert)  # public: what clients verify the database with
if db_clients is not None:  # what stacks with database.stack = this one check against
    pulumi.export("dbClientAddresses", db_clients)
    # each of them was counted with this many connections in database.maxConnections
    pulumi.export("dbWorkersPerClient", cfg.app.workers)
pulumi.export("adminUsername", cfg.app.superuser.username)
pulumi.export("adminEmail", cfg.app.superuser.email)  # the login of an email-login user model
pulumi.export("adminPassword", pulumi.Output.secret(superuser_password.result))
