"""Stack configuration: parsed and validated once, at the edge, into frozen dataclasses.

Components and renderers take these objects, never `pulumi.Config`. This module does not
import pulumi: `parse_config` works on the plain mapping of a stack's config (the
`djscale:` keys of `Pulumi.<stack>.yaml`, without the namespace), so the same code serves
the program (components/stack.py turns `pulumi.Config` into that mapping), the mock tests
and the inspect command (`python -m components.render`).

Secrets never live in these dataclasses. Their *presence* is validated here
(`secrets_present`), their values stay `pulumi.Output`s in components/stack.py.

SCHEMA NOTE (the contract between modules; keep in step with Pulumi.yaml and README):

    domain: str                       FQDN served by the proxy
    acme:    {email, staging=false, server=null}
    ssh:     {user="deploy", port=22, privateKeyPath=null, hostKeys={}, bastion=null}
             secret key `sshPrivateKey` (top level) OR ssh.privateKeyPath
             bastion: {address, port=22, user=<ssh.user>}
    database:{address, privateAddress, name="django", user="django", postgresVersion=null,
              port=5432, stack=null, allowedClients=[]}
             postgresVersion null = the distribution's default `postgresql` package
             stack: "org/project/stack" -> DB outputs come from that stack (StackReference);
                    then address/privateAddress of this stack describe nothing to deploy.
             allowedClients: IPv4 private addresses of app servers of OTHER stacks (those
                    whose database.stack names this one): admitted by pg_hba and the DB
                    firewall beside this stack's own app servers.
    appServers: [{address, privateAddress, sshPort=null, name=null}]  (>= 1)
    proxy:   {address, privateAddress, sshPort=null}
    images:  {appBase="python:3.12-slim", nginx="nginx:1.27", certbot="certbot/certbot:v2.11.0"}
    app:     {port=8000, workers=null, extraAllowedHosts=[], debug=false, logLevel="INFO",
              superuser: {username="admin", email}}
    staticStorage: {bucket, endpointUrl=null, region="us-east-1", accessKeyId,
                    pathStyle=false, customDomain=null, publicReadAcl=true}
             secret key `staticStorageSecretKey` (top level)
    firewall: {adminCidrs: [..] (>= 1)}
    nginx:   {connectTimeout="1s", readTimeout="30s", sendTimeout="30s",
              clientMaxBodySize="10m", maxFails=1, failTimeout="10s", upstreamKeepalive=0}

VALIDATION DECISIONS (each problem is reported as `<key path>: <what is wrong>`):
- `address` (how SSH reaches a host) may be an IPv4 address or a DNS name; `privateAddress`
  (what peers, pg_hba, nginx and ufw use) must be an IPv4 address. IPv6 is not supported.
  Loopback, unspecified and multicast addresses are rejected. No address or private address
  may belong to two hosts (one host may use the same value for both).
- `domain` is a lowercase-normalized FQDN without scheme, path or trailing dot.
- `acme.email` is required unless `acme.staging` is true or `acme.server` is set;
  `acme.server` must be an https:// URL.
- SSH key: exactly one of the `sshPrivateKey` secret or `ssh.privateKeyPath` (`~` expanded;
  with check_files the file must exist, be readable and contain a PRIVATE KEY block).
  `ssh.hostKeys` maps a host's `address` (or the bastion's) to `<type> <base64>`.
- `firewall.adminCidrs` needs >= 1 IPv4 network; a bare address means /32; networks with
  host bits set are rejected. `0.0.0.0/0` is accepted (SSH open to all, key-only login):
  there is no default, so it is always an explicit choice.
- `database.stack` ("org/project/stack"): the database comes from that stack (its outputs
  give address, port, name, user, password), so no other `database.*` key may be set here.
- `database.allowedClients` belongs to the stack that owns the database: each entry one IPv4
  host address (a network would repeat the runbook's whole-/24 pg_hba line), listed once, and
  neither one of this stack's app servers (always admitted: redundant) nor its proxy or
  database host (the proxy must never reach the database).
- Objects and lists may be given as JSON strings (as `pulumi.Config.get` returns them).
  Integers and booleans also accept their string forms ("22", "true"), as `pulumi config
  set --path` may store them. Unknown keys are errors, with a did-you-mean suggestion.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Optional


class ConfigError(ValueError):
    """All problems with a stack's config, one per line, each naming its key path."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__(
            "invalid djscale stack config:\n" + "\n".join(f"  - {p}" for p in self.problems)
        )


SECRET_KEYS = ("sshPrivateKey", "staticStorageSecretKey")


