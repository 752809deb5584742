"""parse_config: the stack's raw config in, a StackConfig out, or every problem at once.

Each key is read by its own declaration (components/config/schema.py); what is left here
are the rules that involve more than one key: a conditionally required key, the SSH key
given once, host names and addresses unique across hosts, a pinned host key for every host
and the bastion (or the explicit `ssh.insecureSkipHostKeyCheck`, and its warning),
`database.allowedClients` against this stack's own hosts, the database's connection budget
(`database.maxConnections` against `appServers` × `app.workers`), the app's two host ports
against every SSH port and the database's, the project's directory and Dockerfile, the env
contract's names (one variable, one value: `app.envNames`, `app.env`, `appSecrets`), and
nginx's retry window between its timeouts.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from . import rules
from .keys import Reading, declared_keys, read_section
from .reader import ConfigError, Problems, Section, decode_json
from .rules import show
from .env_contract import SUPERUSER_NAMES
from .schema import (RELEASE_CONNECTIONS, SECRET_KEYS, SECRETS,
                     SUPERUSER_RESERVED_CONNECTIONS, AcmeConfig, AppConfig, AppServerConfig,
                     BackupsConfig, DatabaseConfig, HostConfig, MaintenanceConfig, NginxConfig,
                     Secret, SshConfig, StackConfig)

# How an operator pins the hosts' keys (components/hostkeys.py), named in the problems.
PIN_COMMAND = "python -m components.hostkeys --stack <stack>"

# Problems are listed in this order of top-level keys (secrets beside what they belong to).
TOP_LEVEL_KEYS = tuple(key.name for _, key in declared_keys(StackConfig))
PROBLEM_ORDER = ["domain", "domainAliases", "aliasMode", "acme", "ssh", "sshPrivateKey",
                 "database", "backups", "backupStorageSecretKey", "backupEncryptionPassphrase",
                 "appServers", "proxy", "images", "app", "appSecrets", "staticStorage",
                 "staticStorageSecretKey", "firewall", "nginx", "rollout", "maintenance"]
APP_SECRETS = next(secret for secret in SECRETS if secret.name == "appSecrets")


def parse_config(raw: dict, secrets_present: Iterable[str] = frozenset(),
                 check_files: bool = True,
                 secret_values: Optional[Mapping[str, str]] = None, *,
                 require_host_keys: bool = True) -> StackConfig:
    """Parse the stack's `djscale:` mapping (namespace stripped, camelCase keys).

    `secrets_present` names the SECRET_KEYS that are set, and each entry of a map of
    secrets as its path (`appSecrets.SENTRY_DSN`). Raises ConfigError listing every
    problem, each prefixed by its key path (`appServers[1].address: ...`).
    `check_files=False` skips filesystem checks (the key file), for inspect and mocks;
    `app.source` is checked whatever it says (every plan lists the project's files).
    `secret_values`: the secrets' values where the program has them (components/stack.py),
    only to check them by their declared rule; they go into nothing that is returned, and no
    problem text shows them.
    `require_host_keys=False` lets hosts be unpinned: for the command that pins them.
    """
    problems = Problems()
    reading = Reading(problems, BUILDERS, frozenset(secrets_present), check_files,
                      require_host_keys)
    top = Section(problems, "", raw or {}, TOP_LEVEL_KEYS + SECRET_KEYS)
    for secret in SECRETS:
        if secret.map:
            continue  # _map_secret_names
        key = secret.name
        if top.has(key):
            top.problem(key, f"must be set as a secret (pulumi config set --secret {key} ...), "
                             "not in plain text")
            # given, only not as a secret: say that once, not also that it is missing
            reading.secrets_present = reading.secrets_present | {key}
        value = (secret_values or {}).get(key)
        problem = secret.rule(value) if secret.rule and value else None
        if problem:
            problems.add(key, problem)
    values = read_section(top, StackConfig, reading)
    values["app_secret_names"] = _map_secret_names(APP_SECRETS, top, reading, secret_values or {})
    stack = _build_stack(values, top, reading)
    if problems:
        raise ConfigError(problems.sorted_by(PROBLEM_ORDER))
    return stack


def _map_secret_names(secret: Secret, top: Section, reading: Reading,
                      secret_values: Mapping[str, Any]) -> tuple[str, ...]:
    """The names of a map of secrets (`appSecrets`), from the secret paths present
    (`appSecrets.SENTRY_DSN`), each an environment variable name; its value, where the
    program has it, checked without being shown. An entry in plain text is refused by name."""
    plain = decode_json(top.data.get(secret.name), dict)
    command = f"pulumi config set --secret --path '{secret.name}.<NAME>' ..."
    if isinstance(plain, dict):
        for name in plain:
            reading.problems.add(f"{secret.name}[{str(name)!r}]", (
                f"must be set as a secret (pulumi config set --secret --path "
                f"'{secret.name}.{name}' ...), not in plain text"))
    elif plain is not None:
        reading.problems.add(secret.name, f"must be a map of secrets, each set with {command}")
    names = []
    prefix = f"{secret.name}."
    for path in sorted(reading.secrets_present):
        if not path.startswith(prefix):
            continue
        name = path[len(prefix):]
        entry = f"{secret.name}[{name!r}]"
        problem = rules.text_problem(name) or rules.env_name_problem(name)
        value = secret_values.get(path)
        if problem:
            reading.problems.add(entry, problem)
        elif value is not None and not isinstance(value, str):
            reading.problems.add(entry, "expected a string; the value is not shown (it is a "
                                        "secret)")
        elif value is not None and secret.rule and secret.rule(value):
            reading.problems.add(entry, secret.rule(value))
        else:
            names.append(name)
    return tuple(names)


def _build_stack(values: dict, top: Section, reading: Reading) -> StackConfig:
    if "staticStorageSecretKey" not in reading.secrets_present:
        reading.problems.add("staticStorageSecretKey", "required secret is missing "
                             "(pulumi config set --secret staticStorageSecretKey <value>)")
    apps = values["app_servers"]
    values["app_servers"] = tuple(
        dataclasses.replace(host, name=host.name or f"app{index + 1}")
        for host, index in zip(apps, apps.indexes))
    values["proxy"] = dataclasses.replace(values["proxy"], name="proxy")
    stack = StackConfig(**values)
    app_paths = [f"appServers[{i}]" for i in apps.indexes]
    _check_domain_aliases(reading.problems, stack, values["domain_aliases"])
    _check_hosts(reading.problems, stack, app_paths)
    if reading.require_host_keys:
        _check_host_keys_pinned(reading.problems, stack, app_paths, _pinned_as_written(top))
    stack = dataclasses.replace(stack, database=_check_allowed_clients(
        reading.problems, stack, top.data.get("database")))
    stack = dataclasses.replace(stack, backups=_check_backups(reading, stack,
                                                              top.data.get("backups")))
    _check_connection_budget(reading.problems, stack)
    _check_app_ports(reading.problems, stack, app_paths)
    _check_app_env(reading.problems, stack)
    _check_batch_size(reading.problems, stack)
    return stack


def _build_acme(values: dict, acme: Section, reading: Reading) -> AcmeConfig:
    if not (values["staging"] or acme.has("server") or acme.has("email")):
        acme.problem("email", "is required unless acme.staging is true or acme.server is set")
    return AcmeConfig(**values)


def _build_ssh(values: dict, ssh: Section, reading: Reading) -> SshConfig:
    key_path = values["private_key_path"]
    has_secret = "sshPrivateKey" in reading.secrets_present
    if key_path and has_secret:
        ssh.problem("privateKeyPath", "set together with the sshPrivateKey secret; use one of them")
    elif not has_secret and not ssh.has("privateKeyPath"):
        reading.problems.add("sshPrivateKey", "no SSH key: set the sshPrivateKey secret "
                             "(pulumi config set --secret sshPrivateKey < KEYFILE) "
                             "or ssh.privateKeyPath")
    if key_path:
        key_path = os.path.expanduser(key_path)
        problem = rules.key_file_problem(key_path) if reading.check_files else None
        if problem:
            ssh.problem("privateKeyPath", problem)
    bastion = values["bastion"]
    if bastion is not None and bastion.user is None:
        bastion = dataclasses.replace(bastion, user=values["user"])
    return SshConfig(**{**values, "private_key_path": key_path, "bastion": bastion})


def _build_database(values: dict, db: Section, reading: Reading) -> DatabaseConfig:
    if db.has("stack"):  # that stack deploys the database; its outputs give the rest
        for _, key in declared_keys(DatabaseConfig):
            if key.name not in ("stack", "allowedClients") and db.has(key.name):
                db.problem(key.name, "not used when database.stack is set (the database is "
                                     "deployed by that stack); remove it")
        if values["allowed_clients"] or db.data.get("allowedClients"):
            db.problem("allowedClients", f"not used when database.stack is set (this stack "
                                         f"owns no database); list these addresses in "
                                         f"database.allowedClients of "
                                         f"{values['stack'] or 'that stack'}")
        values["stack"] = values["stack"] or db.data.get("stack")
    else:
        for key in ("address", "privateAddress"):
            if not db.has(key):
                db.problem(key, "is required")
    return DatabaseConfig(**values)


def _build_nginx(values: dict, nginx: Section, reading: Reading) -> NginxConfig:
    """nextUpstreamTimeout between connectTimeout and the read/send timeouts (read the
    NginxConfig declarations for why); loginPaths listed once."""
    ms = rules.nginx_time_ms
    retry = values["next_upstream_timeout"]
    if ms(retry) <= ms(values["connect_timeout"]):
        nginx.problem("nextUpstreamTimeout",
                      f"{show(retry)} must be longer than nginx.connectTimeout "
                      f"({show(values['connect_timeout'])}): a server that takes no connection "
                      "would not be skipped")
    for key, attr in (("readTimeout", "read_timeout"), ("sendTimeout", "send_timeout")):
        if ms(retry) >= ms(values[attr]):
            nginx.problem("nextUpstreamTimeout",
                          f"{show(retry)} must be shorter than nginx.{key} "
                          f"({show(values[attr])}): a request that timed out on a busy app "
                          "server would be sent to the next one")
    seen = set()
    for path in values["login_paths"]:
        if path in seen:
            nginx.problem("loginPaths", f"{show(path)} is listed twice")
        seen.add(path)
    return NginxConfig(**values)


def _build_app(values: dict, app: Section, reading: Reading) -> AppConfig:
    """The project's directory and its Dockerfile are there. Checked even when
    `check_files` is off: the plans list the files to upload, so nothing renders without
    them (the key file, checked only at `up`, is needed by no plan)."""
    config = AppConfig(**values)
    if app.has("source") and app.data["source"] != config.source:
        return config  # refused as written: its rule said why, there is nothing to look at
    source = config.source_dir
    if not source.is_dir():
        where = "" if Path(config.source).is_absolute() else \
            " (a relative app.source starts at the Pulumi project directory)"
        what = "is not a directory" if source.exists() else "does not exist"
        app.problem("source", f"{show(config.source)} {what}: {source}{where}")
    elif app.data.get("dockerfile", config.dockerfile) == config.dockerfile and \
            not (source / config.dockerfile).is_file():
        app.problem("dockerfile", f"{show(config.dockerfile)} is not a file in app.source: "
                                  f"{source / config.dockerfile}")
    return config


def _build_maintenance(values: dict, maintenance: Section,
                       reading: Reading) -> MaintenanceConfig:
    """The page file is read where the program runs (the project directory)."""
    page = values["page"]
    if page:
        page = os.path.expanduser(page)
        problem = rules.page_file_problem(page) if reading.check_files else None
        if problem:
            maintenance.problem("page", problem)
    return MaintenanceConfig(**{**values, "page": page})


BUILDERS = {AcmeConfig: _build_acme, SshConfig: _build_ssh, DatabaseConfig: _build_database,
            NginxConfig: _build_nginx, AppConfig: _build_app,
            MaintenanceConfig: _build_maintenance}


# Let's Encrypt's limit of names on one certificate (its "Rate Limits": 100 names per
# certificate); `domain` is one of them.
CERTIFICATE_NAMES_LIMIT = 100


def _check_domain_aliases(problems: Problems, stack: StackConfig, aliases: Any) -> None:
    """domainAliases: each name once, not `domain` again, all of them on one certificate."""
    first_index: dict[str, int] = {}
    for alias, index in zip(aliases, getattr(aliases, "indexes", range(len(aliases)))):
        path = f"domainAliases[{index}]"
        if alias == stack.domain:
            problems.add(path, f"{show(alias)} is `domain` itself; remove it")
        elif alias in first_index:
            problems.add(path, f"{show(alias)} is already listed at "
                               f"domainAliases[{first_index[alias]}]")
        else:
            first_index[alias] = index
    if len(stack.certificate_names) > CERTIFICATE_NAMES_LIMIT:
        problems.add("domainAliases", f"{len(aliases)} names and `domain` are more than the "
                                      f"{CERTIFICATE_NAMES_LIMIT} one certificate can hold")


def _check_hosts(problems: Problems, stack: StackConfig, app_paths: list[str]) -> None:
    """Across hosts: names unique, no address shared by two hosts, host keys for real hosts."""
    database = stack.database
    hosts: list[tuple[str, HostConfig]] = [("database", database.host)] if database.host else []
    hosts += list(zip(app_paths, stack.app_servers))
    hosts.append(("proxy", stack.proxy))

    names = {"db": "database", "proxy": "proxy"}
    for path, host in hosts:
        if not isinstance(host, AppServerConfig):
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
    if stack.ssh.bastion and stack.ssh.bastion.address:
        reachable.add(stack.ssh.bastion.address.lower())
    # a host whose address was refused may be the one a pin is for: say only that problem
    every_address_known = all(host.address for _, host in hosts)
    pinned: dict[str, str] = {}
    for address, _ in stack.ssh.host_keys:
        first = pinned.setdefault(address.lower(), address)
        if first != address:
            problems.add(f"ssh.hostKeys[{address!r}]",
                         f"{show(address)} is pinned twice (also as {show(first)})")
        elif address.lower() not in reachable and every_address_known:
            problems.add(f"ssh.hostKeys[{address!r}]",
                         "not the address of any host (keys are looked up by `address`)")


def _pinned_as_written(top: Section) -> set[str]:
    """The addresses ssh.hostKeys names, valid pins or not (a refused one is reported as it
    is, not again as a host without a pin)."""
    ssh = decode_json(top.data.get("ssh"), dict)
    pins = decode_json(ssh.get("hostKeys"), dict) if isinstance(ssh, dict) else None
    return {str(address).lower() for address in pins} if isinstance(pins, dict) else set()


def _check_host_keys_pinned(problems: Problems, stack: StackConfig, app_paths: list[str],
                            written: set[str]) -> None:
    """Every host and the bastion pinned: pulumi-command checks a host's key only when one
    is given (provider/pkg/provider/remote/connection.go, SSHConfig: HostKeyCallback is
    ssh.InsecureIgnoreHostKey() without a hostKey), so an unpinned host is a host anyone on
    the path can impersonate, receiving the deploy's commands and secrets. One problem per
    host, unless the stack says ssh.insecureSkipHostKeyCheck (then the program warns)."""
    if stack.ssh.insecure_skip_host_key_check:
        return
    for target in stack.ssh_targets(app_paths):
        if target.address.lower() not in written:
            problems.add(f"{target.path}.address",
                         f"{show(target.address)} has no pinned SSH host key in ssh.hostKeys: "
                         f"run `{PIN_COMMAND}`, compare the fingerprints it prints with the "
                         "server's own and paste its ssh.hostKeys into the stack file (or set "
                         "ssh.insecureSkipHostKeyCheck: true to connect without checking)")


def unchecked_host_keys_warning(stack: StackConfig, stack_name: str) -> Optional[str]:
    """The warning every deploy of a stack with ssh.insecureSkipHostKeyCheck gives while a
    machine is unpinned (components/stack.py logs it: visible in preview and up), or None."""
    unpinned = stack.unpinned_targets() if stack.ssh.insecure_skip_host_key_check else []
    if not unpinned:
        return None
    hosts = ", ".join(f"{target.name} ({target.address})" for target in unpinned)
    return (f"ssh.insecureSkipHostKeyCheck is true: the SSH host key of {hosts} is NOT "
            "checked. Whoever can intercept these connections can pose as the host and "
            "receive the deploy's commands and secrets. Pin them: "
            f"python -m components.hostkeys --stack {stack_name}")


def _check_allowed_clients(problems: Problems, stack: StackConfig,
                           raw_database: Any) -> DatabaseConfig:
    """database.allowedClients: listed once, none of them one of this stack's hosts."""
    database = stack.database
    if database.host is None:
        return database  # database.stack is set: _build_database reports allowedClients
    own_apps = {host.private_address: f"appServers[{i}].privateAddress"
                for i, host in enumerate(stack.app_servers) if host.private_address}
    not_clients = {stack.proxy.private_address: "proxy.privateAddress",
                   database.private_address: "database.privateAddress"}
    path = "database.allowedClients"
    clients: list[str] = []
    first_index: dict[str, int] = {}
    for address, index in zip(database.allowed_clients, database.allowed_clients.indexes):
        if address in first_index:
            problems.add(f"{path}[{index}]", f"{show(address)} is already listed at "
                                             f"{path}[{first_index[address]}]")
        elif address in own_apps:
            problems.add(f"{path}[{index}]", f"{show(address)} is redundant: {own_apps[address]} "
                                             "of this stack is always admitted; remove it")
        elif address in not_clients:
            problems.add(f"{path}[{index}]", f"{show(address)} is this stack's "
                                             f"{not_clients[address]}; only app servers may "
                                             "reach the database")
        else:
            first_index[address] = index
            clients.append(address)
    return dataclasses.replace(database, allowed_clients=tuple(clients))


def _check_backups(reading: Reading, stack: StackConfig, raw: Any) -> BackupsConfig:
    """Backups are on for a stack that deploys its database unless `backups.enabled` is
    false: then the bucket, the key and its secret are required (and the passphrase with
    `backups.encrypt`; it is used only then). A stack whose database is another stack's
    backs up nothing (that stack does): there, backups are off."""
    problems, backups = reading.problems, stack.backups
    raw = decode_json(raw, dict)
    written = {k for k, v in raw.items() if v is not None} if isinstance(raw, dict) else set()
    present = reading.secrets_present
    if stack.database.host is None:
        if written - {"enabled"} or backups.enabled and "enabled" in written:
            problems.add("backups", "not used when database.stack is set (the stack that "
                                    "deploys the database backs it up); remove it")
        return dataclasses.replace(backups, enabled=False)
    if not backups.enabled:
        return backups
    for key, value in (("bucket", backups.bucket), ("accessKeyId", backups.access_key_id)):
        if value is None and key not in written:
            problems.add(f"backups.{key}", "is required: the database is backed up unless "
                                           "backups.enabled is false")
    if "backupStorageSecretKey" not in present:
        problems.add("backupStorageSecretKey",
                     "required secret is missing (pulumi config set --secret "
                     "backupStorageSecretKey <value>), or set backups.enabled: false")
    if backups.encrypt and "backupEncryptionPassphrase" not in present:
        problems.add("backupEncryptionPassphrase",
                     "required secret is missing with backups.encrypt (pulumi config set "
                     "--secret backupEncryptionPassphrase <value>)")
    return backups


def _check_connection_budget(problems: Problems, stack: StackConfig) -> None:
    """The database this stack owns takes every connection its clients keep open at once."""
    database = stack.database
    if database.host is None:
        return  # another stack's database: that stack checks (and exports dbWorkersPerClient)
    needed = stack.database_connections_needed()
    available = database.max_connections - SUPERUSER_RESERVED_CONNECTIONS
    if needed > available:
        clients = len(database.allowed_clients)
        problems.add("database.maxConnections", (
            f"{database.max_connections} is too few: {len(stack.app_servers)} appServers"
            + (f" + {clients} database.allowedClients" if clients else "")
            + f" × app.workers {stack.app.workers} + {RELEASE_CONNECTIONS} for the release "
            f"need {needed} connections, and PostgreSQL keeps "
            f"{SUPERUSER_RESERVED_CONNECTIONS} for superusers; set database.maxConnections to "
            f"at least {needed + SUPERUSER_RESERVED_CONNECTIONS} or lower app.workers"))


def _check_app_ports(problems: Problems, stack: StackConfig, app_paths: list[str]) -> None:
    """app.port and app.port + 1 (a release starts beside the running container) are host
    ports of the app servers: neither may be a port SSH or PostgreSQL listens on. Every SSH
    port of the stack counts, not only the app servers' own: hosts are usually built alike,
    and Docker would take the port before sshd could, locking the operator out."""
    port = stack.app.port
    if port is None:
        return
    owners: dict[int, list[str]] = {}
    database = stack.database
    ssh_ports = [("ssh.port", stack.ssh.port)]
    if database.host is not None:
        ssh_ports.append(("database.sshPort", database.ssh_port))
    ssh_ports += [(f"{path}.sshPort", host.ssh_port)
                  for path, host in zip(app_paths, stack.app_servers)]
    ssh_ports.append(("proxy.sshPort", stack.proxy.ssh_port))
    for path, taken in ssh_ports:
        if taken is not None:
            owners.setdefault(taken, []).append(path)
    if database.host is not None and database.port is not None:
        owners.setdefault(database.port, []).append("database.port")
    clashes = [f"{candidate} is {' and '.join(owners[candidate])}"
               for candidate in (port, port + 1) if candidate in owners]
    if clashes:
        problems.add("app.port", f"{port} puts the app's two slots on ports {port} and "
                                 f"{port + 1}, and {' and '.join(clashes)}; choose another "
                                 "app.port")


def _check_app_env(problems: Problems, stack: StackConfig) -> None:
    """One variable, one value: no name under two of djscale's values, and none of the
    names djscale writes (`app.envNames`, the release's DJANGO_SUPERUSER_*) in `app.env` or
    `appSecrets`; no name in both of those."""
    app = stack.app
    if app.env_names is None:
        return
    written: dict[str, str] = {}  # name -> what djscale writes under it
    for key, names in app.env_names.written():
        path = f"app.envNames.{key}"
        for name in names:
            if name in SUPERUSER_NAMES:
                problems.add(path, f"{show(name)} is Django's own createsuperuser variable, "
                                   "which djscale writes for the release; choose another name")
            elif name in written:
                again = "is listed twice" if written[name] == path else \
                    f"is also {written[name]}'s name"
                problems.add(path, f"{show(name)} {again}: one variable holds one value")
            else:
                written[name] = path
    written.update(dict.fromkeys(SUPERUSER_NAMES, "the release's createsuperuser"))
    plain = {name for name, _ in app.env}
    for where, names in (("app.env", sorted(plain)), ("appSecrets", stack.app_secret_names)):
        for name in names:
            path = f"{where}[{name!r}]"
            if name in written:
                owner = written[name]
                hint = (f"; map {owner} to another name (or []) to set it here"
                        if owner.startswith("app.envNames.") else "")
                problems.add(path, f"djscale writes {show(name)} ({owner}){hint}")
            elif where == "appSecrets" and name in plain:
                problems.add(path, f"{show(name)} is also set in app.env; set it in one place")


def _check_batch_size(problems: Problems, stack: StackConfig) -> None:
    value = stack.rollout.batch_size
    if value is None or value.endswith("%"):
        return
    if int(value) > len(stack.app_servers):
        problems.add("rollout.batchSize", f"{value} is more than the {len(stack.app_servers)} "
                                          "appServers")
