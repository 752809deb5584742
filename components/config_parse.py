"""The rules of parse_config: each section of the stack config read, checked and built.

Every problem is recorded with its key path and parsing goes on, so one run reports them all;
parse_stack_config raises one ConfigError at the end. Value rules (what makes an address, a
domain, a bucket name valid) are in config_reader; cross-host rules are in `_check_hosts`.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from typing import Optional

from components.config import (
    LOG_LEVELS, SECRET_KEYS, TOP_LEVEL_KEYS, AcmeConfig, AppConfig, BastionConfig, ConfigError,
    DatabaseConfig, FirewallConfig, HostConfig, ImagesConfig, NginxConfig, SshConfig,
    StackConfig, StaticStorageConfig, SuperuserConfig,
)
from components.config_reader import (
    NGINX_SIZE, NGINX_TIME, Problems, Section, bucket_problem, cidr_problem,
    client_address_problem, domain_problem, email_problem, host_key_problem, ipv4_problem,
    is_hostname, show, sql_identifier_problem, ssh_address_problem, stack_name_problem,
    url_problem,
)

_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_USERNAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_DJANGO_USERNAME = re.compile(r"^[\w.@+-]{1,150}$")
_POSTGRES_VERSION = re.compile(r"^\d+(\.\d+)?$")


def parse_stack_config(raw: dict, secrets_present: frozenset[str],
                       check_files: bool) -> StackConfig:
    """parse_config's work (see there); raises ConfigError with every problem found."""
    problems = Problems()
    top = Section(problems, "", raw or {}, TOP_LEVEL_KEYS + SECRET_KEYS)
    for key in SECRET_KEYS:
        if top.has(key):
            top.problem(key, f"must be set as a secret (pulumi config set --secret {key} ...), "
                             "not in plain text")

    domain = top.check("domain", top.text("domain", required=True), domain_problem)
    acme = _parse_acme(top.section("acme", ("email", "staging", "server")))
    ssh = _parse_ssh(top.section("ssh", ("user", "port", "privateKeyPath", "hostKeys", "bastion")),
                     secrets_present, check_files)
    database_section = top.section("database", (
        "address", "privateAddress", "sshPort", "name", "user", "postgresVersion", "port",
        "stack", "allowedClients"))
    database = _parse_database(database_section)
    app_servers = _parse_app_servers(top)
    proxy = _parse_host(top.section("proxy", ("address", "privateAddress", "sshPort")), "proxy")
    _check_hosts(problems, database, app_servers, proxy, ssh)
    database = _parse_allowed_clients(database_section, database, app_servers, proxy)

    images = _parse_images(top.section("images", ("appBase", "nginx", "certbot")))
    app = _parse_app(top.section("app", (
        "port", "workers", "extraAllowedHosts", "debug", "logLevel", "superuser")))
    static_storage = _parse_static_storage(top.section("staticStorage", (
        "bucket", "endpointUrl", "region", "accessKeyId", "pathStyle", "customDomain",
        "publicReadAcl")))
    if "staticStorageSecretKey" not in secrets_present:
        problems.add("staticStorageSecretKey", "required secret is missing "
                     "(pulumi config set --secret staticStorageSecretKey <value>)")
    firewall = _parse_firewall(top.section("firewall", ("adminCidrs",)))
    nginx = _parse_nginx(top.section("nginx", (
        "connectTimeout", "readTimeout", "sendTimeout", "clientMaxBodySize", "maxFails",
        "failTimeout", "upstreamKeepalive")))

    if problems:
        raise ConfigError(problems.items)
    return StackConfig(
        domain=domain.lower(), acme=acme, ssh=ssh, database=database,
        app_servers=tuple(app_servers), proxy=proxy, images=images, app=app,
        static_storage=static_storage, firewall=firewall, nginx=nginx,
    )


def _parse_acme(acme: Section) -> AcmeConfig:
    staging = acme.flag("staging", False)
    server = acme.check("server", acme.text("server"), lambda v: url_problem(v, ("https",)))
    explicit_ca = staging or acme.has("server")
    email = acme.text("email", required=not explicit_ca,
                      missing="is required unless acme.staging is true or acme.server is set")
    email = acme.check("email", email, email_problem)
    return AcmeConfig(email=email, staging=staging, server=server)


