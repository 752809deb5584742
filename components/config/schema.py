"""Every stack setting, declared once: the frozen dataclasses the program works with.

Each field that is a config key carries its declaration (`setting(name, kind, default,
description)`, components/config/keys.py). The parser, `Pulumi.yaml`'s config block and the
README's configuration table all come from these declarations. Components and renderers take
these objects, never `pulumi.Config`; secrets never live here (their values stay
`pulumi.Output`s, components/stack.py).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from . import rules
from .env_contract import ENV_VALUE, DebugValuesConfig, EnvNamesConfig
from .keys import (REQUIRED, Conditional, Derived, Flag, Integer, ListOf, MapOf, Object, Port,
                   Text, setting)

# The Pulumi project directory (Pulumi.yaml beside components/): `pulumi` runs the program
# here, and a relative `app.source` starts here.
PROJECT_DIR = Path(__file__).resolve().parents[2]

# PostgreSQL keeps this many of max_connections for superusers (its default
# superuser_reserved_connections); the release's one-off container holds one connection.
SUPERUSER_RESERVED_CONNECTIONS = 3
RELEASE_CONNECTIONS = 1

# Kinds shared by several keys.
SSH_ADDRESS = Text(rules.ssh_address_problem, doc="string (IPv4 or DNS name)")
IPV4 = Text(rules.ipv4_problem, doc="string (IPv4)")
UNIX_USER = Text(rules.unix_user_problem)
NGINX_TIME = Text(rules.nginx_time_problem, doc="nginx time", numbers=True)
NGINX_SIZE = Text(rules.nginx_size_problem, doc="nginx size", numbers=True)
NGINX_RATE = Text(rules.nginx_rate_problem, doc="nginx rate")
IMAGE = Text(rules.image_problem, doc="string (image reference)")


@dataclass(frozen=True)
class Secret:
    """A top-level key that must be set with `pulumi config set --secret`.

    A required secret is typed in Pulumi.yaml (`type: string, secret: true`): the CLI then
    refuses a plain-text value before the program runs. An optional one can't be: the CLI
    injects a project default as plain text and refuses it for a typed secret key, and a key
    without a default is required (pulumi/pulumi pkg/workspace/config.go, mergeConfig and
    validateStackConfigValues). So it is untyped with default "" ("not set"), and the program
    refuses a plain-text value itself (components/stack.py).
    """

    name: str
    doc: str
    required: bool | str  # True, or the condition under which it is required
    # checks the value where the program reads it (components/stack.py); the problem text
    # never shows the value
    rule: Optional[Callable[[str], Optional[str]]] = None
    # a map of secrets, each set with `pulumi config set --secret --path '<name>.<key>'`:
    # present as "<name>.<key>" in the program's secrets (components/config/parse.py)
    map: bool = False


SECRETS = (
    Secret("sshPrivateKey", "Private key (OpenSSH/PEM text) for `ssh.user` on every server: "
           "`pulumi config set --secret sshPrivateKey < KEYFILE`.",
           "exactly one of this or `ssh.privateKeyPath`"),
    Secret("staticStorageSecretKey", "Secret access key for `staticStorage.accessKeyId`: "
           "`pulumi config set --secret staticStorageSecretKey VALUE`.", True,
           rule=rules.secret_line_problem),  # one line of the app's env file
    Secret("appSecrets", "The project's own secrets (`SENTRY_DSN`, API keys), by the "
           "environment variable name that holds each: `pulumi config set --secret --path "
           "'appSecrets.SENTRY_DSN' VALUE`. Every app container and the release get them, from "
           "the root-only env file and the release's stdin; never on a command line or in "
           "the program's output. A name djscale writes (`app.envNames`, the release's "
           "`DJANGO_SUPERUSER_*`) or one in `app.env` is refused.", False,
           rule=rules.secret_line_problem, map=True),
)
SECRETS += (
    Secret("backupStorageSecretKey", "Secret access key for `backups.accessKeyId`: "
           "`pulumi config set --secret backupStorageSecretKey VALUE`.",
           "while backups are on (the default for a stack with a database)",
           rule=rules.secret_line_problem),
    Secret("backupEncryptionPassphrase", "Passphrase the backups are encrypted with "
           "(`gpg --symmetric`, AES-256) on the database host before they leave it: "
           "`pulumi config set --secret backupEncryptionPassphrase VALUE`. Keep a copy "
           "outside the stack: without it no backup can be restored. Used only with "
           "`backups.encrypt`.",
           "with `backups.encrypt`", rule=rules.passphrase_problem),
)
SECRET_KEYS = tuple(secret.name for secret in SECRETS)


@dataclass(frozen=True)
class AcmeConfig:
    email: Optional[str] = setting(
        "email", Text(rules.email_problem),
        Conditional("required unless `acme.staging` or `acme.server`"),
        "Account email for the ACME CA (account and policy notices; Let's Encrypt sends no "
        "expiry emails: see `acme.expiryWarningDays`).")
    staging: bool = setting(
        "staging", Flag(), False,
        "Use Let's Encrypt's staging CA (untrusted certificates, no rate limits).")
    server: Optional[str] = setting(
        "server", Text(rules.https_url_problem, doc="string (https URL)"), None,
        "ACME directory URL of another CA; overrides `acme.staging`.")
    expiry_warning_days: int = setting(
        "expiryWarningDays", Integer(minimum=1, maximum=365), 14,
        "The proxy's daily check fails when the certificate nginx serves expires within this "
        "many days: a critical journal entry and an alert file on the proxy "
        "(`djscale-certificate-status`; README, Operations). Let's Encrypt sends no expiry "
        "emails. certbot renews with a third of the lifetime left (30 of 90 days), so the "
        "default means two weeks of failed renewals; keep it below that renewal window.")

    @property
    def directory_url(self) -> str:
        if self.server:
            return self.server
        if self.staging:
            return "https://acme-staging-v02.api.letsencrypt.org/directory"
        return "https://acme-v02.api.letsencrypt.org/directory"


@dataclass(frozen=True)
class BastionConfig:
    address: str = setting("address", SSH_ADDRESS, REQUIRED, "Jump host (IPv4 or DNS name).")
    user: Optional[str] = setting("user", UNIX_USER, Derived("`ssh.user`"), "Jump host user.")
    port: int = setting("port", Port(), 22, "Jump host SSH port.")


@dataclass(frozen=True)
class SshConfig:
    user: str = setting("user", UNIX_USER, "deploy",
                        "User on every server, with passwordless sudo.")
    port: int = setting("port", Port(), 22, "SSH port, unless a host sets `sshPort`.")
    private_key_path: Optional[str] = setting(
        "privateKeyPath", Text(), None,
        "Local private key file (`~` expanded). Exactly one of this or the `sshPrivateKey` "
        "secret.")
    host_keys: tuple[tuple[str, str], ...] = setting(
        "hostKeys", MapOf(Text(rules.host_key_problem), doc="object",
                          key_rule=rules.ssh_address_problem), (),
        "Pinned host keys: `{<host address>: \"<type> <base64>\"}`, ed25519 or ecdsa. Every "
        "host and the bastion must be pinned (unless `insecureSkipHostKeyCheck`): "
        "`python -m components.hostkeys --stack <stack>` prints them.")
    insecure_skip_host_key_check: bool = setting(
        "insecureSkipHostKeyCheck", Flag(), False,
        "Connect to hosts that have no pinned key without checking theirs (pulumi-command then "
        "accepts any key). Each deploy warns, naming them. Only for throwaway servers.")
    bastion: Optional[BastionConfig] = setting(
        "bastion", Object(BastionConfig, optional=True), None,
        "Jump host `{address, port, user}`; set it only if you need one.")

    def host_key_for(self, address: str) -> Optional[str]:
        """The key pinned for `address` (DNS names compare without case), or None."""
        wanted = address.lower()
        return next((key for pinned, key in self.host_keys if pinned.lower() == wanted), None)


@dataclass(frozen=True)
class SshTarget:
    """One machine the program logs in to: a host of the stack, or the bastion."""

    name: str  # "db", "app1", "proxy", "bastion"
    path: str  # its key path in the config: "database", "appServers[0]", "ssh.bastion"
    address: str
    port: int


@dataclass(frozen=True)
class HostConfig:
    """A server: `address` is how SSH reaches it, `private_address` how peers reach it."""

    address: str = setting("address", SSH_ADDRESS, REQUIRED,
                           "How SSH reaches the server: IPv4 address or DNS name.")
    private_address: str = setting(
        "privateAddress", IPV4, REQUIRED,
        "The server's address on the private network, used by its peers and firewalls.")
    ssh_port: Optional[int] = setting("sshPort", Port(), Derived("`ssh.port`"),
                                      "SSH port of this host.")
    name: str = ""  # "db", "proxy", "app1"..: used in resource names (set by the parser)


@dataclass(frozen=True)
class AppServerConfig(HostConfig):
    name: str = setting(
        "name", Text(rules.host_name_problem), REQUIRED,
        "Stable name of the server (`[a-z0-9-]`, unique): its resources are named after it, "
        "so adding or removing another server never touches this one.",
        missing="is required: resources are named after it, so it must not change when "
                "other servers come and go (a stack deployed before names were required: "
                "write the name each server has now, app1, app2, … in list order)")


def _ipv4(value: str) -> str:
    return str(ipaddress.IPv4Address(value))


@dataclass(frozen=True)
class DatabaseConfig:
    address: Optional[str] = setting(
        "address", SSH_ADDRESS, Conditional("required unless `database.stack`"),
        "How SSH reaches the DB server: IPv4 address or DNS name.")
    private_address: Optional[str] = setting(
        "privateAddress", IPV4, Conditional("required unless `database.stack`"),
        "The DB's address on the private network: PostgreSQL listens only here.")
    ssh_port: Optional[int] = setting("sshPort", Port(), Derived("`ssh.port`"),
                                      "SSH port of this host.")
    name: str = setting("name", Text(rules.sql_identifier_problem), "django",
                        "Database name (`[a-z_][a-z0-9_]*`, at most 63, no SQL keyword).")
    user: str = setting("user", Text(rules.db_user_problem), "django",
                        "Database role (same rules; not `postgres`, not `pg_*`).")
    port: int = setting("port", Port(), 5432, "PostgreSQL port.")
    max_connections: int = setting(
        "maxConnections", Integer(minimum=1, maximum=262143), 100,
        "PostgreSQL `max_connections` (a change restarts PostgreSQL). Checked before anything "
        "is created: (`appServers` + `database.allowedClients`) × `app.workers` + 1 for the "
        "release must fit in it, less the 3 PostgreSQL keeps for superusers.")
    postgres_version: Optional[str] = setting(
        "postgresVersion", Text(rules.postgres_version_problem, numbers=True), None,
        "Major version to install, from the database host's distribution (PostgreSQL's own "
        "apt repository, PGDG, is not used): `\"14\"` (Ubuntu 22.04), `\"15\"` (Debian 12), "
        "`\"16\"` (Ubuntu 24.04) or `\"17\"` (Debian 13). Other versions are refused here; "
        "one the host's distribution does not ship fails the install step, naming this key "
        "and the version it ships. `null` = the distribution's `postgresql` package.")
    stack: Optional[str] = setting(
        "stack", Text(rules.stack_name_problem), None,
        "`org/project/stack` of another djscale stack whose database to use "
        "(StackReference; with `pulumi login --local` the org is always `organization`); "
        "then set no other `database.*` key.")
    allowed_clients: tuple[str, ...] = setting(
        "allowedClients", ListOf(Text(rules.client_address_problem, normalize=_ipv4),
                                 doc="list of strings (IPv4)"), (),
        "Only on the stack that owns the database: private addresses of other stacks' app "
        "servers (stacks whose `database.stack` names this one). Each gets a "
        "`hostssl ... /32 scram-sha-256` pg_hba line and a 5432 firewall rule, like this "
        "stack's own app servers. One host per entry, private, no duplicates, not one of this stack's own "
        "hosts; not allowed together with `database.stack`.")

    @property
    def host(self) -> Optional[HostConfig]:
        """The server to deploy PostgreSQL on; None when the database is another stack's."""
        if self.stack is not None:
            return None
        return HostConfig(address=self.address, private_address=self.private_address,
                          ssh_port=self.ssh_port, name="db")


