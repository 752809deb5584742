"""The whole program (`__main__.py`) under Pulumi's mock runtime, asserting over the graph.

Every test runs the real `__main__.py` with a stack's config (the dev and prod stack files,
and the scenario fixtures for 1, 2 and 5 app servers) and inspects what was registered:
types and counts, parents, dependency edges, the release step, secrets, firewall
allow-lists and exports. The same program also runs in preview mode, where everything the
providers compute is unknown.
"""
from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path

import pytest
import yaml

from components.config import ConfigError, StackConfig, parse_config
from components.render.files import render_run_script_command
from components.render.images import render_prune_app_images_script
from components.config import read_stack_file
from components.preflight import PreflightError
from tests.support.cli_config import CliConfigError
from tests.support.stack_files import cli_stack_config
from tests.support.pulumi_mocks import (
    MOCK_CA_CERT, Graph, _fake_digest, has_secret, is_secret, is_unknown, plain, run_program,
)

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
SSH_KEY = ("-----BEGIN OPENSSH PRIVATE KEY-----\nMOCK-SSH-KEY-MATERIAL\n"
           "-----END OPENSSH PRIVATE KEY-----\n")
S3_SECRET = "MOCK-S3-SECRET-KEY-VALUE"
BACKUP_SECRET = "MOCK-BACKUP-S3-SECRET-KEY-VALUE"
SECRETS = {"sshPrivateKey": SSH_KEY, "staticStorageSecretKey": S3_SECRET,
           "backupStorageSecretKey": BACKUP_SECRET}
# the project's own secrets (appSecrets), for the stacks that set them
API_TOKEN = "MOCK-APP-SECRET-API-TOKEN"
APP_SECRETS = {"API_TOKEN": API_TOKEN}
# what DjscaleMocks returns as RandomPassword results (secret)
DB_PASSWORD, SECRET_KEY, ADMIN_PASSWORD = "pw-db-password", "pw-django-secret-key", \
    "pw-superuser-password"

COMMAND = "command:remote:Command"
COPY = "command:remote:CopyToRemote"
LOCAL = "command:local:Command"
PASSWORD = "random:index/randomPassword:RandomPassword"

STACKS = {
    "dev": ROOT / "Pulumi.dev.yaml",
    "prod": ROOT / "Pulumi.prod.yaml",
    "one_app": FIXTURES / "stack_one_app.yaml",
    "two_apps": FIXTURES / "stack_two_apps.yaml",
    "five_apps": FIXTURES / "stack_five_apps.yaml",
    "db_shared": FIXTURES / "stack_db_shared.yaml",  # database.allowedClients: another stack's apps
    # a project djscale did not shape: its source, its env names, app.env and appSecrets
    "own_project": FIXTURES / "stack_own_project.yaml",
}


def secrets_for(path: Path) -> dict[str, str]:
    """The secrets `pulumi up` decrypts for that stack file: SECRETS, and each appSecrets
    entry it holds."""
    raw, present = read_stack_file(path)
    names = [p.split(".", 1)[1] for p in present if p.startswith("appSecrets.")]
    return {**SECRETS, **{f"appSecrets.{name}": APP_SECRETS[name] for name in names}}