def _parse_ssh(ssh: Section, secrets_present: frozenset[str], check_files: bool) -> SshConfig:
    user = ssh.check("user", ssh.text("user", "deploy"), _unix_user_problem) or "deploy"
    port = ssh.port("port", 22)
    key_path = ssh.text("privateKeyPath")
    has_secret = "sshPrivateKey" in secrets_present
    if key_path and has_secret:
        ssh.problem("privateKeyPath", "set together with the sshPrivateKey secret; use one of them")
    elif key_path is None and not has_secret and not ssh.has("privateKeyPath"):
        ssh.problems.add("sshPrivateKey", "no SSH key: set the sshPrivateKey secret "
                         "(pulumi config set --secret sshPrivateKey < KEYFILE) or ssh.privateKeyPath")
    if key_path:
        key_path = os.path.expanduser(key_path)
        if check_files:
            ssh.check("privateKeyPath", key_path, _key_file_problem)

    host_keys = []
    for address, key in ssh.mapping("hostKeys").items():
        path = f"{ssh.at('hostKeys')}[{address!r}]"
        if not isinstance(key, str):
            ssh.problems.add(path, f"expected a string, got {show(key)}")
        elif host_key_problem(key.strip()):
            ssh.problems.add(path, host_key_problem(key.strip()))
        else:
            host_keys.append((str(address), key.strip()))

    bastion = None
    if ssh.has("bastion"):
        section = ssh.section("bastion", ("address", "port", "user"))
        bastion = BastionConfig(
            address=section.check("address", section.text("address", required=True),
                                  ssh_address_problem),
            user=section.check("user", section.text("user", user), _unix_user_problem),
            port=section.port("port", 22),
        )
    return SshConfig(user=user, port=port, private_key_path=key_path,
                     host_keys=tuple(host_keys), bastion=bastion)


def _unix_user_problem(value: str) -> Optional[str]:
    if not _USERNAME.match(value):
        return f"{show(value)} is not a valid user name"
    return None


def _key_file_problem(path: str) -> Optional[str]:
    if not os.path.exists(path):
        return f"{show(path)} does not exist"
    if not os.path.isfile(path):
        return f"{show(path)} is not a file"
    try:
        with open(path, encoding="utf-8", errors="replace") as key_file:
            head = key_file.read(4096)
    except OSError:
        return f"{show(path)} is not readable"
    if not re.search(r"-----BEGIN [A-Z ]*PRIVATE KEY-----", head):
        return f"{show(path)} is not a private key file (no '-----BEGIN ... PRIVATE KEY-----' line)"
    return None


def _parse_host(section: Section, name: str) -> HostConfig:
    return HostConfig(
        name=name,
        address=section.check("address", section.text("address", required=True),
                              ssh_address_problem),
        private_address=section.check(
            "privateAddress", section.text("privateAddress", required=True), ipv4_problem),
        ssh_port=section.port("sshPort"),
    )


def _parse_database(db: Section) -> DatabaseConfig:
    stack = db.check("stack", db.text("stack"), stack_name_problem)
    host = None
    if db.has("stack"):
        # That stack deploys the database; its outputs give address, port, name and user.
        for key in ("address", "privateAddress", "sshPort", "name", "user", "port",
                    "postgresVersion"):
            if db.has(key):
                db.problem(key, "not used when database.stack is set (the database is deployed "
                                "by that stack); remove it")
        if db.items("allowedClients"):
            db.problem("allowedClients", f"not used when database.stack is set (this stack "
                                         f"owns no database); list these addresses in "
                                         f"database.allowedClients of {stack or 'that stack'}")
    else:
        host = _parse_host(db, "db")
    name = db.check("name", db.text("name", "django"), sql_identifier_problem) or "django"
    user = db.check("user", db.text("user", "django"), _db_user_problem) or "django"
    version = db.data.get("postgresVersion")
    if _is_number(version):
        version = str(version)
    if version is not None:
        db.data["postgresVersion"] = version
    postgres_version = db.check("postgresVersion", db.text("postgresVersion"), _version_problem)
    return DatabaseConfig(host=host, name=name, user=user, port=db.port("port", 5432),
                          postgres_version=postgres_version, stack=stack)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _db_user_problem(value: str) -> Optional[str]:
    if value == "postgres":
        return "'postgres' is the PostgreSQL superuser; choose another role name"
    if value.startswith("pg_"):
        return f"{show(value)}: role names starting with pg_ are reserved by PostgreSQL"
    return sql_identifier_problem(value)


def _version_problem(value: str) -> Optional[str]:
    if not _POSTGRES_VERSION.match(value):
        return f"{show(value)} is not a PostgreSQL major version (e.g. 16)"
    return None


def _parse_app_servers(top: Section) -> list[HostConfig]:
    entries = top.items("appServers", required=True,
                        missing="is required (a list of at least one app server)",
                        empty="at least one app server is required")
    servers = []
    for index, entry in enumerate(entries):
        section = Section(top.problems, f"appServers[{index}]", entry,
                          ("address", "privateAddress", "sshPort", "name"))
        if entry is None:
            section.problems.add(section.path, "expected an object, got null")
        name = section.check("name", section.text("name"), _host_name_problem)
        servers.append(_parse_host(section, name or f"app{index + 1}"))
    return servers