@dataclass(frozen=True)
class ImagesConfig:
    app_base: str = setting("appBase", IMAGE, "python:3.12-slim",
                            "Base image of the app's Dockerfile (`BASE_IMAGE`).")
    nginx: str = setting(
        "nginx", IMAGE, "nginx:1.30",
        "nginx image on the proxy: nginx 1.25.1 or later (the config says `http2 on;`). The "
        "default is nginx.org's stable branch; its tag follows the branch's security "
        "releases. Pin an exact image with a digest: `nginx:1.30@sha256:<64 hex>`.")
    certbot: str = setting(
        "certbot", IMAGE, "certbot/certbot:v5.10.0",
        "Certbot image on the proxy (also pinnable by `@sha256:` digest).")
    platform: str = setting(
        "platform", Text(rules.platform_problem), "linux/amd64",
        "Platform the app image is built for: the app servers' (`uname -m` x86_64 = "
        "`linux/amd64`, aarch64 = `linux/arm64`). Explicit, so the image never depends on "
        "the laptop that deploys; a server of another platform refuses the build.")


@dataclass(frozen=True)
class SuperuserConfig:
    """Which of the two is the login is the user model's to say (its `USERNAME_FIELD`, read
    by the release), not config's: it cannot disagree with the model."""

    username: str = setting(
        "username", Text(rules.django_username_problem), "admin",
        "The Django superuser the first release creates (password: the `adminPassword` "
        "output). Its login with Django's own user model (`USERNAME_FIELD` "
        "`username`); with a model that logs in by email, `email` is the login.")
    email: str = setting(
        "email", Text(rules.email_problem), REQUIRED,
        "Its email, and its login when the user model's `USERNAME_FIELD` is `email`. The "
        "release reads `USERNAME_FIELD` and checks for the superuser by that field (emails "
        "without case): each release after the first finds it and creates nothing.")