@pytest.fixture(scope="module", autouse=True)
def private_state_dir(tmp_path_factory):
    """The program stages the app's build context under DJSCALE_HOME (components/remote.py
    state_dir): keep it in a temp dir."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJSCALE_HOME", str(tmp_path_factory.mktemp("djscale-home")))
        yield


def _cfg(path: Path) -> StackConfig:
    raw, secrets = read_stack_file(path)
    return parse_config(raw, set(secrets) | set(secrets_for(path)), check_files=False)


def _run(path: Path, stack: str, *, preview: bool = False, **kw) -> Graph:
    """The program run with the config `pulumi up` would give it (project defaults from
    Pulumi.yaml, the stack file, the secrets: tests/support/cli_config.py)."""
    config, secret_keys = cli_stack_config(path, secrets_for(path))
    return run_program(config, secret_keys=secret_keys, stack=stack, preview=preview, **kw)


@pytest.fixture(scope="module", params=sorted(STACKS))
def deployed(request):
    name = request.param
    path = STACKS[name]
    return name, _cfg(path), _run(path, name)


# --- shape -------------------------------------------------------------------------------

def expected_counts(n_apps: int, backups: bool = True) -> dict[str, int]:
    # install, tls, postgresql-conf, pg-hba, configure, setup, firewall; and the backups:
    # tools, 2 alert files, djscale-s3, credentials, script, service, timer, the backup-now
    # and restore commands, enable, teardown; pg-hba-revoke and firewall-revoke
    db_commands = 7 + (12 if backups else 0) + 2
    # install-docker, firewall, drain script, unit and enable, env-file, db-ca-file, start,
    # retire, prune-images, teardown; + image and release on the first (the others get the
    # image shipped: a local command)
    app_commands = 11 * n_apps + 2
    # install, firewall, maintenance page, command and mode, http conf, nginx, certbot, tls
    # conf, certbot-names, 3 renew files, 2 alert files, 3 expiry-check files, the status
    # command, enable, teardown; the upstream watcher: python3, program, unit, enable; the
    # release switch: program, unit, enable, the map of live slots
    proxy_commands = 29
    counts = {
        "djscale:index:DatabaseHost": 1,
        "djscale:index:AppServer": n_apps,
        "djscale:index:ProxyHost": 1,
        COMMAND: db_commands + app_commands + proxy_commands,
        COPY: 1,  # the build context, to the first app server only: one build per release
        PASSWORD: 3,  # db password, Django SECRET_KEY, superuser password
    }
    if n_apps > 1:
        counts[LOCAL] = n_apps - 1  # the image shipped to every other app server
    return counts


def test_resource_types_and_counts(deployed):
    _, cfg, graph = deployed
    assert graph.type_counts() == expected_counts(len(cfg.app_servers), cfg.backups.enabled)


def test_every_resource_has_the_expected_parent(deployed):
    name, cfg, graph = deployed
    stack_urn = f"urn:pulumi:{name}::djscale::pulumi:pulumi:Stack::djscale-{name}"
    components = {r.name: r for r in graph.registrations if r.type.startswith("djscale:index:")}
    assert set(components) == {"db", "proxy", *(h.name for h in cfg.app_servers)}
    for r in graph.registrations:
        owner = r.name.split("-")[0]
        if r.type.startswith("djscale:index:") or r.name in (
                "django-secret-key", "superuser-password"):
            assert r.parent == stack_urn, r.name
        else:
            assert r.parent == components[owner].urn, r.name
            assert r.name.startswith(f"{owner}-")


def test_component_steps_have_the_expected_names(deployed):
    _, cfg, graph = deployed
    names = {r.name for r in graph.registrations}
    for step in ("install", "tls", "postgresql-conf", "pg-hba", "configure", "password", "setup",
                 "firewall", "backup-tools", "backup-credentials", "backup-script",
                 "backup-service", "backup-timer", "backup-now-command", "restore-command",
                 "backup-enable", "backup-teardown"):
        assert f"db-{step}" in names
    first = cfg.app_servers[0].name
    for host in cfg.app_servers:
        for step in ("install-docker", "firewall", "drain-script", "drain-service",
                     "drain-enable", "image", "env-file", "db-ca-file", "start", "retire",
                     "prune-images", "teardown"):
            assert f"{host.name}-{step}" in names
        assert (f"{host.name}-release" in names) == (host.name == first)
        assert (f"{host.name}-upload-context" in names) == (host.name == first)
        assert f"{host.name}-release-env-file" not in names  # the release's env: stdin only
    for step in ("install-docker", "firewall", "maintenance-page", "maintenance-command",
                 "maintenance-mode", "nginx-http-conf", "nginx", "certbot",
                 "nginx-tls-conf", "certbot-names", "renew-script", "renew-service", "renew-timer",
                 "alert-script", "alert-unit", "expiry-script", "expiry-service",
                 "expiry-timer", "status-command", "renew-enable", "teardown", "watch-tools",
                 "watch-program", "watch-service", "watch-enable", "slots-program",
                 "slots-service", "slots-enable", "upstream-slots"):
        assert f"proxy-{step}" in names


# --- order -------------------------------------------------------------------------------

def test_database_steps_run_packages_then_config_then_service(deployed):
    _, _, graph = deployed
    deps = lambda n: graph.deps(graph.named(n))  # noqa: E731
    assert "db-install" in deps("db-postgresql-conf")
    assert "db-install" in deps("db-pg-hba")
    assert {"db-postgresql-conf", "db-pg-hba"} <= deps("db-configure")
    assert "db-configure" in deps("db-setup")
    assert "db-password" in deps("db-setup")  # the password goes in on stdin
    assert "db-configure" in deps("db-firewall")


def test_one_build_then_release_then_starts_in_batches_then_the_switch_then_retires(
        deployed):
    _, cfg, graph = deployed
    hosts = [h.name for h in cfg.app_servers]
    first = hosts[0]
    release = graph.named(f"{first}-release")
    assert f"{first}-image" in graph.deps(release)
    image_id = _fake_digest(graph.named(f"{first}-image").plain_input("create"))
    assert image_id in plain(release.input("triggers"))  # the id the image step printed
    assert f"{first}-upload-context" in graph.deps(graph.named(f"{first}-image"))
    batch = cfg.rollout.servers_per_batch(len(hosts))
    for index, host in enumerate(hosts):
        start = graph.named(f"{host}-start")
        deps = graph.deps(start)
        assert f"{first}-release" in deps
        assert {f"{host}-image", f"{host}-env-file", f"{host}-db-ca-file"} <= deps
        assert f"{host}-firewall" in deps  # never published before the DOCKER-USER block
        previous_batch = hosts[max(0, (index // batch - 1) * batch):(index // batch) * batch]
        assert {f"{h}-start" for h in previous_batch} <= deps
        assert not {f"{h}-start" for h in hosts[(index // batch) * batch:]} & deps
        assert f"image={image_id}\n" in plain(start.input("create"))  # the same image
        retire = graph.named(f"{host}-retire")
        assert {f"{host}-start", "proxy-upstream-slots",
                "proxy-nginx-tls-conf"} <= graph.deps(retire)
        if host != first:  # shipped from the first server through the operator's machine
            ship = graph.named(f"{host}-image")
            assert ship.type == LOCAL and f"{first}-image" in graph.deps(ship)
            request = json.loads(plain(ship.input("stdin")))
            assert (request["image"], request["source"]["host"]) == (
                image_id, cfg.app_servers[0].address)
            assert request["key"] == SSH_KEY and is_secret(ship.input("stdin"))


def test_a_pinned_release_uploads_and_builds_nothing_and_rolls_out_as_any(tmp_path):
    """app.release: previous (a rollback): the first server's image step names the image
    (no upload, no build), the others get it shipped, the release step checks migrations
    only, and start, switch, retire and prune follow as for any release."""
    stack = yaml.safe_load(STACKS["two_apps"].read_text())
    stack["config"]["djscale:app"] = {**stack["config"]["djscale:app"], "release": "previous"}
    path = tmp_path / "Pulumi.rollback.yaml"
    path.write_text(yaml.safe_dump(stack))
    cfg, graph = _cfg(path), _run(path, "rollback")
    first, other = (h.name for h in cfg.app_servers)
    assert not graph.of_type(COPY)  # nothing uploaded
    image = graph.named(f"{first}-image")
    create = image.plain_input("create")
    assert "docker build" not in create and "release=previous" in create
    image_id = _fake_digest(create)
    assert graph.exports["appImage"][0] == image_id
    release = plain(graph.named(f"{first}-release").input("create"))
    assert "migrate --check" in release and "migrate --noinput" not in release
    assert image_id in release
    ship = graph.named(f"{other}-image")
    assert ship.type == LOCAL and json.loads(plain(ship.input("stdin")))["image"] == image_id
    for host in (first, other):
        assert f"image={image_id}\n" in plain(graph.named(f"{host}-start").input("create"))
        assert "origin=previous" in plain(graph.named(f"{host}-retire").input("create"))
        assert {f"{host}-start", "proxy-upstream-slots", "proxy-nginx-tls-conf"} <= graph.deps(
            graph.named(f"{host}-retire"))


def test_old_images_are_pruned_after_each_container_once_per_image(deployed):
    _, cfg, graph = deployed
    for host in (h.name for h in cfg.app_servers):
        prune = graph.named(f"{host}-prune-images")
        assert f"{host}-retire" in graph.deps(prune)
        image_id = _fake_digest(graph.named(f"{cfg.app_servers[0].name}-image")
                                .plain_input("create"))
        assert plain(prune.input("triggers"))[-1] == image_id
        assert plain(prune.input("create")) == render_run_script_command(
            render_prune_app_images_script(image_id))


def _lines(cfg: StackConfig, value: str, text: str) -> list[str]:
    """`<name>=<value>` for each name the stack's env contract gives `value`."""
    return [f"{name}={text}\n" for name in getattr(cfg.app.env_names, value)]


def test_database_outputs_flow_into_every_app_env_file(deployed):
    _, cfg, graph = deployed
    expected = [*_lines(cfg, "db_host", cfg.database.host.private_address),
                *_lines(cfg, "db_password", DB_PASSWORD),
                *_lines(cfg, "secret_key", SECRET_KEY), *_lines(cfg, "static_secret_key", S3_SECRET),
                *(f"{name}={APP_SECRETS[name]}\n" for name in cfg.app_secret_names),
                *(f"{name}={value}\n" for name, value in cfg.app.env)]
    assert len(expected) >= 4
    for host in cfg.app_servers:
        env_file = graph.named(f"{host.name}-env-file")
        deps = graph.deps(env_file)
        assert {"db-setup", "db-firewall", "db-password"} <= deps
        text = plain(env_file.input("stdin"))
        assert all(line in text for line in expected), text
        assert "DJANGO_SUPERUSER_PASSWORD" not in text  # only the release needs it
    release = graph.named(f"{cfg.app_servers[0].name}-release")
    release_env = plain(release.input("stdin"))
    assert f"DJANGO_SUPERUSER_PASSWORD={ADMIN_PASSWORD}\n" in release_env
    assert all(line in release_env for line in expected)
    assert {"db-setup", "db-password", "superuser-password"} <= graph.deps(release)