def _host_name_problem(value: str) -> Optional[str]:
    if not _NAME.match(value):
        return f"{show(value)} must be lowercase letters, digits and inner hyphens"
    return None


def _check_hosts(problems: Problems, database: DatabaseConfig, app_servers: list[HostConfig],
                 proxy: HostConfig, ssh: SshConfig) -> None:
    """Across hosts: names unique, no address shared by two hosts, host keys for real hosts."""
    hosts = [("database", database.host)] if database.host else []
    hosts += [(f"appServers[{i}]", host) for i, host in enumerate(app_servers)]
    hosts.append(("proxy", proxy))

    names = {"db": "database", "proxy": "proxy"}
    for path, host in hosts[:]:
        if not path.startswith("appServers"):
            continue
        if host.name in names:
            problems.add(f"{path}.name", f"{show(host.name)} is already used by {names[host.name]}")
        else:
            names[host.name] = path

    owners: dict[str, str] = {}
    for path, host in hosts:
        for key, value in (("address", host.address), ("privateAddress", host.private_address)):
            if value is None:
                continue
            owner = owners.setdefault(value.lower(), path)
            if owner != path:
                problems.add(f"{path}.{key}", f"{show(value)} is already used by {owner}")

    reachable = {host.address.lower() for _, host in hosts if host.address}
    if ssh.bastion and ssh.bastion.address:
        reachable.add(ssh.bastion.address.lower())
    for address, _ in ssh.host_keys:
        if address.lower() not in reachable:
            problems.add(f"ssh.hostKeys[{address!r}]",
                         "not the address of any host (keys are looked up by `address`)")


def _parse_allowed_clients(db: Section, database: DatabaseConfig,
                           app_servers: list[HostConfig], proxy: HostConfig) -> DatabaseConfig:
    """database.allowedClients: other stacks' app servers, one private IPv4 host address
    each, listed once, none of them one of this stack's hosts. Returns `database` with them."""
    if database.host is None:
        return database  # database.stack is set: _parse_database reports allowedClients
    own_apps = {host.private_address: f"appServers[{i}].privateAddress"
                for i, host in enumerate(app_servers) if host.private_address}
    not_clients = {proxy.private_address: "proxy.privateAddress",
                   database.host.private_address: "database.privateAddress"}
    clients: list[str] = []
    first_index: dict[str, int] = {}
    for index, entry in enumerate(db.items("allowedClients")):
        path = f"{db.at('allowedClients')}[{index}]"
        if not isinstance(entry, str):
            db.problems.add(path, f"expected a string, got {show(entry)}")
            continue
        problem = client_address_problem(entry.strip())
        if problem:
            db.problems.add(path, problem)
            continue
        address = str(ipaddress.IPv4Address(entry.strip()))
        if address in first_index:
            db.problems.add(path, f"{show(address)} is already listed at "
                                  f"{db.at('allowedClients')}[{first_index[address]}]")
        elif address in own_apps:
            db.problems.add(path, f"{show(address)} is redundant: {own_apps[address]} of this "
                                  "stack is always admitted; remove it")
        elif address in not_clients:
            db.problems.add(path, f"{show(address)} is this stack's {not_clients[address]}; "
                                  "only app servers may reach the database")
        else:
            first_index[address] = index
            clients.append(address)
    return dataclasses.replace(database, allowed_clients=tuple(clients))


def _parse_images(images: Section) -> ImagesConfig:
    defaults = ImagesConfig()
    values = {}
    for key, attr in (("appBase", "app_base"), ("nginx", "nginx"), ("certbot", "certbot")):
        value = images.text(key, getattr(defaults, attr))
        values[attr] = images.check(key, value, _image_problem) or getattr(defaults, attr)
    return ImagesConfig(**values)


def _image_problem(value: str) -> Optional[str]:
    if re.search(r"\s", value):
        return f"{show(value)} is not an image reference"
    return None


def _parse_app(app: Section) -> AppConfig:
    hosts = []
    for index, entry in enumerate(app.items("extraAllowedHosts")):
        path = f"{app.at('extraAllowedHosts')}[{index}]"
        problem = _allowed_host_problem(entry)
        if problem:
            app.problems.add(path, problem)
        else:
            hosts.append(entry.lower())
    log_level = app.text("logLevel", "INFO")
    if log_level not in LOG_LEVELS:
        app.problem("logLevel", f"{show(log_level)} is not one of {', '.join(LOG_LEVELS)}")
    superuser = app.section("superuser", ("username", "email"))
    username = superuser.text("username", "admin")
    if not _DJANGO_USERNAME.match(username):
        superuser.problem("username", f"{show(username)} is not a valid Django user name "
                                      "(letters, digits and @.+-_, at most 150 characters)")
    email = superuser.check("email", superuser.text("email", required=True), email_problem)
    return AppConfig(
        port=app.port("port", 8000),
        workers=app.integer("workers", None, minimum=1),
        extra_allowed_hosts=tuple(hosts),
        debug=app.flag("debug", False),
        log_level=log_level,
        superuser=SuperuserConfig(username=username, email=email or ""),
    )