@dataclass(frozen=True)
class AppConfig:
    source: str = setting(
        "source", Text(), "assets/app",
        "The Django project's directory: the image's build context, relative to the Pulumi "
        "project directory or absolute. The deploy uploads what `docker build` would send "
        "from it (its `.dockerignore` applies) and builds there; djscale itself reads no "
        "file of it (README, Using your own Django project).")
    dockerfile: str = setting(
        "dockerfile", Text(rules.dockerfile_path_problem), "Dockerfile",
        "The project's Dockerfile, a path inside `app.source`. Built with BuildKit (`RUN "
        "--mount`, `COPY --chmod`, heredocs), with `--build-arg BASE_IMAGE=` "
        "`images.appBase`; a `<Dockerfile>.dockerignore` beside it takes the place of "
        "`.dockerignore`, as BuildKit reads it.")
    superuser: SuperuserConfig = setting("superuser", Object(SuperuserConfig), REQUIRED,
                                         "The Django superuser.")
    port: int = setting(
        "port", Integer(minimum=1, maximum=65534), 8000,
        "Host port of the app on each app server's private address (the proxy's upstream), "
        "not the port the image listens on (`app.containerPort`). A release starts the new "
        "container beside the running one, on the other of two ports: `app.port` and "
        "`app.port + 1`; nginx switches once it is healthy. Neither may be an SSH port of "
        "any host (`ssh.port`, a `sshPort`) or `database.port`.")
    container_port: int = setting(
        "containerPort", Port(), 8000,
        "The port the app's image listens on inside its container (the bundled image's "
        "gunicorn binds 8000); the healthcheck calls it there.")
    workers: int = setting(
        "workers", Integer(minimum=1), 3,
        "gunicorn sync workers per app server; each serves one request at a time and keeps "
        "at most one database connection. Explicit, so the connection budget "
        "(`database.maxConnections`) is checked before deploying: the app image's own "
        "default, 2 × cores + 1, is known only on each server. 3 suits one core; raise it "
        "for bigger servers (and `database.maxConnections` with it). With `database.stack`, "
        "at most what that stack counts per client (its `app.workers`).")
    extra_allowed_hosts: tuple[str, ...] = setting(
        "extraAllowedHosts", ListOf(Text(rules.allowed_host_problem, normalize=str.lower),
                                    doc="list of strings"), (),
        "Extra Django `ALLOWED_HOSTS` (host names, `.domain` patterns or IPv4; not `*`), for "
        "requests that reach the app some other way: djscale's nginx answers only `domain` "
        "and `domainAliases` (any other name gets no answer), so a name the site should be "
        "served under belongs in `domainAliases`.")
    debug: bool = setting("debug", Flag(), False, "Django `DEBUG`. Never in production.")
    log_level: str = setting("logLevel", Text(rules.log_level_problem), "INFO",
                             "`DEBUG`, `INFO`, `WARNING`, `ERROR` or `CRITICAL`.")
    env_names: EnvNamesConfig = setting(
        "envNames", Object(EnvNamesConfig), REQUIRED,
        "The environment variable name(s) the project reads each value djscale provides "
        "under: a name, a list of names, or `[]` (not written). The defaults are the "
        "bundled app's names (components/config/env_contract.py).")
    debug_values: DebugValuesConfig = setting(
        "debugValues", Object(DebugValuesConfig), REQUIRED,
        "How `app.debug` is spelled in the environment.")
    env: tuple[tuple[str, str], ...] = setting(
        "env", MapOf(ENV_VALUE, doc="object", key_rule=rules.env_name_problem), (),
        "The project's own plain settings and constants, `{NAME: value}` "
        "(`DATABASE_ENGINE: postgresql`, `EMAIL_HOST: smtp.example.com`), in every app "
        "container and the release. Secrets belong in `appSecrets`. A name djscale writes "
        "(`app.envNames`, the release's `DJANGO_SUPERUSER_*`) is refused.")

    @property
    def source_dir(self) -> Path:
        """`source` as a path: relative ones start at the Pulumi project directory."""
        return PROJECT_DIR / self.source  # an absolute `source` stays itself

    release: str = setting(
        "release", Text(rules.app_release_problem), "current",
        "The image the app servers run. `current`: the image built from `app.source`. "
        "`previous`: the release that ran before the newest one built from the source (read "
        "from the first app server's `/var/lib/djscale/releases`); or an image id "
        "`sha256:…` (`python -m components.ops status` lists them). A pinned release is not "
        "built: the first app server must still hold it (it keeps the previous image), and it "
        "rolls out like any release (health gate, drain); its release step runs "
        "`migrate --check` and `collectstatic`, never a migration (README, Operations: roll "
        "back).")

    @property
    def pinned_release(self) -> bool:
        """A release named by the stack (`previous` or an image id), not built."""
        return self.release != "current"