def test_the_database_certificate_reaches_every_app_server_and_its_settings(deployed):
    """The certificate the database host's TLS step printed (its stdout) is the file every
    app server verifies the database with; the env file tells the app to verify."""
    _, cfg, graph = deployed
    tls = graph.named("db-tls")
    assert not has_secret(tls.input("create")) and tls.input("logging") != "none"
    for host in cfg.app_servers:
        ca = graph.named(f"{host.name}-db-ca-file")
        assert "db-tls" in graph.deps(ca)
        assert plain(ca.input("stdin")) == MOCK_CA_CERT
        assert not has_secret(ca.input("stdin"))  # public
        assert "target=/etc/djscale/db-ca.pem" in plain(ca.input("create"))
        env = plain(graph.named(f"{host.name}-env-file").input("stdin"))
        expected = [*_lines(cfg, "db_ssl_mode", "verify-full"),
                    *_lines(cfg, "db_ssl_root_cert", "/etc/djscale/db-ca.pem")]
        # a project that reads neither is told by its own constants (app.env)
        expected = expected or [f'"sslmode": "verify-full", "sslrootcert": "/etc/djscale/db-ca.pem"']
        assert all(line in env for line in expected)
        container = graph.named(f"{host.name}-start")
        assert f"{host.name}-db-ca-file" in graph.deps(container)
        assert "/etc/djscale/db-ca.pem:/etc/djscale/db-ca.pem:ro" in plain(
            container.input("create"))
    assert graph.exports["dbCaCert"] == (MOCK_CA_CERT, True, False)


def test_proxy_routes_each_release_on_its_slot_once_every_start_is_done(deployed):
    """The switch is the map of live slots, after every start; nginx.conf lists each server
    on app.port and waits for the map (a new server joins once it is routed)."""
    _, cfg, graph = deployed
    starts = {f"{h.name}-start" for h in cfg.app_servers}
    switch = graph.named("proxy-upstream-slots")
    assert starts <= graph.deps(switch)
    routes = plain(switch.input("stdin"))
    for host in cfg.app_servers:  # the mocks' start steps print the second slot's port
        assert f"\n{host.private_address} {cfg.app.port} {cfg.app.port + 1}\n" in routes
    assert "djscale-upstream-slots" in plain(switch.input("create"))
    for conf in ("proxy-nginx-tls-conf", "proxy-nginx-http-conf"):
        assert starts | {"proxy-upstream-slots"} <= graph.deps(graph.named(conf))
        text = plain(graph.named(conf).input("stdin"))
        for host in cfg.app_servers:
            assert f"server {host.private_address}:{cfg.app.port} " in text
    assert "proxy-nginx-http-conf" in graph.deps(graph.named("proxy-nginx"))
    assert "proxy-nginx" in graph.deps(graph.named("proxy-certbot"))
    assert "proxy-certbot" in graph.deps(graph.named("proxy-nginx-tls-conf"))
    assert "proxy-nginx-tls-conf" in graph.deps(graph.named("proxy-renew-enable"))
    # a change of names is asked for once the TLS config answers every name's challenge
    assert "proxy-nginx-tls-conf" in graph.deps(graph.named("proxy-certbot-names"))
    names = plain(graph.named("proxy-certbot-names").input("create"))
    assert " ".join(f"-d {name}" for name in cfg.certificate_names) in names
    nginx = plain(graph.named("proxy-nginx").input("create"))
    assert f"image={cfg.images.nginx}" in nginx
    assert "--network host" in nginx
    assert "--volume /etc/djscale/nginx:/etc/djscale/nginx:ro" in nginx  # a directory


# --- release -----------------------------------------------------------------------------

def test_migrate_collectstatic_createsuperuser_registered_exactly_once(deployed):
    _, cfg, graph = deployed
    creates = {r.name: plain(r.input("create", "")) for r in graph.of_type(COMMAND)}
    for needle in ("migrate --noinput", "collectstatic --noinput", "createsuperuser --noinput"):
        found = [n for n, c in creates.items() if needle in c]
        assert found == [f"{cfg.app_servers[0].name}-release"], needle
    assert not any("makemigrations" in c for c in creates.values())


# --- secrets -----------------------------------------------------------------------------

def _unmarked_occurrences(value, needle: str, path="") -> list[str]:
    """Paths where `needle` appears in `value` outside any secret marker."""
    if is_secret(value):
        return []
    if isinstance(value, dict):
        return [p for k, v in value.items()
                for p in _unmarked_occurrences(v, needle, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value)
                for p in _unmarked_occurrences(v, needle, f"{path}[{i}]")]
    return [path] if isinstance(value, str) and needle in value else []


def test_no_secret_value_appears_unmarked_anywhere(deployed):
    _, _, graph = deployed
    for secret in (DB_PASSWORD, SECRET_KEY, ADMIN_PASSWORD, S3_SECRET, BACKUP_SECRET,
                   "MOCK-SSH-KEY-MATERIAL", API_TOKEN):
        leaks = [f"{r.name}{p}" for r in graph.registrations
                 for p in _unmarked_occurrences(r.raw_inputs, secret)]
        assert leaks == [], secret


def test_secret_bearing_inputs_are_secret_and_their_steps_log_nothing(deployed):
    _, cfg, graph = deployed
    first = cfg.app_servers[0].name
    secret_steps = {"db-setup", *(f"{h.name}-env-file" for h in cfg.app_servers),
                    f"{first}-release", "db-backup-credentials"}
    for name in secret_steps:
        step = graph.named(name)
        assert is_secret(step.input("stdin")), name
        assert step.input("logging") == "none", name
        assert {"stdout", "stderr"} <= set(step.additional_secret_outputs), name
        assert any(is_secret(t) for t in step.input("triggers")), name  # a secret's hash
    for r in graph.of_type(COMMAND):
        assert is_secret(r.input("connection")), r.name
        assert "privateKey" in plain(r.input("connection")), r.name
        if r.name not in secret_steps:
            assert not has_secret(r.input("stdin")), r.name  # no needless secrecy
    for host in cfg.app_servers:  # the container reads them from the root-only env file
        assert not has_secret(graph.named(f"{host.name}-start").input("create"))
    assert graph.named("db-password").protect


def test_every_remote_resource_carries_its_own_connection(deployed):
    """No Docker provider and no key file: each step's state holds the connection (key as a
    secret), so destroy and refresh work from any machine that can decrypt the stack."""
    _, cfg, graph = deployed
    assert {r.type for r in graph.registrations if r.custom} <= {COMMAND, COPY, LOCAL,
                                                                  PASSWORD}
    hosts = {h.name: h for h in (*cfg.app_servers, cfg.proxy)}
    if cfg.database.host:
        hosts["db"] = cfg.database.host
    for r in graph.of_type(COMMAND) + graph.of_type(COPY):
        host = hosts[r.name.split("-")[0]]
        connection = plain(r.input("connection"))
        assert is_secret(r.input("connection")), r.name
        assert (connection["host"], connection["port"]) == (host.address,
                                                            cfg.ssh_port_for(host)), r.name
        assert connection["privateKey"] == SSH_KEY, r.name


def test_every_connection_checks_the_pinned_host_key(deployed):
    """pulumi-command accepts any host key when none is given: every step's connection (and
    its bastion's) carries the key pinned for that address in the stack."""
    _, cfg, graph = deployed
    pins = dict(cfg.ssh.host_keys)
    for r in graph.of_type(COMMAND) + graph.of_type(COPY):
        connection = plain(r.input("connection"))
        assert connection["hostKey"] == pins[connection["host"]], r.name
        if cfg.ssh.bastion is not None:
            assert connection["proxy"]["hostKey"] == pins[cfg.ssh.bastion.address], r.name
        else:
            assert "proxy" not in connection, r.name


# --- firewall ----------------------------------------------------------------------------

IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?\b")


def _addresses(script: str, exclude) -> set[str]:
    found = set()
    for token in IPV4.findall(script):
        net = ipaddress.ip_network(token, strict=False)
        if str(net) not in exclude and str(net.network_address) not in exclude:
            found.add(str(net.network_address) if net.prefixlen == 32 else str(net))
    return found