@dataclass(frozen=True)
class AcmeConfig:
    email: Optional[str]
    staging: bool = False
    server: Optional[str] = None  # overrides staging/production Let's Encrypt directory

    @property
    def directory_url(self) -> str:
        if self.server:
            return self.server
        if self.staging:
            return "https://acme-staging-v02.api.letsencrypt.org/directory"
        return "https://acme-v02.api.letsencrypt.org/directory"


@dataclass(frozen=True)
class BastionConfig:
    address: str
    user: str
    port: int = 22


@dataclass(frozen=True)
class SshConfig:
    user: str = "deploy"
    port: int = 22
    private_key_path: Optional[str] = None  # else the `sshPrivateKey` secret
    host_keys: tuple[tuple[str, str], ...] = ()  # (address, "ssh-ed25519 AAAA...") pairs
    bastion: Optional[BastionConfig] = None

    def host_key_for(self, address: str) -> Optional[str]:
        return dict(self.host_keys).get(address)


@dataclass(frozen=True)
class HostConfig:
    """A server: `address` is how SSH reaches it, `private_address` how peers reach it."""

    name: str  # "db", "app1".., "proxy": used in resource names
    address: str
    private_address: str
    ssh_port: Optional[int] = None  # overrides ssh.port for this host


@dataclass(frozen=True)
class DatabaseConfig:
    host: Optional[HostConfig]  # None when `stack` is set
    name: str = "django"
    user: str = "django"
    port: int = 5432
    postgres_version: Optional[str] = None
    stack: Optional[str] = None
    # app servers of stacks that take this database through database.stack
    allowed_clients: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImagesConfig:
    app_base: str = "python:3.12-slim"
    nginx: str = "nginx:1.27"
    certbot: str = "certbot/certbot:v2.11.0"


@dataclass(frozen=True)
class SuperuserConfig:
    username: str = "admin"
    email: str = ""


@dataclass(frozen=True)
class AppConfig:
    port: int = 8000
    workers: Optional[int] = None  # None: the image's default (2 x cores + 1)
    extra_allowed_hosts: tuple[str, ...] = ()
    debug: bool = False
    log_level: str = "INFO"
    superuser: SuperuserConfig = field(default_factory=SuperuserConfig)


@dataclass(frozen=True)
class StaticStorageConfig:
    bucket: str
    access_key_id: str
    endpoint_url: Optional[str] = None  # None: AWS S3
    region: str = "us-east-1"
    path_style: bool = False  # True for MinIO
    custom_domain: Optional[str] = None
    public_read_acl: bool = True  # False: the bucket policy makes objects readable


@dataclass(frozen=True)
class FirewallConfig:
    admin_cidrs: tuple[str, ...]


@dataclass(frozen=True)
class NginxConfig:
    connect_timeout: str = "1s"
    read_timeout: str = "30s"
    send_timeout: str = "30s"
    client_max_body_size: str = "10m"
    max_fails: int = 1
    fail_timeout: str = "10s"
    upstream_keepalive: int = 0  # >0 only for workers that keep connections (not gunicorn sync)


@dataclass(frozen=True)
class StackConfig:
    domain: str
    acme: AcmeConfig
    ssh: SshConfig
    database: DatabaseConfig
    app_servers: tuple[HostConfig, ...]
    proxy: HostConfig
    images: ImagesConfig
    app: AppConfig
    static_storage: StaticStorageConfig
    firewall: FirewallConfig
    nginx: NginxConfig = field(default_factory=NginxConfig)

    def ssh_port_for(self, host: HostConfig) -> int:
        return host.ssh_port or self.ssh.port

    def database_client_addresses(self) -> list[str]:
        """Every address pg_hba and the database firewall admit: this stack's app servers,
        then `database.allowedClients` (app servers of stacks that reference this one)."""
        return [*(host.private_address for host in self.app_servers),
                *self.database.allowed_clients]


TOP_LEVEL_KEYS = (
    "domain", "acme", "ssh", "database", "appServers", "proxy", "images", "app",
    "staticStorage", "firewall", "nginx",
)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def parse_config(raw: dict, secrets_present: Iterable[str] = frozenset(),
                 check_files: bool = True) -> StackConfig:
    """Parse the stack's `djscale:` mapping (namespace stripped, camelCase keys).

    `secrets_present` names the SECRET_KEYS that are set. Raises ConfigError listing every
    problem, each prefixed by its key path (`appServers[1].address: ...`).
    `check_files=False` skips filesystem checks (the key file), for inspect/mocks.
    """
    # The rules live in config_parse, which builds the dataclasses above: import it here,
    # not at the top, so that both modules can name each other.
    from components.config_parse import parse_stack_config

    return parse_stack_config(raw, frozenset(secrets_present), check_files)