@dataclass(frozen=True)
class RolloutConfig:
    batch_size: str = setting(
        "batchSize", Text(rules.batch_size_problem, numbers=True), "25%",
        "How many app servers start a release's container at once: a count (`2`) or a "
        "percentage of the app servers (`25%`, rounded up, at least one). Each server starts "
        "the new container beside the running one and keeps serving meanwhile, so a batch "
        "costs CPU and memory, not capacity; with a percentage the number of batches, and "
        "the deploy's critical path, does not grow with the number of servers.")

    def servers_per_batch(self, servers: int) -> int:
        value = self.batch_size
        if value.endswith("%"):
            return max(1, -(-servers * int(value[:-1]) // 100))
        return min(servers, int(value))


@dataclass(frozen=True)
class StaticStorageConfig:
    bucket: str = setting("bucket", Text(rules.bucket_problem), REQUIRED,
                          "Bucket for static files (S3 naming rules).")
    access_key_id: str = setting(
        "accessKeyId", Text(rules.access_key_id_problem), REQUIRED,
        "Access key id (3-128 letters, digits and `._-@+`: AWS, Spaces, MinIO); its secret is "
        "`staticStorageSecretKey`.")
    endpoint_url: Optional[str] = setting(
        "endpointUrl", Text(rules.http_url_problem, doc="string (http/https URL)"), None,
        "S3-compatible endpoint (MinIO, Spaces); `null` = AWS S3.")
    region: str = setting("region", Text(rules.region_problem), "us-east-1", "Region name.")
    path_style: bool = setting("pathStyle", Flag(), False, "Path-style addressing (MinIO).")
    custom_domain: Optional[str] = setting(
        "customDomain", Text(rules.custom_domain_problem), None,
        "Host (and optional path) static URLs use instead of the endpoint, without scheme "
        "(a CDN, or `s3.example.com/bucket`).")
    public_read_acl: bool = setting(
        "publicReadAcl", Flag(), True,
        "Upload with `public-read` ACL; `false` when a bucket policy makes objects readable.")


def _cidr(value: str) -> str:
    return rules.cidr_problem(value)[0]


@dataclass(frozen=True)
class FirewallConfig:
    admin_cidrs: tuple[str, ...] = setting(
        "adminCidrs", ListOf(Text(lambda v: rules.cidr_problem(v)[1], normalize=_cidr),
                             doc="list of strings (IPv4 or IPv6 CIDR)",
                             empty="at least one CIDR is required "
                                   "(the networks allowed to connect over SSH)"),
        REQUIRED,
        "Networks allowed to SSH to every host, IPv4 or IPv6 (`198.51.100.0/24`, "
        "`2001:db8:1::/48`; a bare address = one host). SSH over IPv6 is closed unless an "
        "IPv6 network is listed. `0.0.0.0/0` or `::/0` is accepted if you write it: key-only "
        "SSH open to all, IPv4 and IPv6.",
        missing="is required (the networks allowed to connect over SSH)")


@dataclass(frozen=True)
class NginxConfig:
    connect_timeout: str = setting(
        "connectTimeout", NGINX_TIME, "200ms",
        "`proxy_connect_timeout`: how long an app server that stopped answering (packets "
        "dropped, not refused) can stall a request before nginx tries the next one; with "
        "`maxFails: 0` every request nginx picks it for pays this wait until `hostChecks` "
        "takes the host out (2 to 3 s). On a private network "
        "a connection takes well under a millisecond and a lost SYN is resent only after 1 s, "
        "so 200 ms is plenty for a healthy server and keeps the stall short; the request, "
        "not yet sent, goes to the next server whatever its method.")
    read_timeout: str = setting("readTimeout", NGINX_TIME, "30s", "`proxy_read_timeout`.")
    send_timeout: str = setting("sendTimeout", NGINX_TIME, "30s", "`proxy_send_timeout`.")
    next_upstream_timeout: str = setting(
        "nextUpstreamTimeout", NGINX_TIME, "5s",
        "`proxy_next_upstream_timeout`: a request is passed to the next app server only within "
        "this time of its start. Longer than `connectTimeout` (a server that takes no "
        "connection is skipped) and shorter than `readTimeout` and `sendTimeout` (a server too "
        "busy to answer in time gets 504, not its request sent on to load the others).")
    client_max_body_size: str = setting("clientMaxBodySize", NGINX_SIZE, "10m",
                                        "`client_max_body_size` (`512k`, `10m`, `1g`).")
    client_header_timeout: str = setting(
        "clientHeaderTimeout", NGINX_TIME, "10s",
        "`client_header_timeout`: a client has this long to send its request headers (nginx's "
        "default is 60 s), so slow or idle connections are closed early.")
    client_body_timeout: str = setting(
        "clientBodyTimeout", NGINX_TIME, "10s",
        "`client_body_timeout`: the longest pause between two reads of a request body (not "
        "the time for the whole upload).")
    request_rate: str = setting(
        "requestRate", NGINX_RATE, "10r/s",
        "Requests per client address, for every request (`limit_req`; `10r/s` or `600r/m`). "
        "Beyond it and `requestBurst` the client gets 429. Static files come from the bucket, "
        "so a page is one or two requests; raise it when many users share one address (an "
        "office behind NAT).")
    request_burst: int = setting(
        "requestBurst", Integer(minimum=0), 20,
        "Requests a client may send above `requestRate` at once before it gets 429 (`burst`, "
        "served without delay).")
    connections_per_client: int = setting(
        "connectionsPerClient", Integer(minimum=1), 10,
        "Requests in progress at once per client address (`limit_conn`; each HTTP/2 stream "
        "counts); beyond it, 429. Bounds how many app workers one client can hold.")
    login_paths: tuple[str, ...] = setting(
        "loginPaths", ListOf(Text(rules.url_path_problem), doc="list of strings (URL paths)"),
        ("/admin/login/",),
        "Exact paths where a request other than GET or HEAD is a login attempt: each costs the "
        "app one password hash (PBKDF2, a sync worker busy for a large fraction of a second). "
        "They get the `loginRate` limit besides `requestRate`. `[]`: no login limit.")
    login_rate: str = setting(
        "loginRate", NGINX_RATE, "6r/m",
        "Login attempts (see `loginPaths`) per client address: one every 10 s, so no single "
        "address can keep the app's workers hashing passwords. Beyond it and `loginBurst`, 429.")
    login_burst: int = setting(
        "loginBurst", Integer(minimum=0), 5,
        "Login attempts above `loginRate` at once before 429 (a person mistyping a password "
        "a few times never sees it).")
    max_fails: int = setting(
        "maxFails", Integer(minimum=0), 0,
        "Upstream `max_fails`: failed requests after which nginx leaves an app server alone "
        "for `failTimeout`. `0`: never. nginx counts a read timeout from a busy server like a "
        "refused connection from a dead one, so with `1` an overload takes healthy servers out "
        "one after another until the site answers 502 to everyone; with `0` a dead server is "
        "still skipped for each request (refused at once, or after `connectTimeout` for a host "
        "that is gone), and `hostChecks` takes a host that is gone out within 2 to 3 s.")
    fail_timeout: str = setting("failTimeout", NGINX_TIME, "10s",
                                "Upstream `fail_timeout` (used when `maxFails` is above 0).")
    host_checks: bool = setting(
        "hostChecks", Flag(), True,
        "Active checks of the app servers from the proxy (`djscale-upstream-watch`): one TCP "
        "handshake per server a second; after two failed in a row (a host that is gone, or "
        "refuses), nginx's connections to it are refused on the proxy itself, so no request "
        "waits `connectTimeout` for it; after two good ones it is back. A handshake does not "
        "depend on how busy the app is, so an overload takes nobody out, and when every "
        "server fails none is cut off. `false`: no watcher (a silent host costs "
        "`connectTimeout` on its share of requests until it is back or removed).")
    upstream_keepalive: int = setting(
        "upstreamKeepalive", Integer(minimum=0), 0, "Upstream keepalive connections; keep `0` "
        "for gunicorn sync workers (they close every connection).")
    proxy_buffering: bool = setting(
        "proxyBuffering", Flag(), True,
        "Buffer app responses in nginx (`proxy_buffering`): a slow client then holds no "
        "gunicorn worker. `false` streams each response as the app writes it (server-sent "
        "events, long downloads), at the cost of a worker per slow client.")
    hsts_preload: bool = setting(
        "hstsPreload", Flag(), False,
        "Send HSTS as `max-age=63072000; includeSubDomains; preload` (what hstspreload.org "
        "requires before browsers build the name into their HTTPS-only list) instead of "
        "`max-age=63072000` for this host alone. Only for a `domain` that is the registrable "
        "domain itself (`example.com`, not `www.example.com`), and only once every subdomain, "
        "internal ones included, serves valid HTTPS: once the name is on the list, browsers "
        "refuse plain HTTP for all of them, and taking it off again takes months (a browser "
        "release). Turning this off later does not undo a submission.")


@dataclass(frozen=True)
class BackupsConfig:
    enabled: bool = setting(
        "enabled", Flag(), True,
        "Back up the database this stack deploys: `pg_dump` in PostgreSQL's custom format "
        "on the database host, uploaded to S3-compatible storage on `schedule` "
        "(README, Operations). On unless set to `false`; not used with `database.stack` "
        "(that stack backs up its database).")
    bucket: Optional[str] = setting(
        "bucket", Text(rules.bucket_problem), Conditional("required while backups are on"),
        "Bucket for the backups (S3 naming rules): a bucket of their own, not the static "
        "files' (those are public).")
    prefix: str = setting(
        "prefix", Text(rules.key_prefix_problem), "backups/",
        "Key prefix of the backups in the bucket: each is `<prefix><database.name>-"
        "<UTC time>.dump` (`.dump.gpg` encrypted). Retention deletes only keys of that "
        "form.")
    access_key_id: Optional[str] = setting(
        "accessKeyId", Text(rules.access_key_id_problem),
        Conditional("required while backups are on"),
        "Access key id with rights to put, get, list and delete in the bucket; its secret "
        "is `backupStorageSecretKey`. Best a key for the backups alone.")
    endpoint_url: Optional[str] = setting(
        "endpointUrl", Text(rules.http_url_problem, doc="string (http/https URL)"), None,
        "S3-compatible endpoint (MinIO, Spaces); `null` = AWS S3.")
    region: str = setting("region", Text(rules.region_problem), "us-east-1", "Region name.")
    path_style: bool = setting("pathStyle", Flag(), False, "Path-style addressing (MinIO).")
    schedule: str = setting(
        "schedule", Text(rules.calendar_problem), "*-*-* 03:00:00",
        "When to back up: a systemd `OnCalendar=` expression in the server's time zone "
        "(`daily`, `*-*-* 03:00:00`, `Mon..Sat 02:30`, `*-*-* 00/6:00:00` every six "
        "hours). The timer is persistent: a run missed while the server was off happens "
        "at boot.")
    keep_count: int = setting(
        "keepCount", Integer(minimum=0), 14,
        "Retention: the newest this many backups are kept whatever their age. `0`: no "
        "count rule. A backup is deleted after a successful upload only when no rule "
        "keeps it; with both rules `0`, none is ever deleted.")
    keep_days: int = setting(
        "keepDays", Integer(minimum=0), 0,
        "Retention: backups younger than this many days are kept, however many. `0`: no "
        "age rule.")
    encrypt: bool = setting(
        "encrypt", Flag(), False,
        "Encrypt each backup on the database host before it is uploaded (`gpg --symmetric "
        "--cipher-algo AES256`, Debian's `gpg`) with the `backupEncryptionPassphrase` "
        "secret, so the storage provider never sees the data.")


@dataclass(frozen=True)
class MaintenanceConfig:
    enabled: bool = setting(
        "enabled", Flag(), False,
        "Maintenance mode at deploy time: the proxy answers every request with 503, the "
        "maintenance page and `Retry-After`, except requests from `firewall.adminCidrs`, "
        "which reach the app as usual; the app servers are not touched. Applied when this "
        "value changes; in between, `sudo djscale-maintenance on|off` on the proxy switches "
        "it at once, without a deploy (README, Operations).")
    page: Optional[str] = setting(
        "page", Text(), None,
        "HTML file of the maintenance page on the operator's machine (relative to the "
        "project directory; `~` expanded; UTF-8, at most 1 MiB), installed on the proxy at "
        "every deploy; `null` = djscale's own page.")
    retry_after: int = setting(
        "retryAfter", Integer(minimum=1, maximum=86400), 300,
        "Seconds in the maintenance answer's `Retry-After` header: when clients (and "
        "crawlers) should try again.")


@dataclass(frozen=True)
class StackConfig:
    domain: str = setting(
        "domain", Text(rules.domain_problem, normalize=str.lower), REQUIRED,
        "Fully qualified domain name the proxy serves, without scheme or path "
        "(e.g. `www.example.com`).")
    domain_aliases: tuple[str, ...] = setting(
        "domainAliases", ListOf(Text(rules.domain_alias_problem, normalize=str.lower),
                                doc="list of strings (DNS names)"), (),
        "Other names of the site, each pointing at the proxy (e.g. the apex `example.com` "
        "beside `domain: www.example.com`). Every name is on the one certificate, proven by "
        "HTTP-01: no wildcards, no IP addresses, not `domain` again, at most 99. Adding or "
        "removing one re-issues the certificate under the same name (step "
        "`proxy-certbot-names`). Each is answered as `aliasMode` says.")
    alias_mode: str = setting(
        "aliasMode", Text(rules.alias_mode_problem), "redirect",
        "How `domainAliases` are answered. `redirect`: 301 to `https://<domain>` with the "
        "same path (one canonical name; plain HTTP first goes to https on the same name, as "
        "HSTS preloading requires); the app never sees them. `serve`: each alias serves the "
        "site like `domain`, and is in Django's `ALLOWED_HOSTS` and, as "
        "`https://<alias>`, `CSRF_TRUSTED_ORIGINS`.")
    acme: AcmeConfig = setting("acme", Object(AcmeConfig), REQUIRED,
                               "Certificates (Let's Encrypt or another ACME CA).")
    ssh: SshConfig = setting("ssh", Object(SshConfig), REQUIRED,
                             "How the program reaches every server.")
    database: DatabaseConfig = setting("database", Object(DatabaseConfig), REQUIRED,
                                       "The PostgreSQL server.")
    app_servers: tuple[AppServerConfig, ...] = setting(
        "appServers", ListOf(Object(AppServerConfig), doc="list",
                             empty="at least one app server is required"),
        REQUIRED, "The app servers, at least one.",
        missing="is required (a list of at least one app server)")
    proxy: HostConfig = setting("proxy", Object(HostConfig), REQUIRED,
                                "The nginx reverse proxy and load balancer.")
    images: ImagesConfig = setting("images", Object(ImagesConfig), REQUIRED,
                                   "Container images, overridable (e.g. a local registry).")
    app: AppConfig = setting("app", Object(AppConfig), REQUIRED, "The Django app.")
    static_storage: StaticStorageConfig = setting(
        "staticStorage", Object(StaticStorageConfig), REQUIRED,
        "S3-compatible storage for static files.")
    firewall: FirewallConfig = setting("firewall", Object(FirewallConfig), REQUIRED,
                                       "Host firewalls.")
    nginx: NginxConfig = setting("nginx", Object(NginxConfig), REQUIRED, "Proxy tuning.")
    rollout: RolloutConfig = setting("rollout", Object(RolloutConfig), REQUIRED,
                                     "How a release reaches the app servers.")
    backups: BackupsConfig = setting(
        "backups", Object(BackupsConfig, conditional_default=True), REQUIRED,
        "Database backups to S3-compatible storage (on for a stack with a database).")
    maintenance: MaintenanceConfig = setting(
        "maintenance", Object(MaintenanceConfig), REQUIRED,
        "Maintenance mode: the proxy answers 503 with a page, admin networks excepted.")
    # the names of `appSecrets` (not their values: those stay pulumi.Outputs), set by the parser
    app_secret_names: tuple[str, ...] = ()

    @property
    def certificate_names(self) -> tuple[str, ...]:
        """Every name on the site's certificate: `domain` (also the certificate's name, so
        its files stay where nginx reads them), then `domainAliases`."""
        return (self.domain, *self.domain_aliases)

    @property
    def served_names(self) -> tuple[str, ...]:
        """The names the app answers under (nginx proxies them; ALLOWED_HOSTS)."""
        return self.certificate_names if self.alias_mode == "serve" else (self.domain,)

    @property
    def redirected_names(self) -> tuple[str, ...]:
        """The aliases nginx answers with a redirect to `domain` (aliasMode: redirect)."""
        return self.domain_aliases if self.alias_mode == "redirect" else ()

    def ssh_port_for(self, host: HostConfig) -> int:
        return host.ssh_port or self.ssh.port

    def ssh_targets(self, app_paths: Optional[list[str]] = None) -> list[SshTarget]:
        """Every machine SSH reaches, in deploy order, the bastion last; `app_paths`: the app
        servers' key paths when they are not their positions (a list with invalid entries)."""
        paths = app_paths or [f"appServers[{i}]" for i in range(len(self.app_servers))]
        hosts = [("database", self.database.host)] if self.database.host else []
        hosts += [*zip(paths, self.app_servers), ("proxy", self.proxy)]
        targets = [SshTarget(host.name, path, host.address, self.ssh_port_for(host))
                   for path, host in hosts if host.address]
        bastion = self.ssh.bastion
        if bastion is not None and bastion.address:
            targets.append(SshTarget("bastion", "ssh.bastion", bastion.address, bastion.port))
        return targets

    def unpinned_targets(self) -> list[SshTarget]:
        """The machines without a key in ssh.hostKeys (connected to unchecked, if at all)."""
        return [t for t in self.ssh_targets() if self.ssh.host_key_for(t.address) is None]

    def database_connections_needed(self) -> int:
        """Connections the database must take at once: one per gunicorn worker of every
        app server it admits (this stack's and `database.allowedClients`, each counted with
        this stack's `app.workers`; `CONN_MAX_AGE` keeps them open), and the release's."""
        clients = len(self.app_servers) + len(self.database.allowed_clients)
        return clients * self.app.workers + RELEASE_CONNECTIONS

    def database_client_addresses(self) -> list[str]:
        """Every address pg_hba and the database firewall admit: this stack's app servers,
        then `database.allowedClients` (app servers of stacks that reference this one)."""
        return [*(host.private_address for host in self.app_servers),
                *self.database.allowed_clients]