def test_firewall_allow_lists_equal_the_peers_addresses(deployed):
    _, cfg, graph = deployed
    admin = {str(ipaddress.ip_network(c, strict=False)) for c in cfg.firewall.admin_cidrs}
    admin |= {str(ipaddress.ip_network(c, strict=False).network_address)
              for c in cfg.firewall.admin_cidrs}
    ignore = admin | {"0.0.0.0", "0.0.0.0/0", "127.0.0.1", "127.0.0.0/8",
                      "169.254.0.0/16"}  # containers kept from link-local, on every Docker host
    apps = {h.private_address for h in cfg.app_servers}
    db_script = plain(graph.named("db-firewall").input("create"))
    assert _addresses(db_script, ignore) == apps | set(cfg.database.allowed_clients)
    for host in cfg.app_servers:
        script = plain(graph.named(f"{host.name}-firewall").input("create"))
        assert _addresses(script, ignore) == {cfg.proxy.private_address}, host.name
    proxy_script = plain(graph.named("proxy-firewall").input("create"))
    assert _addresses(proxy_script, ignore) == set()
    for name in ("db-firewall", "proxy-firewall", *(f"{h.name}-firewall" for h in cfg.app_servers)):
        script = plain(graph.named(name).input("create"))
        for cidr in cfg.firewall.admin_cidrs:
            assert str(ipaddress.ip_network(cidr, strict=False)).split("/")[0] in script, name


def test_pg_hba_and_nginx_upstreams_list_exactly_the_app_servers(deployed):
    _, cfg, graph = deployed
    apps = [h.private_address for h in cfg.app_servers]
    clients = sorted([*apps, *cfg.database.allowed_clients], key=ipaddress.IPv4Address)
    hba = plain(graph.named("db-pg-hba").input("stdin"))
    hba_hosts = re.findall(r"^hostssl\s+\S+\s+\S+\s+(\S+)\s+scram-sha-256$", hba, re.M)
    assert hba_hosts == [f"{a}/32" for a in clients]
    assert not re.search(r"^host\s", hba, re.M)  # nothing admits a client without TLS
    for step in ("proxy-nginx-http-conf", "proxy-nginx-tls-conf"):
        conf = plain(graph.named(step).input("stdin"))
        upstreams = re.findall(r"^\s*server\s+(\d[\d.]+):(\d+)", conf, re.M)
        # each server on app.port: the map of live slots routes it (the mocks: the second)
        assert upstreams == [(a, str(cfg.app.port)) for a in apps], step
    routes = re.findall(r"^(\d[\d.]+) (\d+) (\d+)$",
                        plain(graph.named("proxy-upstream-slots").input("stdin")), re.M)
    assert routes == [(a, str(cfg.app.port), str(cfg.app.port + 1)) for a in apps]
    assert "ssl_certificate" not in plain(graph.named("proxy-nginx-http-conf").input("stdin"))
    assert "ssl_certificate" in plain(graph.named("proxy-nginx-tls-conf").input("stdin"))


# --- exports -----------------------------------------------------------------------------

def test_exports(deployed):
    _, cfg, graph = deployed
    ex = graph.exports
    assert ex["url"] == (f"https://{cfg.domain}/", True, False)
    assert ex["proxyAddress"] == (cfg.proxy.address, True, False)
    assert ex["appAddresses"] == ([h.private_address for h in cfg.app_servers], True, False)
    assert ex["appImage"] == (_fake_digest(graph.named(f"{cfg.app_servers[0].name}-image")
                                           .plain_input("create")), True, False)
    assert ex["dbPrivateAddress"] == (cfg.database.host.private_address, True, False)
    assert ex["dbPort"] == (cfg.database.port, True, False)
    assert ex["dbName"] == (cfg.database.name, True, False)
    assert ex["dbUser"] == (cfg.database.user, True, False)
    assert ex["adminUsername"] == (cfg.app.superuser.username, True, False)
    assert ex["adminEmail"] == (cfg.app.superuser.email, True, False)
    assert ex["adminPassword"] == (ADMIN_PASSWORD, True, True)
    assert ex["dbPassword"] == (DB_PASSWORD, True, True)
    clients = [*(h.private_address for h in cfg.app_servers), *cfg.database.allowed_clients]
    assert ex["dbClientAddresses"] == (clients, True, False)
    assert ex["dbWorkersPerClient"] == (cfg.app.workers, True, False)


# --- preview -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["dev", "prod", "five_apps"])
def test_preview_registers_the_same_resources(name):
    path = STACKS[name]
    real = _run(path, name)
    preview = _run(path, name, preview=True)

    def shape(graph):
        return sorted((r.type, r.name, r.parent.rsplit("::", 1)[-1], r.provider.rsplit("::", 1)[0])
                      for r in graph.registrations)

    assert shape(preview) == shape(real)
    release = preview.named(f"{_cfg(path).app_servers[0].name}-release")
    assert is_unknown(release.input("create"))  # the image id is not known before the build
    assert preview.exports["adminPassword"][1] is False  # unknown until created
    assert preview.exports["url"][0] == real.exports["url"][0]


# --- bad config --------------------------------------------------------------------------

def test_bad_config_fails_before_any_resource_is_registered():
    config, secret_keys = cli_stack_config(STACKS["dev"], SECRETS)
    config["djscale:appServers"] = \
        '[{"name": "app1", "address": "10.0.0.300", "privateAddress": "10.0.0.21"}]'
    config["djscale:domain"] = "not a domain"
    with pytest.raises(ConfigError) as err:
        run_program(config, secret_keys=secret_keys, stack="dev")
    assert "appServers[0].address" in str(err.value) and "domain" in str(err.value)
    assert run_program.last_monitor.registrations == []


def test_an_unpinned_host_fails_before_any_resource_naming_it():
    config, secret_keys = cli_stack_config(STACKS["dev"], SECRETS)
    _pin(config, "203.0.113.22", None)
    with pytest.raises(ConfigError) as err:
        run_program(config, secret_keys=secret_keys, stack="dev")
    assert err.value.problems == [
        "appServers[1].address: '203.0.113.22' has no pinned SSH host key in ssh.hostKeys: "
        "run `python -m components.hostkeys --stack <stack>`, compare the fingerprints it "
        "prints with the server's own and paste its ssh.hostKeys into the stack file (or set "
        "ssh.insecureSkipHostKeyCheck: true to connect without checking)"]
    assert run_program.last_monitor.registrations == []


@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_skipping_the_host_key_check_is_explicit_and_warned_about(caplog, preview):
    """ssh.insecureSkipHostKeyCheck: the unpinned host's steps connect without a hostKey
    (pulumi-command then accepts any key); the pinned ones keep theirs; preview and up warn,
    naming the unpinned host."""
    config, secret_keys = cli_stack_config(STACKS["five_apps"], SECRETS)
    _pin(config, "10.0.2.23", None)
    _pin(config, "bastion.example.com", None)
    ssh = json.loads(config["djscale:ssh"])
    config["djscale:ssh"] = json.dumps({**ssh, "insecureSkipHostKeyCheck": True})
    with caplog.at_level("WARNING"):
        graph = run_program(config, secret_keys=secret_keys, stack="big", preview=preview)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"
                and "insecureSkipHostKeyCheck" in r.getMessage()]
    assert warnings == [
        "ssh.insecureSkipHostKeyCheck is true: the SSH host key of app3 (10.0.2.23), bastion "
        "(bastion.example.com) is NOT checked. Whoever can intercept these connections can "
        "pose as the host and receive the deploy's commands and secrets. Pin them: "
        "python -m components.hostkeys --stack big"]
    for r in graph.of_type(COMMAND):
        connection = plain(r.input("connection"))
        assert "hostKey" not in connection["proxy"], r.name
        assert ("hostKey" in connection) is (not r.name.startswith("app3-")), r.name