def _allowed_host_problem(entry) -> Optional[str]:
    if not isinstance(entry, str):
        return f"expected a string, got {show(entry)}"
    if entry == "*":
        return "'*' would accept any Host header; list the host names instead"
    name = entry[1:] if entry.startswith(".") else entry
    if is_hostname(name) or (_is_ipv4(name)):
        return None
    return f"{show(entry)} is not a host name, .domain pattern or IPv4 address"


def _is_ipv4(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
        return True
    except ValueError:
        return False


def _parse_static_storage(storage: Section) -> StaticStorageConfig:
    bucket = storage.check("bucket", storage.text("bucket", required=True), bucket_problem)
    endpoint = storage.check("endpointUrl", storage.text("endpointUrl"),
                             lambda v: url_problem(v, ("http", "https")))
    region = storage.check("region", storage.text("region", "us-east-1"), _region_problem)
    custom_domain = storage.check("customDomain", storage.text("customDomain"),
                                  _custom_domain_problem)
    return StaticStorageConfig(
        bucket=bucket,
        access_key_id=storage.text("accessKeyId", required=True),
        endpoint_url=endpoint,
        region=region or "us-east-1",
        path_style=storage.flag("pathStyle", False),
        custom_domain=custom_domain,
        public_read_acl=storage.flag("publicReadAcl", True),
    )


def _region_problem(value: str) -> Optional[str]:
    if not re.fullmatch(r"[A-Za-z0-9-]+", value):
        return f"{show(value)} is not a region name (e.g. us-east-1)"
    return None


def _custom_domain_problem(value: str) -> Optional[str]:
    host = value.split("/", 1)[0].rsplit(":", 1)[0] if "://" not in value else ""
    if not host or not (is_hostname(host) or _is_ipv4(host)):
        return (f"{show(value)} must be a host name without a scheme "
                "(e.g. cdn.example.com or s3.example.com/bucket)")
    return None


def _parse_firewall(firewall: Section) -> FirewallConfig:
    entries = firewall.items(
        "adminCidrs", required=True,
        missing="is required (the networks allowed to connect over SSH)",
        empty="at least one CIDR is required (the networks allowed to connect over SSH)")
    cidrs = []
    for index, entry in enumerate(entries):
        path = f"{firewall.at('adminCidrs')}[{index}]"
        if not isinstance(entry, str):
            firewall.problems.add(path, f"expected a string, got {show(entry)}")
            continue
        cidr, problem = cidr_problem(entry.strip())
        if problem:
            firewall.problems.add(path, problem)
        else:
            cidrs.append(cidr)
    return FirewallConfig(admin_cidrs=tuple(cidrs))


def _parse_nginx(nginx: Section) -> NginxConfig:
    defaults = NginxConfig()
    values = {}
    for key, attr in (("connectTimeout", "connect_timeout"), ("readTimeout", "read_timeout"),
                      ("sendTimeout", "send_timeout"), ("failTimeout", "fail_timeout")):
        values[attr] = _nginx_value(nginx, key, getattr(defaults, attr), NGINX_TIME,
                                    "is not an nginx time (e.g. 500ms, 1s, 2m)")
    values["client_max_body_size"] = _nginx_value(
        nginx, "clientMaxBodySize", defaults.client_max_body_size, NGINX_SIZE,
        "is not an nginx size (e.g. 512k, 10m, 1g)")
    values["max_fails"] = nginx.integer("maxFails", defaults.max_fails, minimum=0)
    values["upstream_keepalive"] = nginx.integer("upstreamKeepalive",
                                                 defaults.upstream_keepalive, minimum=0)
    return NginxConfig(**values)


def _nginx_value(nginx: Section, key: str, default: str, pattern: re.Pattern,
                 problem: str) -> str:
    value = nginx.data.get(key)
    if _is_number(value) and float(value).is_integer():
        nginx.data[key] = str(int(value))  # a bare number: seconds / bytes, as nginx reads it
    value = nginx.text(key, default)
    if not pattern.match(value):
        nginx.problem(key, f"{show(value)} {problem}")
        return default
    return value