def test_missing_secret_is_refused_by_the_cli_and_by_the_program():
    """staticStorageSecretKey is typed and has no default: the CLI refuses first; a run
    without the CLI (or a program of an older Pulumi.yaml) is refused by the program."""
    with pytest.raises(CliConfigError, match="missing configuration value"):
        cli_stack_config(STACKS["prod"], {"sshPrivateKey": SSH_KEY})
    config, secret_keys = cli_stack_config(STACKS["prod"], SECRETS)
    del config["djscale:staticStorageSecretKey"]
    with pytest.raises(ConfigError, match="staticStorageSecretKey"):
        run_program(config, secret_keys=secret_keys, stack="prod")
    assert run_program.last_monitor.registrations == []


def test_a_stale_ssh_agent_socket_fails_before_any_resource(monkeypatch, tmp_path):
    monkeypatch.setenv("SSH_AUTH_SOCK", str(tmp_path / "gone.sock"))
    config, secret_keys = cli_stack_config(STACKS["dev"], SECRETS)
    with pytest.raises(PreflightError, match="SSH_AUTH_SOCK="):
        run_program(config, secret_keys=secret_keys, stack="dev")
    assert run_program.last_monitor.registrations == []


def test_a_project_that_breaks_the_contract_fails_before_any_resource():
    """`pulumi preview` stops with what `python -m components.check_app` prints."""
    config, secret_keys = cli_stack_config(STACKS["dev"], SECRETS)
    app = json.loads(config["djscale:app"]) if isinstance(config["djscale:app"], str) \
        else dict(config["djscale:app"])
    config["djscale:app"] = json.dumps({**app, "containerPort": 9000})
    with pytest.raises(PreflightError, match="gunicorn binds 0.0.0.0:8000, but "
                                             "app.containerPort is 9000"):
        run_program(config, secret_keys=secret_keys, stack="dev", preview=True)
    assert run_program.last_monitor.registrations == []


# --- two stacks --------------------------------------------------------------------------

DB_STACK = "example-org/djscale/db-prod"


def _two_stacks() -> tuple[StackConfig, Graph, StackConfig, Graph]:
    """The stack that owns the database, then the stack that takes it by reference."""
    db_path, app_path = STACKS["db_shared"], FIXTURES / "stack_dbref.yaml"
    db_graph = _run(db_path, "db-prod")
    db_exports = {k: v[0] for k, v in db_graph.exports.items()}
    app_graph = _run(app_path, "app", stack_references={DB_STACK: (db_exports, ["dbPassword"])})
    return _cfg(db_path), db_graph, _cfg(app_path), app_graph


def test_database_stack_admits_the_app_servers_of_the_referencing_stack():
    db_cfg, db_graph, app_cfg, _ = _two_stacks()
    app_addresses = [h.private_address for h in app_cfg.app_servers]
    assert app_cfg.database.stack == DB_STACK
    assert list(db_cfg.database.allowed_clients) == app_addresses  # the fixtures agree

    hba = plain(db_graph.named("db-pg-hba").input("stdin"))
    assert [line for line in hba.splitlines() if line.startswith("host")] == [
        "hostnossl   all   all   0.0.0.0/0   reject",  # no client without TLS
        "hostnossl   all   all   ::/0   reject",
        "hostssl   shop   shop_app   10.0.4.21/32   scram-sha-256",  # this stack's app servers
        "hostssl   shop   shop_app   10.0.4.22/32   scram-sha-256",
        "hostssl   shop   shop_app   10.0.4.41/32   scram-sha-256",  # the referencing stack's
        "hostssl   shop   shop_app   10.0.4.42/32   scram-sha-256",
    ]
    firewall_script = plain(db_graph.named("db-firewall").input("create"))
    allows = re.findall(r"'allow from (\S+) to any port 5432 proto tcp'", firewall_script)
    assert allows == ["10.0.4.21", "10.0.4.22", "10.0.4.41", "10.0.4.42"]
    # both files reach the server through the steps that apply them
    assert "db-pg-hba" in db_graph.deps(db_graph.named("db-configure"))
    assert db_graph.exports["dbClientAddresses"] == (
        ["10.0.4.21", "10.0.4.22", "10.0.4.41", "10.0.4.42"], True, False)


def test_database_from_another_stack_is_wired_into_the_app_env():
    _, db_graph, cfg, app_graph = _two_stacks()
    db_exports = {k: v[0] for k, v in db_graph.exports.items()}

    (ref,) = app_graph.of_type("pulumi:pulumi:StackReference")
    assert plain(ref.input("name")) == DB_STACK
    assert app_graph.find("db") is None and not app_graph.of_type("djscale:index:DatabaseHost")
    for host in cfg.app_servers:
        env_file = app_graph.named(f"{host.name}-env-file")
        assert "database-stack" in app_graph.deps(env_file)
        assert is_secret(env_file.input("stdin"))
        text = plain(env_file.input("stdin"))
        assert f"DATABASE_HOST={db_exports['dbPrivateAddress']}\n" in text
        assert f"DATABASE_PORT={db_exports['dbPort']}\n" in text
        assert f"DATABASE_NAME={db_exports['dbName']}\n" in text
        assert f"DATABASE_USER={db_exports['dbUser']}\n" in text
        assert f"DATABASE_PASSWORD={DB_PASSWORD}\n" in text
        assert "DATABASE_SSLMODE=verify-full\n" in text
        ca = app_graph.named(f"{host.name}-db-ca-file")  # the database stack's certificate
        assert "database-stack" in app_graph.deps(ca)
        assert plain(ca.input("stdin")) == db_exports["dbCaCert"] == MOCK_CA_CERT
    assert (db_exports["dbPrivateAddress"], db_exports["dbName"]) == ("10.0.4.10", "shop")
    counts = app_graph.type_counts()
    assert counts[PASSWORD] == 2  # no database password here: it belongs to the DB stack


def test_exports_of_the_referencing_stack_come_from_the_database_stack():
    _, db_graph, cfg, app_graph = _two_stacks()
    db_ex, ex = db_graph.exports, app_graph.exports
    for key in ("dbPrivateAddress", "dbPort", "dbName", "dbUser", "dbCaCert"):
        assert ex[key] == db_ex[key] and ex[key][2] is False, key  # known, not secret
    assert ex["dbPort"][0] == 5432 and isinstance(ex["dbPort"][0], int)
    assert ex["dbPassword"] == (DB_PASSWORD, True, True)  # stays secret across stacks
    assert "dbClientAddresses" not in ex  # this stack admits no one: it owns no database
    assert ex["appAddresses"] == (["10.0.4.41", "10.0.4.42"], True, False)
    assert ex["url"] == ("https://app.example.com/", True, False)
    assert ex["adminPassword"] == (ADMIN_PASSWORD, True, True)  # its own superuser


def test_more_workers_than_the_database_stack_counted_fail_the_referencing_stack():
    """The database stack's budget counted each allowed client with its app.workers (3): a
    referencing stack with 4 per server would overrun max_connections, so it stops."""
    _, db_graph, _, _ = _two_stacks()
    db_exports = {k: v[0] for k, v in db_graph.exports.items()}
    assert db_exports["dbWorkersPerClient"] == 3
    config, secret_keys = cli_stack_config(FIXTURES / "stack_dbref.yaml", SECRETS)
    app = json.loads(config["djscale:app"])
    app["workers"] = 4
    config["djscale:app"] = json.dumps(app)
    with pytest.raises(ValueError) as err:
        run_program(config, secret_keys=secret_keys, stack="app",
                    stack_references={DB_STACK: (db_exports, ["dbPassword"])})
    assert (f"app.workers: 4 is more than the database of {DB_STACK} counts per client (3, "
            "its app.workers): lower it, or raise app.workers (and database.maxConnections) "
            "of that stack and update it first") in str(err.value)
    registered = {r.name for r in run_program.last_monitor.registrations}
    assert not {"app1-env-file", "app1-start"} & registered


def test_a_database_stack_without_a_certificate_fails_the_referencing_stack():
    """A database stack deployed by a djscale without TLS exports no dbCaCert: the app
    stack stops, saying what to do, instead of deploying app servers that cannot verify."""
    _, db_graph, _, _ = _two_stacks()
    db_exports = {k: v[0] for k, v in db_graph.exports.items() if k != "dbCaCert"}
    with pytest.raises(ValueError) as err:
        _run(FIXTURES / "stack_dbref.yaml", "app",
             stack_references={DB_STACK: (db_exports, ["dbPassword"])})
    assert (f"database.stack: {DB_STACK} exports no dbCaCert (its database takes no TLS "
            "yet); update that stack with this djscale first") in str(err.value)
    registered = {r.name for r in run_program.last_monitor.registrations}
    assert not {"app1-db-ca-file", "app1-start"} & registered


def test_a_database_stack_that_exports_nothing_fails_the_referencing_stack_by_name():
    """A stack that exists but was never deployed, or was destroyed, has no outputs (the
    engine reads it all the same): the program names every missing export and what to do,
    not the SDK's KeyError of one of them; nothing reaches an app server."""
    _, db_graph, _, _ = _two_stacks()
    for exports, secret_names in (({}, []), (
            {k: v[0] for k, v in db_graph.exports.items() if k not in ("dbPort", "dbPassword")},
            [])):
        with pytest.raises(ValueError) as err:
            _run(FIXTURES / "stack_dbref.yaml", "app",
                 stack_references={DB_STACK: (exports, secret_names)})
        missing = "dbPrivateAddress, dbPort, dbName, dbUser, dbPassword" if not exports else \
            "dbPort, dbPassword"
        assert (f"database.stack: {DB_STACK} exports no {missing}: name the stack that deploys "
                "the database, and deploy it (pulumi up) before this one") in str(err.value)
        assert "KeyError" not in str(err.value)
        registered = {r.name for r in run_program.last_monitor.registrations}
        assert not {"app1-env-file", "app1-db-ca-file", "app1-start"} & registered


def test_referencing_stack_previews_with_the_database_stacks_outputs():
    _, db_graph, _, app_graph = _two_stacks()
    db_exports = {k: v[0] for k, v in db_graph.exports.items()}
    preview = _run(FIXTURES / "stack_dbref.yaml", "app", preview=True,
                   stack_references={DB_STACK: (db_exports, ["dbPassword"])})
    assert sorted((r.type, r.name) for r in preview.registrations) == sorted(
        (r.type, r.name) for r in app_graph.registrations)
    assert preview.exports["dbPrivateAddress"] == ("10.0.4.10", True, False)


def test_app_servers_the_database_stack_does_not_admit_fail_the_program():
    """Caught in preview too (a StackReference reads the other stack's state): no env file,
    hence no container, is ever deployed against a database that would refuse it."""
    db_graph = _run(STACKS["dev"], "dev")  # admits only its own app servers
    db_exports = {k: v[0] for k, v in db_graph.exports.items()}
    for preview in (True, False):
        with pytest.raises(ValueError) as err:  # Pulumi wraps the program's ConfigError
            _run(FIXTURES / "stack_dbref.yaml", "app", preview=preview,
                 stack_references={DB_STACK: (db_exports, ["dbPassword"])})
        for i, address in enumerate(["10.0.4.41", "10.0.4.42"]):
            assert (f"appServers[{i}].privateAddress: '{address}' is not admitted by the "
                    f"database of {DB_STACK}; add it to database.allowedClients of that stack "
                    "and update it first") in str(err.value)
        registered = {r.name for r in run_program.last_monitor.registrations}
        assert not {"app1-env-file", "app2-env-file", "app1-start"} & registered


# --- SSH key from a file; deletes ----------------------------------------------------------

def test_ssh_key_from_a_path_is_read_as_a_secret(tmp_path):
    key = tmp_path / "deploy_key"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nFROM-A-FILE\n"
                   "-----END OPENSSH PRIVATE KEY-----\n")
    key.chmod(0o600)
    config, secret_keys = cli_stack_config(STACKS["dev"], {"staticStorageSecretKey": S3_SECRET,
                                                           "backupStorageSecretKey": BACKUP_SECRET})
    config["djscale:ssh"] = json.dumps({**json.loads(config["djscale:ssh"]),
                                        "privateKeyPath": str(key)})
    assert config["djscale:sshPrivateKey"] == ""  # the project's default: not set
    graph = run_program(config, secret_keys=secret_keys, stack="dev")
    for r in graph.of_type(COMMAND):
        assert is_secret(r.input("connection"))
        assert "FROM-A-FILE" in plain(r.input("connection"))["privateKey"]
    leaks = [r.name for r in graph.registrations
             for _ in _unmarked_occurrences(r.raw_inputs, "FROM-A-FILE")]
    assert leaks == []


def test_the_secret_ssh_key_never_reaches_the_operators_disk():
    import os
    home = Path(os.environ["DJSCALE_HOME"])
    _run(STACKS["prod"], "prod")
    for path in home.rglob("*"):
        if path.is_file():
            assert "MOCK-SSH-KEY-MATERIAL" not in path.read_text(errors="replace"), path


def test_no_command_gets_its_previous_output_in_its_environment(deployed):
    """`addPreviousOutputInEnv: false` on every command: pulumi-command would otherwise send
    the last stdout and stderr as PULUMI_COMMAND_STDOUT/STDERR (remote: SSH env requests,
    which sshd drops unless AcceptEnv admits them), and the test-bed engine cannot send what
    OpenSSH's SetEnv cannot carry (tests/testbed/engine/__init__.py): no step may rely on
    them, and a secret step's output must not travel again."""
    _, _, graph = deployed
    for r in graph.of_type(COMMAND) + graph.of_type(LOCAL):
        assert r.input("addPreviousOutputInEnv") is False, r.name


def test_only_teardowns_and_undoable_steps_have_a_delete(deployed):
    _, cfg, graph = deployed
    with_delete = {r.name for r in graph.of_type(COMMAND) if r.input("delete")}
    undoable = {"proxy-renew-enable", "proxy-watch-enable", "proxy-slots-enable",
                "db-backup-enable", *(f"{h.name}-drain-enable" for h in cfg.app_servers)}
    assert with_delete == {*undoable, "proxy-teardown", "db-backup-teardown",
                           *(f"{h.name}-teardown" for h in cfg.app_servers)}
    # a replacement must not run the old step's delete after the new step's create
    for name in undoable:
        assert graph.named(name).delete_before_replace, name
    for name in with_delete - undoable:  # nothing to create: never replaced
        teardown = graph.named(name)
        assert teardown.input("create") is None and teardown.input("triggers") is None


# --- what re-runs: a change touches exactly the steps that depend on it --------------------

NEW_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMSw6/YXkfkmoWlczWgnknM41VXRWpYPLHb2sAPJS/iu"


def _pin(config: dict, address: str, key, instead_of: str = "") -> None:
    """ssh.hostKeys in the CLI's config: pin `address` (None: unpin it)."""
    ssh = json.loads(config["djscale:ssh"])
    ssh["hostKeys"].pop(instead_of, None)
    if key is None:
        del ssh["hostKeys"][address]
    else:
        ssh["hostKeys"][address] = key
    config["djscale:ssh"] = json.dumps(ssh)


def _changed(before: Graph, after: Graph) -> set[str]:
    old = {r.name: r.raw_inputs for r in before.registrations}
    return {r.name for r in after.registrations if r.name in old and old[r.name] != r.raw_inputs}


def test_adding_an_app_server_changes_only_its_peers_allow_lists_and_upstreams():
    path = STACKS["two_apps"]
    before = _run(path, "two_apps")
    config, secret_keys = cli_stack_config(path, SECRETS)
    servers = json.loads(config["djscale:appServers"])
    servers.append({"name": "app3", "address": "203.0.113.23", "privateAddress": "10.0.0.23"})
    config["djscale:appServers"] = json.dumps(servers)
    _pin(config, "203.0.113.23", NEW_HOST_KEY)
    after = run_program(config, secret_keys=secret_keys, stack="two_apps")

    added = {r.name for r in after.registrations} - {r.name for r in before.registrations}
    assert added == {"app3", *(f"app3-{s}" for s in (
        "install-docker", "firewall", "drain-script", "drain-service", "drain-enable",
        "image", "env-file", "db-ca-file", "start", "retire", "prune-images", "teardown"))}
    assert _changed(before, after) == {
        "db-pg-hba", "db-configure", "db-firewall",  # the DB admits the new address
        "db-pg-hba-revoke", "db-firewall-revoke",  # the exact lists (nothing to remove)
        "proxy-nginx-http-conf", "proxy-nginx-tls-conf",  # nginx balances over it
        "proxy-upstream-slots",  # on its live slot
    }


def test_new_app_code_rebuilds_releases_and_rolls_out_nothing_else(monkeypatch):
    path = STACKS["prod"]
    before = _run(path, "prod")
    import components.render.app_image as app_image
    monkeypatch.setattr(app_image, "app_content_hash", lambda *a: "0123456789abcdef")
    after = _run(path, "prod")
    hosts = [h.name for h in _cfg(path).app_servers]
    assert _changed(before, after) == {
        f"{hosts[0]}-upload-context", *(f"{h}-image" for h in hosts),  # built once, shipped
        f"{hosts[0]}-release", *(f"{h}-start" for h in hosts),
        *(f"{h}-prune-images" for h in hosts)}
    assert "tag=djscale-app:0123456789abcdef\n" in plain(
        after.named(f"{hosts[0]}-image").input("create"))


def _runs_again(before: Graph, after: Graph) -> set[str]:
    """The resources whose work pulumi-command v1.2.1 would do again on `pulumi up` from
    `before` to `after` (provider/pkg/provider/remote/): a change to `triggers` replaces
    (their replaceOnChanges), so `create` runs or the copy is made; any other input change is
    an Update, which for a Command runs `update`, else `create` (commandController.go, Update;
    nothing for a teardown, which has only a `delete`), and for a CopyToRemote copies again
    only when the source or `remotePath` changed, not when the connection did
    (copyController.go, Update: `needCopy := news.hash() != olds.hash() || news.RemotePath !=
    olds.RemotePath`)."""
    old = {r.name: r.raw_inputs for r in before.registrations}
    again = set()
    for r in after.registrations:
        was = old.get(r.name)
        if was is None or was == r.raw_inputs or r.type not in (COMMAND, COPY, LOCAL):
            continue
        if was.get("triggers") != r.raw_inputs.get("triggers"):
            again.add(r.name)
        elif r.type == COPY:
            if any(was.get(k) != r.raw_inputs.get(k) for k in ("source", "remotePath")):
                again.add(r.name)
        elif r.raw_inputs.get("update") or r.raw_inputs.get("create"):
            again.add(r.name)
    return again


@pytest.mark.parametrize("index, address", [
    (1, "192.0.2.99"),  # a new machine on a new address
    (1, None),          # a new machine behind the same address: only its host key differs
    (0, None),          # the same for the first app server, which builds from the upload
    (0, "192.0.2.99"),
], ids=["app2-new-address", "app2-same-address", "app1-same-address", "app1-new-address"])
def test_a_new_machine_behind_an_app_servers_address_gets_everything_again(
        index, address, monkeypatch):
    """A replaced machine (README, "Replace a server": pin its key, `pulumi up`): every step
    of that server has the new connection, so pulumi-command's Update runs it again there
    (commandController.go, Update). The upload is copied again: the address, port and host
    key are its triggers (replaceOnChanges), since its Update copies only on a source or path
    change (copyController.go), and without the context the first server's image step fails
    on the new machine. Nothing else changes for another server. The first one builds again
    on the new machine, with no cache there: a new image id (simulated here, the mock's id is
    otherwise a digest of the build script), so the others ship it and roll to it too."""
    path = STACKS["prod"]
    before = _run(path, "prod")
    config, secret_keys = cli_stack_config(path, SECRETS)
    servers = json.loads(config["djscale:appServers"])
    name, old_address = servers[index]["name"], servers[index]["address"]
    address = address or old_address
    servers[index]["address"] = address
    config["djscale:appServers"] = json.dumps(servers)
    _pin(config, address, NEW_HOST_KEY, instead_of=old_address)  # the new machine's
    if index == 0:
        import tests.support.pulumi_mocks as mocks
        digest = mocks._fake_digest
        monkeypatch.setattr(mocks, "_fake_digest", lambda text: digest(text + "rebuilt"))
    after = run_program(config, secret_keys=secret_keys, stack="prod")
    own = {r.name for r in after.registrations if r.name.startswith(f"{name}-")}
    rolled = {f"{s['name']}-{step}" for s in servers[1:]
              for step in ("image", "start", "prune-images")} if index == 0 else set()
    assert _changed(before, after) == own | rolled
    assert _runs_again(before, after) == own - {f"{name}-teardown"} | rolled
    if index == 0:
        assert f"{name}-upload-context" in own
    for step in own - {f"{name}-image"} if index else own:  # others ship from this machine
        connection = plain(after.named(step).input("connection"))
        assert (connection["host"], connection["hostKey"]) == (address, NEW_HOST_KEY)
    ships = own & {f"{name}-image"} if index else {f"{s['name']}-image" for s in servers[1:]}
    for ship in ships:
        request = json.loads(plain(after.named(ship).input("stdin")))
        end = "source" if index == 0 else "target"
        assert (request[end]["host"], request[end]["hostKey"]) == (address, NEW_HOST_KEY)


def test_removing_a_server_renames_nothing_and_touches_only_its_peers():
    """Names are the servers' own (required): removing app2 of three leaves app1's and
    app3's resources as they were, apart from the allow-lists and upstreams that listed it;
    app2's resources leave the program (its teardown runs on app2, with app2's connection)."""
    path = STACKS["prod"]
    before = _run(path, "prod")
    config, secret_keys = cli_stack_config(path, SECRETS)
    servers = json.loads(config["djscale:appServers"])
    del servers[1]
    config["djscale:appServers"] = json.dumps(servers)
    _pin(config, "192.0.2.22", None)  # its pin goes with it (it would pin no host)
    after = run_program(config, secret_keys=secret_keys, stack="prod")
    gone = {r.name for r in before.registrations} - {r.name for r in after.registrations}
    assert gone == {"app2", *(r.name for r in before.registrations
                              if r.name.startswith("app2-"))}
    assert _changed(before, after) == {
        "db-pg-hba", "db-configure", "db-firewall",  # staged; the live lists keep it...
        "db-pg-hba-revoke", "db-firewall-revoke",  # ...until these: the database drops it
        "proxy-nginx-http-conf", "proxy-nginx-tls-conf",  # nor does the upstream list it
        "proxy-upstream-slots",  # nor route it
    }
    # it loses its database access only once nginx no longer sends it requests (a request
    # it still serves may need a new connection); what admits servers does not wait
    for revoke in ("db-pg-hba-revoke", "db-firewall-revoke"):
        assert {"proxy-nginx-tls-conf", "proxy-upstream-slots"} <= after.deps(
            after.named(revoke)), revoke
    for admit in ("db-configure", "db-firewall"):
        assert not {"proxy-nginx-tls-conf", "proxy-upstream-slots"} & after.deps(
            after.named(admit)), admit
    assert "app1-start" in after.deps(after.named("app3-start"))  # the rollout order
    teardown = before.named("app2-teardown")
    assert plain(teardown.input("connection"))["host"] == "192.0.2.22"


def test_removing_the_first_app_server_makes_the_next_the_builder_and_rolls_the_others(
        monkeypatch):
    """README, "Remove a server": the first app server builds (appServers[0]); without it the
    next one gets the upload, builds again and runs the release, and since a BuildKit build
    records creation times the rebuilt image has a new id (simulated here: the mock's image id
    is otherwise a digest of the build script, the same on both), so every remaining server
    starts new containers from it, in the rollout's batches."""
    path = STACKS["prod"]
    before = _run(path, "prod")
    config, secret_keys = cli_stack_config(path, SECRETS)
    servers = json.loads(config["djscale:appServers"])
    first = servers.pop(0)
    config["djscale:appServers"] = json.dumps(servers)
    _pin(config, first["address"], None)
    import tests.support.pulumi_mocks as mocks
    digest = mocks._fake_digest
    monkeypatch.setattr(mocks, "_fake_digest", lambda text: digest(text + "rebuilt"))
    after = run_program(config, secret_keys=secret_keys, stack="prod")

    def resources(graph: Graph) -> set[tuple[str, str]]:
        return {(r.type, r.name) for r in graph.registrations}
    gone, added = resources(before) - resources(after), resources(after) - resources(before)
    assert {n for t, n in gone if not n.startswith(f"{first['name']}-")} == {
        first["name"], "app2-image"}
    # app2's image step was a ship (a local command): now the build, after its own upload,
    # and the release runs there (a new resource: it runs whatever the image id)
    assert (LOCAL, "app2-image") in gone and added == {
        (COMMAND, "app2-image"), (COPY, "app2-upload-context"), (COMMAND, "app2-release")}
    assert "docker build" in plain(after.named("app2-image").input("create"))
    image = after.named("app2-image").urn
    assert image in after.named("app3-image").property_dependencies["stdin"]  # from app2 now
    assert json.loads(plain(after.named("app3-image").input("stdin")))["source"]["host"] == \
        servers[0]["address"]
    # a new image id: every remaining server's containers are replaced, old images pruned
    assert _changed(before, after) == {
        "app2-image", "app3-image", "app2-start", "app3-start", "app2-prune-images",
        "app3-prune-images",
        "db-pg-hba", "db-configure", "db-firewall",  # staged; app1 is revoked...
        "db-pg-hba-revoke", "db-firewall-revoke",  # ...once nginx no longer routes to it
        "proxy-nginx-http-conf", "proxy-nginx-tls-conf",  # nor does the upstream list it
        "proxy-upstream-slots"}  # nor route it
    assert "app2-start" in after.deps(after.named("app3-start"))  # in batches, as a release


# --- rollout at scale (issue 10, item 3) --------------------------------------------------

_PIN = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID9iDKygqTjLJTGNlrrfSNS7J7u4Nej213ePYwi3Q0or"


def _fleet_stack(tmp_path: Path, servers: int, batch_size: str) -> Path:
    """A stack with `servers` app servers (10.1.x.y), every host pinned, a connection budget
    that fits them."""
    apps = [f"10.1.{1 + i // 200}.{10 + i % 200}" for i in range(servers)]
    hosts = ["10.1.0.2", "203.0.113.40", *apps]
    lines = ["config:", "  djscale:domain: fleet.example.com",
             "  djscale:sshPrivateKey:", "    secure: v1:fixture-placeholder-not-a-ciphertext",
             "  djscale:staticStorageSecretKey:",
             "    secure: v1:fixture-placeholder-not-a-ciphertext",
             "  djscale:acme:", "    email: ops@example.com",
             "  djscale:ssh:", "    hostKeys:", *(f"      {h}: {_PIN}" for h in hosts),
             "  djscale:database:", "    address: 10.1.0.2", "    privateAddress: 10.1.0.2",
             f"    maxConnections: {servers * 3 + 20}",
             "  djscale:appServers:",
             *(f"    - {{name: app{i + 1}, address: {a}, privateAddress: {a}}}"
               for i, a in enumerate(apps)),
             "  djscale:proxy:", "    address: 203.0.113.40", "    privateAddress: 10.1.0.3",
             "  djscale:app:", "    superuser:", "      email: admin@example.com",
             "  djscale:staticStorage:", "    bucket: fleet-static",
             "    accessKeyId: AKIAEXAMPLEFIXTURE01",
             "  djscale:firewall:", "    adminCidrs: [10.1.0.5/32]",
             "  djscale:backups:", "    enabled: false",
             "  djscale:rollout:", f"    batchSize: {batch_size!r}"]
    path = tmp_path / f"Pulumi.fleet-{servers}-{batch_size.strip('%')}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def critical_path(graph: Graph) -> int:
    """Resources on the longest dependency chain of a fresh deploy: what the engine runs one
    after another however many steps it runs at once (components and the stack excluded)."""
    resources = {r.name: r for r in graph.registrations if r.type in (COMMAND, COPY, LOCAL)}
    longest: dict[str, int] = {}

    def depth(name: str) -> int:
        if name not in longest:
            longest[name] = 1 + max((depth(d) for d in graph.deps(resources[name])
                                     if d in resources), default=0)
        return longest[name]

    return max(depth(name) for name in resources)


def test_with_a_percentage_the_deploy_critical_path_does_not_grow_with_the_fleet(tmp_path):
    depths = {n: critical_path(_run(_fleet_stack(tmp_path, n, "25%"), f"fleet{n}"))
              for n in (2, 10, 50)}
    # 25%: two batches of one for two servers, four batches from four servers on
    assert depths[10] == depths[50] and depths[2] < depths[10], depths
    # a fixed batch of one server, for contrast: one more step on the path per server
    one_by_one = {n: critical_path(_run(_fleet_stack(tmp_path, n, "1"), f"serial{n}"))
                  for n in (2, 10)}
    assert one_by_one[10] - one_by_one[2] == 8, one_by_one
    assert depths[50] < one_by_one[10], (depths, one_by_one)
