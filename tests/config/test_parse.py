"""parse_config (components/config/parse.py): one test per validation rule, each asserting the exact problem text."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from components.config import (
    SECRET_KEYS, AppConfig, BackupsConfig, ConfigError, ImagesConfig, MaintenanceConfig,
    NginxConfig,
    parse_config, unchecked_host_keys_warning,
)
from components.config import read_stack_file

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
BOTH_SECRETS = frozenset(SECRET_KEYS)

# Real ed25519 public keys (ssh-keygen; the private halves were thrown away).
PINS = {
    "203.0.113.10":
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID9iDKygqTjLJTGNlrrfSNS7J7u4Nej213ePYwi3Q0or",
    "203.0.113.21":
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKYGe9V/z0QQGoq7eaddGGuIuSm5yKzCH/CtwoFLnbFm",
    "203.0.113.22":
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN8+NO+UNlbUIzjgHhmMV/MUn9d5y5IQc+LpjHgPYsEv",
    "203.0.113.30":
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPiFQ2oeufbeSi9pY4+7n18YGzdV0UmTOysIytdZz5Jx",
}
SPARE_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFSUMFKddJAidHwfgktDSTkMV7vLcNJfW0XKHbXuWI5l"

VALID = {
    "domain": "www.example.com",
    "acme": {"email": "ops@example.com"},
    "ssh": {"hostKeys": PINS},
    "database": {"address": "203.0.113.10", "privateAddress": "10.0.0.10"},
    "appServers": [
        {"name": "app1", "address": "203.0.113.21", "privateAddress": "10.0.0.21"},
        {"name": "app2", "address": "203.0.113.22", "privateAddress": "10.0.0.22"},
    ],
    "proxy": {"address": "203.0.113.30", "privateAddress": "10.0.0.30"},
    "app": {"superuser": {"email": "admin@example.com"}},
    "staticStorage": {"bucket": "site-static", "accessKeyId": "AKIAEXAMPLE"},
    "firewall": {"adminCidrs": ["198.51.100.0/24"]},
    "backups": {"bucket": "site-backups", "accessKeyId": "AKIABACKUPEXAMPLE"},
}


def valid() -> dict:
    return copy.deepcopy(VALID)


def parse(raw: dict, secrets=BOTH_SECRETS, check_files: bool = False):
    return parse_config(raw, secrets, check_files=check_files)


def problems(raw: dict, secrets=BOTH_SECRETS, check_files: bool = False) -> list[str]:
    with pytest.raises(ConfigError) as error:
        parse_config(raw, secrets, check_files=check_files)
    return error.value.problems


def with_value(path: str, value) -> dict:
    """A valid config with one value replaced: path like "acme.email" or "appServers.1.address"."""
    raw = valid()
    *parents, last = path.split(".")
    node = raw
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return raw


def with_pin(address: str, key: str) -> dict:
    """A valid config with one more (or another) entry in ssh.hostKeys."""
    raw = valid()
    raw["ssh"]["hostKeys"][address] = key
    return raw


def with_database(database: dict) -> dict:
    """A valid config with another `database` object; without a database host (database.
    stack) the database's pin goes too (it would pin no host)."""
    raw = with_value("database", database)
    if "address" not in database:
        del raw["ssh"]["hostKeys"]["203.0.113.10"]
        del raw["backups"]  # that stack backs its database up
    return raw


def without(path: str) -> dict:
    raw = valid()
    *parents, last = path.split(".")
    node = raw
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    del node[int(last) if isinstance(node, list) else last]
    return raw


# --- the whole config ------------------------------------------------------------------

def test_valid_config_parses():
    stack = parse(valid())
    assert stack.domain == "www.example.com"
    assert [host.name for host in stack.app_servers] == ["app1", "app2"]
    assert stack.database.host.name == "db"
    assert stack.proxy.name == "proxy"


def test_error_message_lists_every_problem_with_its_path():
    error = ConfigError(["a: x", "b.c: y"])
    assert str(error) == "invalid djscale stack config:\n  - a: x\n  - b.c: y"


def test_all_problems_are_reported_together():
    raw = valid()
    raw["domain"] = "localhost"
    raw["appServers"][1]["address"] = "10.0.0.300"
    raw["nginx"] = {"connectTimeout": "1 sec"}
    raw["firewall"] = {"adminCidrs": []}
    assert problems(raw, secrets={"sshPrivateKey", "backupStorageSecretKey"}) == [
        "domain: 'localhost' is not a fully qualified domain name",
        "appServers[1].address: '10.0.0.300' is not an IPv4 address",
        "staticStorageSecretKey: required secret is missing "
        "(pulumi config set --secret staticStorageSecretKey <value>)",
        "firewall.adminCidrs: at least one CIDR is required "
        "(the networks allowed to connect over SSH)",
        "nginx.connectTimeout: '1 sec' is not an nginx time (e.g. 500ms, 1s, 2m)",
    ]


def test_defaults_applied():
    stack = parse(valid())
    assert stack.acme.staging is False and stack.acme.server is None
    assert stack.acme.expiry_warning_days == 14
    assert stack.acme.directory_url == "https://acme-v02.api.letsencrypt.org/directory"
    assert (stack.ssh.user, stack.ssh.port, stack.ssh.private_key_path) == ("deploy", 22, None)
    assert stack.ssh.host_keys == tuple(PINS.items()) and stack.ssh.bastion is None
    assert stack.ssh.insecure_skip_host_key_check is False
    db = stack.database
    assert (db.name, db.user, db.port, db.postgres_version, db.stack, db.max_connections) == (
        "django", "django", 5432, None, None, 100)
    assert all(host.ssh_port is None for host in (*stack.app_servers, stack.proxy, db.host))
    assert stack.images == ImagesConfig("python:3.12-slim", "nginx:1.30", "certbot/certbot:v5.10.0")
    assert stack.app == AppConfig(port=8000, workers=3, extra_allowed_hosts=(), debug=False,
                                  log_level="INFO", superuser=stack.app.superuser)
    assert (stack.app.superuser.username, stack.app.superuser.email) == (
        "admin", "admin@example.com")
    storage = stack.static_storage
    assert (storage.endpoint_url, storage.region, storage.path_style, storage.custom_domain,
            storage.public_read_acl) == (None, "us-east-1", False, None, True)
    assert stack.nginx == NginxConfig()
    assert (stack.nginx.connect_timeout, stack.nginx.next_upstream_timeout,
            stack.nginx.read_timeout, stack.nginx.max_fails, stack.nginx.request_rate,
            stack.nginx.request_burst, stack.nginx.connections_per_client,
            stack.nginx.login_paths, stack.nginx.login_rate, stack.nginx.login_burst,
            stack.nginx.client_header_timeout, stack.nginx.client_body_timeout) == (
        "200ms", "5s", "30s", 0, "10r/s", 20, 10, ("/admin/login/",), "6r/m", 5, "10s", "10s")


def test_objects_given_as_json_strings_are_accepted():
    raw = valid()
    raw.update(nginx={"readTimeout": "50s", "loginPaths": ["/login/"]},
               ssh={"port": 2222, "hostKeys": PINS})
    as_json = {key: value if isinstance(value, str) else json.dumps(value)
               for key, value in raw.items()}
    assert parse(as_json) == parse(raw)


def test_string_forms_of_integers_and_booleans_are_accepted():
    stack = parse(with_value("ssh.port", "2222") | {"app": {
        "debug": "true", "workers": "3", "superuser": {"email": "admin@example.com"}}})
    assert (stack.ssh.port, stack.app.debug, stack.app.workers) == (2222, True, 3)


@pytest.mark.parametrize("stack_name, app_count, staging", [("dev", 2, True), ("prod", 3, False)])
def test_stack_files_parse(stack_name, app_count, staging):
    raw, present = read_stack_file(ROOT / f"Pulumi.{stack_name}.yaml")
    assert present == frozenset()  # no secret values in the repository, not even encrypted
    stack = parse(raw, secrets=BOTH_SECRETS)
    assert len(stack.app_servers) == app_count
    assert stack.acme.staging is staging
    addresses = [stack.database.host, *stack.app_servers, stack.proxy]
    assert all(host.address.startswith(("192.0.2.", "198.51.100.", "203.0.113."))
               for host in addresses)
    assert all(host.private_address.startswith("10.") for host in addresses)


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("stack_*.yaml")))
def test_fixtures_parse(fixture):
    raw, present = read_stack_file(FIXTURES / fixture)
    parse(raw, secrets=present)


def test_typed_objects():
    stack = parse(read_stack_file(FIXTURES / "stack_five_apps.yaml")[0])
    assert [h.name for h in stack.app_servers] == ["app1", "app2", "app3", "app4", "canary"]
    assert stack.ssh_port_for(stack.app_servers[2]) == 2223
    assert stack.ssh_port_for(stack.app_servers[0]) == 22
    assert (stack.ssh.bastion.address, stack.ssh.bastion.port, stack.ssh.bastion.user) == (
        "bastion.example.com", 2200, "deploy")


# --- required keys ---------------------------------------------------------------------

@pytest.mark.parametrize("path, message", [
    ("domain", "domain: is required"),
    ("database.address", "database.address: is required"),
    ("database.privateAddress", "database.privateAddress: is required"),
    ("proxy", "proxy.address: is required"),
    ("staticStorage.bucket", "staticStorage.bucket: is required"),
    ("staticStorage.accessKeyId", "staticStorage.accessKeyId: is required"),
    ("app", "app.superuser.email: is required"),
    ("appServers", "appServers: is required (a list of at least one app server)"),
    ("firewall", "firewall.adminCidrs: is required (the networks allowed to connect over SSH)"),
])
def test_required_key_missing(path, message):
    assert message in problems(without(path))


def test_at_least_one_app_server():
    raw = with_value("appServers", [])
    raw["ssh"]["hostKeys"] = {"203.0.113.10": PINS["203.0.113.10"],
                              "203.0.113.30": PINS["203.0.113.30"]}
    assert problems(raw) == ["appServers: at least one app server is required"]


def test_static_storage_secret_required():
    assert problems(valid(), secrets={"sshPrivateKey", "backupStorageSecretKey"}) == [
        "staticStorageSecretKey: required secret is missing "
        "(pulumi config set --secret staticStorageSecretKey <value>)"]


def test_secret_in_plain_text_is_rejected():
    raw = valid()
    raw["staticStorageSecretKey"] = "oops"
    assert problems(raw) == [
        "staticStorageSecretKey: must be set as a secret "
        "(pulumi config set --secret staticStorageSecretKey ...), not in plain text"]


# --- types and unknown keys --------------------------------------------------------------

@pytest.mark.parametrize("path, value, message", [
    ("domain", 5, "domain: expected a string, got 5"),
    ("acme", "yes", "acme: expected an object, got 'yes'"),
    ("appServers", "app1", "appServers: expected a list, got 'app1'"),
    ("appServers.0", None, "appServers[0]: expected an object, got null"),
    ("appServers.0.sshPort", "abc", "appServers[0].sshPort: expected an integer, got 'abc'"),
    ("app.debug", "yes", "app.debug: expected true or false, got 'yes'"),
    ("images", {"nginx": ""}, "images.nginx: must not be empty"),
])
def test_wrong_type(path, value, message):
    assert message in problems(with_value(path, value))


@pytest.mark.parametrize("path, message", [
    ("appServer", "appServer: unknown key (did you mean appServers?)"),
    ("appServers.0.adress", "appServers[0].adress: unknown key (did you mean address?)"),
    ("nginx.readTimout", "nginx.readTimout: unknown key (did you mean readTimeout?)"),
    ("app.superuser.mail", "app.superuser.mail: unknown key (did you mean email?)"),
    ("firewall.zzz", "firewall.zzz: unknown key"),
])
def test_unknown_keys(path, message):
    assert message in problems(with_value(path, "x"))


# --- addresses ---------------------------------------------------------------------------

def test_address_must_be_ipv4():
    assert problems(with_value("appServers.1.address", "10.0.0.300")) == [
        "appServers[1].address: '10.0.0.300' is not an IPv4 address"]


def moved(path: str, address: str) -> dict:
    """A valid config with the host at `path` moved to `address`, its pin moved along."""
    raw = with_value(f"{path}.address", address)
    pins = raw["ssh"]["hostKeys"]
    pins[address] = pins.pop(_value_at(VALID, f"{path}.address"))
    return raw


def test_address_may_be_a_dns_name():
    stack = parse(moved("appServers.1", "app2.example.com"))
    assert stack.app_servers[1].address == "app2.example.com"


def test_address_neither_ipv4_nor_dns_name():
    assert problems(with_value("proxy.address", "proxy_1!")) == [
        "proxy.address: 'proxy_1!' is not an IPv4 address or a DNS name"]


def test_private_address_must_be_ipv4_not_a_name():
    assert problems(with_value("proxy.privateAddress", "proxy.internal")) == [
        "proxy.privateAddress: 'proxy.internal' is not an IPv4 address"]


def test_loopback_address_rejected():
    assert problems(with_value("database.privateAddress", "127.0.0.1")) == [
        "database.privateAddress: '127.0.0.1' is not a usable host address"]


def test_duplicate_private_address():
    assert problems(with_value("appServers.1.privateAddress", "10.0.0.21")) == [
        "appServers[1].privateAddress: '10.0.0.21' is already used by appServers[0]"]


def test_duplicate_address_across_roles():
    raw = with_value("proxy.address", "203.0.113.10")
    del raw["ssh"]["hostKeys"]["203.0.113.30"]
    assert problems(raw) == ["proxy.address: '203.0.113.10' is already used by database"]


def test_one_host_may_use_one_address_for_both():
    stack = parse(moved("proxy", "10.0.0.30"))
    assert stack.proxy.address == stack.proxy.private_address == "10.0.0.30"


# --- domain and ACME ---------------------------------------------------------------------

@pytest.mark.parametrize("value, message", [
    ("https://www.example.com", "domain: 'https://www.example.com' must be a bare domain name, "
                                "without a scheme"),
    ("www.example.com/shop", "domain: 'www.example.com/shop' must be a bare domain name, "
                             "without a path"),
    ("localhost", "domain: 'localhost' is not a fully qualified domain name"),
    ("*.example.com", "domain: '*.example.com' is not a fully qualified domain name"),
])
def test_domain_is_fqdn(value, message):
    assert problems(with_value("domain", value)) == [message]


def test_domain_is_lowercased():
    assert parse(with_value("domain", "WWW.Example.COM")).domain == "www.example.com"


def test_domain_aliases_default_to_none_redirected():
    stack = parse(valid())
    assert (stack.domain_aliases, stack.alias_mode) == ((), "redirect")
    assert stack.certificate_names == stack.served_names == ("www.example.com",)


@pytest.mark.parametrize("mode, served, redirected", [
    ("redirect", ("www.example.com",), ("example.com", "shop.example.org")),
    ("serve", ("www.example.com", "example.com", "shop.example.org"), ()),
])
def test_domain_aliases_are_on_the_certificate_and_served_or_redirected(mode, served,
                                                                         redirected):
    raw = with_value("domainAliases", ["Example.COM", "shop.example.org"])
    raw["aliasMode"] = mode
    stack = parse(raw)
    assert stack.certificate_names == ("www.example.com", "example.com", "shop.example.org")
    assert (stack.served_names, stack.redirected_names) == (served, redirected)


def test_names_that_can_never_be_reached_are_refused_with_their_key_path():
    raw = with_value("domainAliases", [
        "example.com", "*.example.com", "203.0.113.7", "2001:db8::1", "www.example.com",
        "https://example.org", "bad_name.example.com", "localhost", "EXAMPLE.com"])
    raw["aliasMode"] = "rewrite"
    assert problems(raw) == [
        "domainAliases[1]: '*.example.com' is a wildcard: djscale proves each name with an "
        "HTTP-01 challenge, and a wildcard can only be proven over DNS-01 (Let's Encrypt "
        "issues wildcards no other way); list each name",
        "domainAliases[2]: '203.0.113.7' is an IP address: the certificate and nginx's "
        "server_name need DNS names (point a name at the proxy and list that)",
        "domainAliases[3]: '2001:db8::1' is an IP address: the certificate and nginx's "
        "server_name need DNS names (point a name at the proxy and list that)",
        "domainAliases[5]: 'https://example.org' must be a bare domain name, without a scheme",
        "domainAliases[6]: 'bad_name.example.com' is not a fully qualified domain name",
        "domainAliases[7]: 'localhost' is not a fully qualified domain name",
        "domainAliases[4]: 'www.example.com' is `domain` itself; remove it",
        "domainAliases[8]: 'example.com' is already listed at domainAliases[0]",
        "aliasMode: 'rewrite' is not one of redirect, serve",
    ]


def test_one_certificate_holds_at_most_100_names():
    aliases = [f"n{i}.example.com" for i in range(99)]
    assert parse(with_value("domainAliases", aliases)).certificate_names[-1] == "n98.example.com"
    assert problems(with_value("domainAliases", [*aliases, "n99.example.com"])) == [
        "domainAliases: 100 names and `domain` are more than the 100 one certificate can hold"]


def test_acme_email_required_unless_staging_or_server():
    assert problems(with_value("acme", {})) == [
        "acme.email: is required unless acme.staging is true or acme.server is set"]
    assert parse(with_value("acme", {"staging": True})).acme.directory_url == (
        "https://acme-staging-v02.api.letsencrypt.org/directory")
    assert parse(with_value("acme", {"server": "https://10.0.3.5:14000/dir"})).acme.email is None


def test_acme_email_well_formed():
    assert problems(with_value("acme.email", "ops-at-example.com")) == [
        "acme.email: 'ops-at-example.com' is not an email address"]


def test_acme_expiry_warning_days_within_a_year():
    assert parse(with_value("acme.expiryWarningDays", "7")).acme.expiry_warning_days == 7
    assert problems(with_value("acme.expiryWarningDays", 0)) == [
        "acme.expiryWarningDays: must be at least 1, got 0"]
    assert problems(with_value("acme.expiryWarningDays", 366)) == [
        "acme.expiryWarningDays: must be at most 365, got 366"]
    assert problems(with_value("acme.expiryWarningDays", 1.5)) == [
        "acme.expiryWarningDays: expected an integer, got 1.5"]


def test_acme_server_https():
    assert problems(with_value("acme.server", "http://ca.example.com/dir")) == [
        "acme.server: 'http://ca.example.com/dir' must be an https:// URL"]


# --- ports -------------------------------------------------------------------------------

@pytest.mark.parametrize("path, value, message", [
    ("ssh.port", 70000, "ssh.port: 70000 is not a port number (1-65535)"),
    ("appServers.0.sshPort", 0, "appServers[0].sshPort: 0 is not a port number (1-65535)"),
    ("database.port", -5, "database.port: -5 is not a port number (1-65535)"),
    ("app.port", 65535, "app.port: must be at most 65534, got 65535"),  # + 1 for a release
])
def test_ports_in_range(path, value, message):
    assert problems(with_value(path, value)) == [message]


@pytest.mark.parametrize("changes, message", [
    ({"ssh.port": 8001},
     "app.port: 8000 puts the app's two slots on ports 8000 and 8001, and 8001 is ssh.port; "
     "choose another app.port"),
    ({"appServers.1.sshPort": 8000},
     "app.port: 8000 puts the app's two slots on ports 8000 and 8001, and 8000 is "
     "appServers[1].sshPort; choose another app.port"),
    ({"proxy.sshPort": 8000, "database.sshPort": 8000},
     "app.port: 8000 puts the app's two slots on ports 8000 and 8001, and 8000 is "
     "database.sshPort and proxy.sshPort; choose another app.port"),
    ({"app.port": 5431, "ssh.port": 5431},
     "app.port: 5431 puts the app's two slots on ports 5431 and 5432, and 5431 is ssh.port "
     "and 5432 is database.port; choose another app.port"),
    ({"app.port": 21},
     "app.port: 21 puts the app's two slots on ports 21 and 22, and 22 is ssh.port; choose "
     "another app.port"),
])
def test_app_ports_are_neither_an_ssh_port_nor_the_database_port(changes, message):
    raw = valid()
    for path, value in changes.items():
        node = raw
        *parents, last = path.split(".")
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        node[last] = value
    assert problems(raw) == [message]


def test_app_ports_may_follow_ports_nothing_listens_on():
    raw = with_value("app.port", 2223)  # the SSH port (22) and the database's are elsewhere
    raw["database"]["port"] = 2222
    assert parse(raw).app.port == 2223
    raw = with_value("app.port", 5432)  # another stack's database: its port is not ours
    raw["database"] = {"stack": "org/project/db"}
    raw.pop("backups", None)  # the database's own stack backs it up
    raw["ssh"]["hostKeys"] = {a: k for a, k in PINS.items() if a != "203.0.113.10"}
    assert parse(raw).app.port == 5432


# --- SSH ---------------------------------------------------------------------------------

def test_ssh_key_missing():
    assert problems(valid(), secrets={"staticStorageSecretKey", "backupStorageSecretKey"}) == [
        "sshPrivateKey: no SSH key: set the sshPrivateKey secret "
        "(pulumi config set --secret sshPrivateKey < KEYFILE) or ssh.privateKeyPath"]


def test_ssh_key_twice():
    assert problems(with_value("ssh.privateKeyPath", "/keys/id")) == [
        "ssh.privateKeyPath: set together with the sshPrivateKey secret; use one of them"]


def private_key_file(tmp_path: Path, text: str = "-----BEGIN OPENSSH PRIVATE KEY-----\n"
                                                 "b3BlbnNzaC1rZXktdjE=\n"
                                                 "-----END OPENSSH PRIVATE KEY-----\n") -> Path:
    key = tmp_path / "id_ed25519"
    key.write_text(text)
    return key


def test_ssh_key_file_checked(tmp_path):
    key = private_key_file(tmp_path)
    stack = parse(with_value("ssh.privateKeyPath", str(key)),
                  secrets={"staticStorageSecretKey", "backupStorageSecretKey"}, check_files=True)
    assert stack.ssh.private_key_path == str(key)


def test_ssh_key_file_missing():
    raw = with_value("ssh.privateKeyPath", "/nonexistent/id_ed25519")
    assert problems(raw, secrets={"staticStorageSecretKey", "backupStorageSecretKey"}, check_files=True) == [
        "ssh.privateKeyPath: '/nonexistent/id_ed25519' does not exist"]
    parse(raw, secrets={"staticStorageSecretKey", "backupStorageSecretKey"}, check_files=False)  # inspect/mocks skip it


def test_ssh_key_file_is_a_directory(tmp_path):
    raw = with_value("ssh.privateKeyPath", str(tmp_path))
    assert problems(raw, secrets={"staticStorageSecretKey", "backupStorageSecretKey"}, check_files=True) == [
        f"ssh.privateKeyPath: '{tmp_path}' is not a file"]


def test_ssh_key_file_must_hold_a_private_key(tmp_path):
    key = private_key_file(tmp_path, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI\n")
    raw = with_value("ssh.privateKeyPath", str(key))
    assert problems(raw, secrets={"staticStorageSecretKey", "backupStorageSecretKey"}, check_files=True) == [
        f"ssh.privateKeyPath: '{key}' is not a private key file "
        "(no '-----BEGIN ... PRIVATE KEY-----' line)"]


def test_ssh_key_path_expands_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    private_key_file(tmp_path)
    stack = parse(with_value("ssh.privateKeyPath", "~/id_ed25519"),
                  secrets={"staticStorageSecretKey", "backupStorageSecretKey"}, check_files=True)
    assert stack.ssh.private_key_path == str(tmp_path / "id_ed25519")


def test_ssh_user_valid():
    assert problems(with_value("ssh.user", "Deploy User")) == [
        "ssh.user: 'Deploy User' is not a valid user name"]


HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHnl8GVYAFjQnt570xK8EvXFN4OsRKFGPsEmBuI7oUOp"


def test_host_keys_pinned():
    stack = parse(valid())
    assert stack.ssh.host_key_for("203.0.113.21") == PINS["203.0.113.21"]
    assert stack.ssh.host_key_for("198.51.100.99") is None


def test_host_key_address_is_an_address():
    assert problems(with_pin("app 1", HOST_KEY)) == [
        "ssh.hostKeys['app 1']: 'app 1' is not an IPv4 address or a DNS name"]
    assert problems(with_pin("203.0.113.21\n", HOST_KEY)) == [
        "ssh.hostKeys['203.0.113.21\\n']: '203.0.113.21\\n' contains a control character "
        "(U+000A)"]


def test_host_key_format():
    assert problems(with_pin("203.0.113.21", "AAAAC3NzaC1lZDI1NTE5")) == [
        "ssh.hostKeys['203.0.113.21']: 'AAAAC3NzaC1lZDI1NTE5' is not a public host key "
        "('<type> <base64>', as printed by ssh-keyscan without the host name)"]


def test_host_key_for_unknown_address():
    assert problems(with_pin("198.51.100.99", HOST_KEY)) == [
        "ssh.hostKeys['198.51.100.99']: not the address of any host "
        "(keys are looked up by `address`)"]


def test_bastion_needs_address_and_defaults_user():
    assert problems(with_value("ssh.bastion", {"port": 2200})) == [
        "ssh.bastion.address: is required"]
    raw = with_pin("192.0.2.5", SPARE_KEY)
    raw["ssh"].update(user="ops", bastion={"address": "192.0.2.5"})
    stack = parse(raw)
    assert (stack.ssh.bastion.user, stack.ssh.bastion.port) == ("ops", 22)


# --- every host pinned (issue 9, item 1) -----------------------------------------------------

def unpinned(address: str) -> str:
    return (f"{address!r} has no pinned SSH host key in ssh.hostKeys: run `python -m "
            "components.hostkeys --stack <stack>`, compare the fingerprints it prints with the "
            "server's own and paste its ssh.hostKeys into the stack file (or set "
            "ssh.insecureSkipHostKeyCheck: true to connect without checking)")


def test_every_host_and_the_bastion_must_be_pinned():
    """pulumi-command accepts any host key when none is given: one problem per host, naming
    its key path and address, and how to pin it."""
    raw = with_value("ssh", {"bastion": {"address": "jump.example.com"}})
    assert problems(raw) == [
        f"ssh.bastion.address: {unpinned('jump.example.com')}",
        f"database.address: {unpinned('203.0.113.10')}",
        f"appServers[0].address: {unpinned('203.0.113.21')}",
        f"appServers[1].address: {unpinned('203.0.113.22')}",
        f"proxy.address: {unpinned('203.0.113.30')}"]


def test_one_unpinned_host_is_one_problem():
    raw = valid()
    del raw["ssh"]["hostKeys"]["203.0.113.22"]
    assert problems(raw) == [f"appServers[1].address: {unpinned('203.0.113.22')}"]


def test_a_database_of_another_stack_needs_no_pin():
    stack = parse(with_database({"stack": "example-org/djscale/db-prod"}))
    assert [target.name for target in stack.ssh_targets()] == ["app1", "app2", "proxy"]


def test_pins_match_addresses_without_case():
    raw = moved("appServers.1", "App2.Example.com")
    raw["ssh"]["hostKeys"]["app2.example.com"] = raw["ssh"]["hostKeys"].pop("App2.Example.com")
    assert parse(raw).ssh.host_key_for("App2.Example.com") == PINS["203.0.113.22"]


def test_an_address_pinned_twice():
    raw = moved("appServers.1", "app2.example.com")
    raw["ssh"]["hostKeys"]["APP2.example.com"] = SPARE_KEY
    assert problems(raw) == ["ssh.hostKeys['app2.example.com']: 'app2.example.com' is pinned "
                             "twice (also as 'APP2.example.com')"]


def test_insecure_skip_host_key_check_admits_unpinned_hosts_and_warns():
    raw = with_value("ssh", {"insecureSkipHostKeyCheck": True,
                             "hostKeys": {"203.0.113.10": PINS["203.0.113.10"]}})
    stack = parse(raw)
    assert [t.name for t in stack.unpinned_targets()] == ["app1", "app2", "proxy"]
    assert unchecked_host_keys_warning(stack, "dev") == (
        "ssh.insecureSkipHostKeyCheck is true: the SSH host key of app1 (203.0.113.21), "
        "app2 (203.0.113.22), proxy (203.0.113.30) is NOT checked. Whoever can intercept "
        "these connections can pose as the host and receive the deploy's commands and "
        "secrets. Pin them: python -m components.hostkeys --stack dev")


def test_no_warning_when_every_host_is_pinned_or_the_flag_is_off():
    assert unchecked_host_keys_warning(parse(valid()), "dev") is None
    flagged = parse(with_value("ssh.insecureSkipHostKeyCheck", True))  # nothing unpinned
    assert unchecked_host_keys_warning(flagged, "dev") is None


def test_insecure_skip_host_key_check_is_a_boolean():
    assert problems(with_value("ssh.insecureSkipHostKeyCheck", "yes")) == [
        "ssh.insecureSkipHostKeyCheck: expected true or false, got 'yes'"]


def test_pinning_can_be_left_to_the_command_that_pins():
    """components/hostkeys.py reads a stack whose hosts are not pinned yet."""
    stack = parse_config(with_value("ssh", {}), BOTH_SECRETS, check_files=False,
                         require_host_keys=False)
    assert len(stack.unpinned_targets()) == 4


# --- host names --------------------------------------------------------------------------

def test_app_server_names():
    stack = parse(with_value("appServers.1.name", "canary"))
    assert [host.name for host in stack.app_servers] == ["app1", "canary"]


def test_app_server_names_are_required_so_they_never_shift():
    """Names keep each server's resources (URNs) when another server is removed; the message
    says how an existing stack keeps its current names."""
    raw = without("appServers.1.name")
    assert problems(raw) == [
        "appServers[1].name: is required: resources are named after it, so it must not change "
        "when other servers come and go (a stack deployed before names were required: write "
        "the name each server has now, app1, app2, … in list order)"]


def test_app_server_name_format():
    assert problems(with_value("appServers.0.name", "App_1")) == [
        "appServers[0].name: 'App_1' must be lowercase letters, digits and inner hyphens"]


def test_app_server_names_unique():
    assert problems(with_value("appServers.1.name", "app1")) == [
        "appServers[1].name: 'app1' is already used by appServers[0]"]
    assert problems(with_value("appServers.0.name", "proxy")) == [
        "appServers[0].name: 'proxy' is already used by proxy"]


# --- firewall ----------------------------------------------------------------------------

def test_admin_cidrs():
    stack = parse(with_value("firewall.adminCidrs", ["198.51.100.7", "0.0.0.0/0"]))
    assert stack.firewall.admin_cidrs == ("198.51.100.7/32", "0.0.0.0/0")


def test_admin_cidrs_may_be_ipv6_in_ufws_spelling():
    stack = parse(with_value("firewall.adminCidrs",
                             ["2001:DB8:1:0::/48", "2001:db8::7", "198.51.100.0/24"]))
    assert stack.firewall.admin_cidrs == ("2001:db8:1::/48", "2001:db8::7/128",
                                          "198.51.100.0/24")


@pytest.mark.parametrize("value, message", [
    ("10.0.0.5/24", "firewall.adminCidrs[0]: '10.0.0.5/24' has host bits set "
                    "(did you mean 10.0.0.0/24?)"),
    ("office", "firewall.adminCidrs[0]: 'office' is not an IPv4 or IPv6 CIDR "
               "(e.g. 198.51.100.0/24, 2001:db8:1::/48)"),
    ("2001:db8::1/32", "firewall.adminCidrs[0]: '2001:db8::1/32' has host bits set "
                       "(did you mean 2001:db8::/32?)"),
    ("fe80::1%eth0", "firewall.adminCidrs[0]: 'fe80::1%eth0' is not an IPv4 or IPv6 CIDR "
                     "(e.g. 198.51.100.0/24, 2001:db8:1::/48)"),
])
def test_admin_cidr_invalid(value, message):
    assert problems(with_value("firewall.adminCidrs", [value])) == [message]


# --- static storage ----------------------------------------------------------------------

@pytest.mark.parametrize("bucket", ["My_Bucket", "ab", "192.168.1.1", "a..b", "-static"])
def test_bucket_name_rules(bucket):
    assert problems(with_value("staticStorage.bucket", bucket)) == [
        f"staticStorage.bucket: '{bucket}' is not a valid S3 bucket name (3-63 lowercase "
        "letters, digits, dots and hyphens, starting and ending with a letter or digit)"]


def test_endpoint_url():
    assert problems(with_value("staticStorage.endpointUrl", "minio:9000")) == [
        "staticStorage.endpointUrl: 'minio:9000' must be an http:// or https:// URL"]
    stack = parse(with_value("staticStorage.endpointUrl", "http://10.0.3.40:9000"))
    assert stack.static_storage.endpoint_url == "http://10.0.3.40:9000"


def test_custom_domain_without_scheme():
    assert problems(with_value("staticStorage.customDomain", "https://cdn.example.com")) == [
        "staticStorage.customDomain: 'https://cdn.example.com' must be a host name without a "
        "scheme (e.g. cdn.example.com or s3.example.com/bucket)"]


def test_region_format():
    assert problems(with_value("staticStorage.region", "eu west")) == [
        "staticStorage.region: 'eu west' is not a region name (e.g. us-east-1)"]


# --- images and app ----------------------------------------------------------------------

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize("reference", [
    "nginx:1.30", f"nginx@{DIGEST}", f"nginx:1.30@{DIGEST}", "certbot/certbot:v5.10.0",
    f"10.214.200.3:5000/djscale/nginx:abc123@{DIGEST}", "registry.example.com/team/app_x"])
def test_image_references_by_tag_or_digest_are_accepted(reference):
    assert parse(with_value("images", {"nginx": reference})).images.nginx == reference


def test_image_reference():
    assert problems(with_value("images", {"appBase": "python 3.12"})) == [
        "images.appBase: 'python 3.12' is not an image reference "
        "([registry[:port]/]name[:tag][@digest], e.g. python:3.12-slim)"]


def test_image_platform_defaults_to_amd64_and_is_checked():
    assert parse(valid()).images.platform == "linux/amd64"
    assert parse(with_value("images", {"platform": "linux/arm64"})).images.platform == \
        "linux/arm64"
    assert problems(with_value("images", {"platform": "arm64"})) == [
        "images.platform: 'arm64' is not a Docker platform of Linux servers (linux/amd64, "
        "linux/arm64, linux/arm/v7, linux/386, linux/ppc64le, linux/s390x, linux/riscv64)"]


def test_workers_at_least_one():
    assert problems(with_value("app.workers", 0)) == ["app.workers: must be at least 1, got 0"]


def test_log_level():
    assert problems(with_value("app.logLevel", "verbose")) == [
        "app.logLevel: 'verbose' is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL"]


def test_release_is_current_previous_or_an_image_id():
    assert parse(VALID).app.release == "current" and not parse(VALID).app.pinned_release
    image = "sha256:" + "0123456789abcdef" * 4
    for value in ("previous", image):
        stack = parse(with_value("app.release", value))
        assert (stack.app.release, stack.app.pinned_release) == (value, True)
    for bad in ("latest", image[:-1], image.upper(), "djscale-app:1234", image + "0"):
        assert problems(with_value("app.release", bad)) == [
            f"app.release: {bad!r} is not a release: `current` (the image built from "
            "assets/app), `previous` or an image id (sha256: and 64 hex digits, as "
            "`python -m components.ops status` prints it)"]


@pytest.mark.parametrize("value, message", [
    ("*", "app.extraAllowedHosts[0]: '*' would accept any Host header; "
          "list the host names instead"),
    ("http://x.example.com", "app.extraAllowedHosts[0]: 'http://x.example.com' is not a host "
                             "name, .domain pattern or IPv4 address"),
])
def test_extra_allowed_hosts(value, message):
    assert problems(with_value("app.extraAllowedHosts", [value])) == [message]
    stack = parse(with_value("app.extraAllowedHosts", [".example.com", "192.0.2.8"]))
    assert stack.app.extra_allowed_hosts == (".example.com", "192.0.2.8")


def test_superuser_username():
    assert problems(with_value("app.superuser.username", "")) == [
        "app.superuser.username: must not be empty"]
    assert problems(with_value("app.superuser.username", "the admin")) == [
        "app.superuser.username: 'the admin' is not a valid Django user name "
        "(letters, digits and @.+-_, at most 150 characters)"]


def test_superuser_email():
    assert problems(with_value("app.superuser.email", "admin@localhost")) == [
        "app.superuser.email: 'admin@localhost' is not an email address"]


# --- nginx -------------------------------------------------------------------------------

@pytest.mark.parametrize("key,attr,value", [
    ("connectTimeout", "connect_timeout", "500ms"), ("readTimeout", "read_timeout", "2m"),
    ("sendTimeout", "send_timeout", "90"), ("failTimeout", "fail_timeout", "500ms"),
    ("nextUpstreamTimeout", "next_upstream_timeout", "3s"),
    ("clientHeaderTimeout", "client_header_timeout", "20s"),
    ("clientBodyTimeout", "client_body_timeout", "1m")])
def test_nginx_times(key, attr, value):
    assert problems(with_value(f"nginx.{key}", "1 sec")) == [
        f"nginx.{key}: '1 sec' is not an nginx time (e.g. 500ms, 1s, 2m)"]
    assert getattr(parse(with_value(f"nginx.{key}", value)).nginx, attr) == value


def test_the_retry_window_lies_between_the_connect_and_the_read_and_send_timeouts():
    def nginx(**values):
        return problems(with_value("nginx", values))

    assert nginx(connectTimeout="5s") == [
        "nginx.nextUpstreamTimeout: '5s' must be longer than nginx.connectTimeout ('5s'): "
        "a server that takes no connection would not be skipped"]
    assert nginx(readTimeout="5000ms", sendTimeout="4s") == [
        "nginx.nextUpstreamTimeout: '5s' must be shorter than nginx.readTimeout ('5000ms'): "
        "a request that timed out on a busy app server would be sent to the next one",
        "nginx.nextUpstreamTimeout: '5s' must be shorter than nginx.sendTimeout ('4s'): "
        "a request that timed out on a busy app server would be sent to the next one"]
    assert parse(with_value("nginx", dict(connectTimeout="500ms", nextUpstreamTimeout="1",
                                          readTimeout="2s", sendTimeout="2s")))


def test_nginx_rates_and_login_paths():
    assert problems(with_value("nginx.requestRate", "10/s")) == [
        "nginx.requestRate: '10/s' is not an nginx rate (requests per second or minute: "
        "10r/s, 6r/m)"]
    assert problems(with_value("nginx.loginRate", "1r/h")) == [
        "nginx.loginRate: '1r/h' is not an nginx rate (requests per second or minute: "
        "10r/s, 6r/m)"]
    stack = parse(with_value("nginx", {"requestRate": "600r/m", "loginRate": "2r/m",
                                       "loginPaths": ["/accounts/login/", "/admin/login/"]}))
    assert (stack.nginx.request_rate, stack.nginx.login_rate, stack.nginx.login_paths) == (
        "600r/m", "2r/m", ("/accounts/login/", "/admin/login/"))
    assert parse(with_value("nginx.loginPaths", [])).nginx.login_paths == ()
    plain = ("is not a plain URL path (starts with /; letters, digits and ._~@:+-; no "
             "%-escapes, query, // or dot segments)")
    assert problems(with_value("nginx.loginPaths", ["admin/login/", "/a%2Fb", "/x;y", "/a/../b",
                                                   "/login?next=/"])) == [
        f"nginx.loginPaths[0]: 'admin/login/' {plain}", f"nginx.loginPaths[1]: '/a%2Fb' {plain}",
        f"nginx.loginPaths[2]: '/x;y' {plain}", f"nginx.loginPaths[3]: '/a/../b' {plain}",
        f"nginx.loginPaths[4]: '/login?next=/' {plain}"]
    assert problems(with_value("nginx.loginPaths", ["/login/", "/login/"])) == [
        "nginx.loginPaths: '/login/' is listed twice"]


def test_nginx_bare_number_means_seconds():
    assert parse(with_value("nginx.readTimeout", 60)).nginx.read_timeout == "60"


def test_nginx_body_size():
    assert problems(with_value("nginx.clientMaxBodySize", "10mb")) == [
        "nginx.clientMaxBodySize: '10mb' is not an nginx size (e.g. 512k, 10m, 1g)"]


def test_nginx_counts_not_negative():
    assert problems(with_value("nginx.maxFails", -1)) == [
        "nginx.maxFails: must be at least 0, got -1"]
    for key in ("requestBurst", "loginBurst"):
        assert problems(with_value(f"nginx.{key}", -1)) == [
            f"nginx.{key}: must be at least 0, got -1"]
    assert problems(with_value("nginx.connectionsPerClient", 0)) == [
        "nginx.connectionsPerClient: must be at least 1, got 0"]


# --- database ----------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["name", "user"])
def test_database_identifiers(key):
    assert problems(with_value(f"database.{key}", "my-db")) == [
        f"database.{key}: 'my-db' is not a safe SQL identifier (lowercase letters, digits "
        "and _, starting with a letter or _, at most 63 characters)"]
    assert problems(with_value(f"database.{key}", "user")) == [
        f"database.{key}: 'user' is a reserved word in PostgreSQL"]


def test_database_user_not_postgres():
    assert problems(with_value("database.user", "postgres")) == [
        "database.user: 'postgres' is the PostgreSQL superuser; choose another role name"]
    assert problems(with_value("database.user", "pg_app")) == [
        "database.user: 'pg_app': role names starting with pg_ are reserved by PostgreSQL"]


def test_postgres_version():
    assert parse(with_value("database.postgresVersion", 16)).database.postgres_version == "16"
    assert problems(with_value("database.postgresVersion", "latest")) == [
        "database.postgresVersion: 'latest' is not a PostgreSQL major version (e.g. 16)"]


@pytest.mark.parametrize("version", ["13", "18", "9.6", "16.2"])
def test_a_postgres_version_no_supported_distribution_ships_is_refused(version):
    """djscale installs the distribution's package only: another version could never be
    installed, so it is refused before anything is created, with the versions there are."""
    assert problems(with_value("database.postgresVersion", version)) == [
        f"database.postgresVersion: {version!r} is not shipped by a supported distribution "
        "(14 (Ubuntu 22.04), 15 (Debian 12), 16 (Ubuntu 24.04), 17 (Debian 13)); djscale "
        "installs the distribution's package and does not add PostgreSQL's own apt "
        "repository (PGDG). Set the version the database host's distribution ships, or null "
        "for whatever it ships"]


def test_database_from_another_stack():
    stack = parse(with_database({"stack": "example-org/djscale/db-prod"}))
    assert stack.database.stack == "example-org/djscale/db-prod"
    assert stack.database.host is None


def test_database_stack_format():
    assert problems(with_database({"stack": "db-prod"})) == [
        "database.stack: 'db-prod' is not a fully qualified stack name (org/project/stack)"]


def test_database_stack_excludes_other_database_settings():
    raw = with_database({"stack": "example-org/djscale/db-prod", "name": "shop"})
    raw["database"]["address"] = "203.0.113.10"
    assert problems(raw) == [
        "database.address: not used when database.stack is set (the database is deployed "
        "by that stack); remove it",
        "database.name: not used when database.stack is set (the database is deployed "
        "by that stack); remove it"]


def with_clients(*clients) -> dict:
    return with_value("database.allowedClients", list(clients))


def test_database_allowed_clients():
    assert parse(valid()).database.allowed_clients == ()
    stack = parse(with_clients("10.0.0.41", "10.0.0.42"))
    assert stack.database.allowed_clients == ("10.0.0.41", "10.0.0.42")
    assert stack.database_client_addresses() == ["10.0.0.21", "10.0.0.22", "10.0.0.41",
                                                 "10.0.0.42"]
    as_json = with_value("database.allowedClients", '["10.0.0.41"]')
    assert parse(as_json).database.allowed_clients == ("10.0.0.41",)


@pytest.mark.parametrize("entry, message", [
    ("10.0.0.300", "'10.0.0.300' is not an IPv4 address"),
    ("db.example.com", "'db.example.com' is not an IPv4 address"),
    ("127.0.0.1", "'127.0.0.1' is not a usable host address"),
    (41, "expected a string, got 41"),
])
def test_database_allowed_clients_are_ipv4_addresses(entry, message):
    assert problems(with_clients("10.0.0.41", entry)) == [
        f"database.allowedClients[1]: {message}"]


def test_database_allowed_clients_are_single_hosts_not_networks():
    assert problems(with_clients("10.0.0.0/24")) == [
        "database.allowedClients[0]: '10.0.0.0/24' is a network; list each client's address "
        "(pg_hba admits one host per line)"]


def test_database_allowed_clients_are_private_addresses():
    assert problems(with_clients("10.0.0.41", "8.8.8.8")) == [
        "database.allowedClients[1]: '8.8.8.8' is a public address; list the client's "
        "private address (the database listens on its own only)"]


def test_database_allowed_clients_without_duplicates():
    assert problems(with_clients("10.0.0.41", "10.0.0.42", "10.0.0.41")) == [
        "database.allowedClients[2]: '10.0.0.41' is already listed at "
        "database.allowedClients[0]"]


def test_database_allowed_clients_not_this_stacks_app_servers():
    assert problems(with_clients("10.0.0.41", "10.0.0.22")) == [
        "database.allowedClients[1]: '10.0.0.22' is redundant: appServers[1].privateAddress "
        "of this stack is always admitted; remove it"]


def test_database_allowed_clients_not_this_stacks_proxy_or_database():
    assert problems(with_clients("10.0.0.30", "10.0.0.10")) == [
        "database.allowedClients[0]: '10.0.0.30' is this stack's proxy.privateAddress; only "
        "app servers may reach the database",
        "database.allowedClients[1]: '10.0.0.10' is this stack's database.privateAddress; "
        "only app servers may reach the database"]


def test_database_allowed_clients_only_where_the_database_is_deployed():
    raw = with_database({"stack": "example-org/djscale/db-prod",
                                  "allowedClients": ["10.0.0.41"]})
    assert problems(raw) == [
        "database.allowedClients: not used when database.stack is set (this stack owns no "
        "database); list these addresses in database.allowedClients of "
        "example-org/djscale/db-prod"]


# --- exact values (issue 9, item 10) ----------------------------------------------------

@pytest.mark.parametrize("path", [
    "domain", "acme.email", "ssh.privateKeyPath", "database.name", "appServers.0.name",
    "appServers.0.address", "proxy.privateAddress", "images.nginx", "app.superuser.username",
    "staticStorage.bucket", "staticStorage.accessKeyId", "staticStorage.endpointUrl",
    "nginx.readTimeout",
])
def test_every_string_with_a_control_character_is_refused(path):
    raw = valid()
    value = _value_at(raw, path) + "\n"
    assert problems(with_value(path, value), secrets={"staticStorageSecretKey", "backupStorageSecretKey"}
                    if path == "ssh.privateKeyPath" else BOTH_SECRETS) == [
        f"{_shown(path)}: {value!r} contains a control character (U+000A)"]


@pytest.mark.parametrize("value", [" www.example.com", "www.example.com ",
                                   "www.example.com\u00a0"])
def test_stray_whitespace_is_refused_not_stripped(value):
    assert problems(with_value("domain", value)) == [
        f"domain: {value!r} has leading or trailing whitespace"]
    assert problems(with_clients(f" {'10.0.0.41'}")) == [
        "database.allowedClients[0]: ' 10.0.0.41' has leading or trailing whitespace"]


@pytest.mark.parametrize("path, value", [
    ("domain", "evil\n.example.com"),  # `re.match` + `$` let this through
    ("appServers.1.address", "evil\n.example.com"),
    ("domain", "www.example.com\n"),
])
def test_a_line_break_does_not_pass_a_pattern(path, value):
    assert problems(with_value(path, value)) == [
        f"{_shown(path)}: {value!r} contains a control character (U+000A)"]


def test_integers_and_booleans_as_text_are_exact():
    assert problems(with_value("ssh.port", " 2222")) == [
        "ssh.port: expected an integer, got ' 2222'"]
    assert problems(with_value("app.debug", "true ")) == [
        "app.debug: expected true or false, got 'true '"]


@pytest.mark.parametrize("path, value, message", [
    ("ssh.port", "\u0662\u0662", "ssh.port: expected an integer, got '\u0662\u0662'"),
    ("database.postgresVersion", "\u0661\u0666",
     "database.postgresVersion: '\u0661\u0666' is not a PostgreSQL major version (e.g. 16)"),
    ("nginx.readTimeout", "\u0663s",
     "nginx.readTimeout: '\u0663s' is not an nginx time (e.g. 500ms, 1s, 2m)"),
])
def test_digits_are_ascii_digits(path, value, message):
    assert problems(with_value(path, value)) == [message]


@pytest.mark.parametrize("value, message", [
    ("https://ca.example.com/dir\t", "'https://ca.example.com/dir\\t' contains a control "
                                      "character (U+0009)"),
    ("https://ca.example.com/a dir", "'https://ca.example.com/a dir' is not a URL (only "
                                     "letters, digits and -._~:/?#[]@!$&'()*+,;=% may appear)"),
    ("https:ca.example.com/dir", "'https:ca.example.com/dir' must be an https:// URL"),
    ("https://ca_1.example.com/dir", "'https://ca_1.example.com/dir' has no valid host "
                                     "(a DNS name or IPv4 address)"),
    ("https://[::1]/dir", "'https://[::1]/dir' has no valid host (a DNS name or IPv4 address)"),
    ("https://[::1/dir", "'https://[::1/dir' has no valid host (a DNS name or IPv4 address)"),
    ("https://ca.example.com:0/dir", "'https://ca.example.com:0/dir' has an invalid port "
                                     "(1-65535)"),
    ("https://ca.example.com:/dir", "'https://ca.example.com:/dir' has an invalid port "
                                    "(1-65535)"),
    ("https://ops:pw@ca.example.com/dir", "'https://ops:pw@ca.example.com/dir' must not "
                                          "contain a user name or password"),
    ("https://ca.example.com/dir?x=1", "'https://ca.example.com/dir?x=1' must not have a "
                                       "query or fragment"),
    ("https://ca.example.com/dir#top", "'https://ca.example.com/dir#top' must not have a "
                                       "query or fragment"),
])
def test_urls_are_exact(value, message):
    assert problems(with_value("acme.server", value)) == [f"acme.server: {message}"]


def test_urls_with_port_and_path_are_accepted():
    stack = parse(with_value("staticStorage.endpointUrl", "http://10.0.3.40:9000"))
    assert stack.static_storage.endpoint_url == "http://10.0.3.40:9000"
    stack = parse(with_value("acme.server", "https://acme-staging.example.com:14000/dir"))
    assert stack.acme.server == "https://acme-staging.example.com:14000/dir"


def test_access_key_id_format():
    assert problems(with_value("staticStorage.accessKeyId", "AKIA EXAMPLE")) == [
        "staticStorage.accessKeyId: 'AKIA EXAMPLE' is not an access key id "
        "(3 to 128 letters, digits and . _ - @ +)"]


@pytest.mark.parametrize("value, message", [
    ("cdn.example.com:99999", "'cdn.example.com:99999' has an invalid port (1-65535)"),
    ("cdn.example.com:x/static", "'cdn.example.com:x/static' has an invalid port (1-65535)"),
    ("cdn.example.com/st atic", "'cdn.example.com/st atic' must be a host name without a "
                                "scheme (e.g. cdn.example.com or s3.example.com/bucket)"),
    ("cdn_1.example.com", "'cdn_1.example.com' has no valid host (a DNS name or IPv4 "
                          "address)"),
])
def test_custom_domain_is_exact(value, message):
    assert problems(with_value("staticStorage.customDomain", value)) == [
        f"staticStorage.customDomain: {message}"]
    assert parse(with_value("staticStorage.customDomain", "10.0.3.40:9000/static")
                 ).static_storage.custom_domain == "10.0.3.40:9000/static"


@pytest.mark.parametrize("key", ["name", "user"])
@pytest.mark.parametrize("word", ["sameuser", "samerole", "samegroup", "replication"])
def test_database_identifiers_are_not_pg_hba_keywords(key, word):
    """pg_hba.conf gives these words a meaning of their own: the renderer would refuse them
    (components/render/postgres.py, _hba_name) inside `up`; the config refuses them first."""
    assert problems(with_value(f"database.{key}", word)) == [
        f"database.{key}: {word!r} is a keyword of pg_hba.conf"]


@pytest.mark.parametrize("value, message", [
    ("s3-secret\n", "contains a control character (U+000A); the value is not shown (it is a "
                    "secret)"),
    ("s3 secret ", "has leading or trailing whitespace (a line break from `< file`?); the value "
                   "is not shown (it is a secret)"),
])
def test_static_storage_secret_is_one_line_of_text(value, message):
    """It becomes one line of the app's env file (appenv._line_value refuses a line break)."""
    with pytest.raises(ConfigError) as error:
        parse_config(valid(), BOTH_SECRETS, check_files=False,
                     secret_values={"staticStorageSecretKey": value})
    assert error.value.problems == [f"staticStorageSecretKey: {message}"]
    assert value.strip() not in str(error.value)
    parse_config(valid(), BOTH_SECRETS, check_files=False,
                 secret_values={"staticStorageSecretKey": "wJalrXUtnFEMI/K7MDENG+bPxRfiCY"})


def _value_at(raw: dict, path: str):
    node = raw
    for part in path.split("."):
        node = node[int(part)] if isinstance(node, list) else node.get(part, {})
    return node if isinstance(node, str) and node else {
        "ssh.privateKeyPath": "/keys/id", "database.name": "django",
        "images.nginx": "nginx:1.27", "app.superuser.username": "admin",
        "staticStorage.endpointUrl": "https://s3.example.com", "nginx.readTimeout": "30s",
    }[path]


def _shown(path: str) -> str:
    """A dotted test path as a problem shows it: `appServers.0.name` -> `appServers[0].name`."""
    parts = path.split(".")
    shown = parts[0]
    for part in parts[1:]:
        shown += f"[{part}]" if part.isdigit() else f".{part}"
    return shown


# --- the database's connection budget ------------------------------------------------------

def with_budget(max_connections, workers, app_servers=2, clients=()) -> dict:
    raw = with_value("database.maxConnections", max_connections)
    raw["app"]["workers"] = workers
    raw["appServers"] = [{"name": f"app{i}", "address": f"203.0.113.{100 + i}",
                          "privateAddress": f"10.0.1.{i}"} for i in range(1, app_servers + 1)]
    raw["database"]["allowedClients"] = list(clients)
    # so many servers are not worth pinning here: the budget is what these tests are about
    raw["ssh"] = {"insecureSkipHostKeyCheck": True,
                  "hostKeys": {a: PINS[a] for a in ("203.0.113.10", "203.0.113.30")}}
    return raw


def test_the_connection_budget_fits_exactly():
    """(2 app servers + 2 allowed clients) x 3 workers + 1 release = 13, + 3 reserved = 16."""
    stack = parse(with_budget(16, 3, clients=("10.0.0.41", "10.0.0.42")))
    assert stack.database_connections_needed() == 13
    assert stack.database.max_connections == 16


def test_a_connection_budget_that_does_not_fit_names_the_keys():
    assert problems(with_budget(15, 3, clients=("10.0.0.41", "10.0.0.42"))) == [
        "database.maxConnections: 15 is too few: 2 appServers + 2 database.allowedClients "
        "× app.workers 3 + 1 for the release need 13 connections, and PostgreSQL keeps 3 for "
        "superusers; set database.maxConnections to at least 16 or lower app.workers"]


def test_the_default_budget_takes_32_app_servers_of_3_workers():
    """max_connections 100 - 3 reserved - 1 release = 96 = 32 x 3."""
    assert parse(with_budget(100, 3, app_servers=32)).database_connections_needed() == 97
    assert problems(with_budget(100, 3, app_servers=33)) == [
        "database.maxConnections: 100 is too few: 33 appServers × app.workers 3 + 1 for the "
        "release need 100 connections, and PostgreSQL keeps 3 for superusers; set "
        "database.maxConnections to at least 103 or lower app.workers"]


def test_many_workers_per_server_are_counted_too():
    assert problems(with_budget(100, 50)) == [
        "database.maxConnections: 100 is too few: 2 appServers × app.workers 50 + 1 for the "
        "release need 101 connections, and PostgreSQL keeps 3 for superusers; set "
        "database.maxConnections to at least 104 or lower app.workers"]


def test_max_connections_is_a_positive_integer_and_only_where_the_database_is_deployed():
    assert problems(with_value("database.maxConnections", 0)) == [
        "database.maxConnections: must be at least 1, got 0"]
    raw = with_database({"stack": "example-org/djscale/db-prod", "maxConnections": 500})
    assert problems(raw) == [
        "database.maxConnections: not used when database.stack is set (the database is "
        "deployed by that stack); remove it"]
    # that stack's budget is not this one's to check: no budget problem here
    assert parse(with_database({"stack": "example-org/djscale/db-prod"})
                 | {"app": {"workers": 500, "superuser": {"email": "a@example.com"}}})


def test_stack_files_are_read_as_the_cli_reads_them(tmp_path):
    """YAML 1.2, as gopkg.in/yaml.v3: `off` stays a string (refused: not a boolean), dates
    stay strings; true/false are booleans."""
    stack = tmp_path / "Pulumi.x.yaml"
    stack.write_text("config:\n  djscale:nginx:\n    proxyBuffering: off\n"
                     "  djscale:app:\n    debug: true\n    logLevel: 2024-01-01\n")
    raw, _ = read_stack_file(stack)
    assert raw == {"nginx": {"proxyBuffering": "off"},
                   "app": {"debug": True, "logLevel": "2024-01-01"}}


# --- the project (app.source, app.dockerfile) ----------------------------------------------

def test_the_project_defaults_to_the_bundled_app():
    app = parse(valid()).app
    assert (app.source, app.dockerfile) == ("assets/app", "Dockerfile")
    assert app.source_dir == ROOT / "assets" / "app"


def test_a_project_elsewhere_relative_or_absolute(tmp_path):
    (tmp_path / "shop" / "docker").mkdir(parents=True)
    (tmp_path / "shop" / "docker" / "web.Dockerfile").write_text("FROM x\n")
    raw = with_value("app.source", str(tmp_path / "shop"))
    raw["app"]["dockerfile"] = "docker/web.Dockerfile"
    app = parse(raw).app
    assert app.source_dir == tmp_path / "shop"
    relative = parse(with_value("app.source", "tests/fixtures/../../assets/app")).app
    assert relative.source_dir.resolve() == ROOT / "assets" / "app"


def test_a_missing_project_directory_is_named(tmp_path):
    """Checked whatever check_files says: the plans list the project's files."""
    assert problems(with_value("app.source", "my-shop")) == [
        f"app.source: 'my-shop' does not exist: {ROOT / 'my-shop'} (a relative app.source "
        "starts at the Pulumi project directory)"]
    (tmp_path / "file").write_text("")
    assert problems(with_value("app.source", str(tmp_path / "file"))) == [
        f"app.source: '{tmp_path / 'file'}' is not a directory: {tmp_path / 'file'}"]


def test_a_missing_dockerfile_is_named():
    assert problems(with_value("app.dockerfile", "Dockerfile.prod")) == [
        "app.dockerfile: 'Dockerfile.prod' is not a file in app.source: "
        f"{ROOT / 'assets' / 'app' / 'Dockerfile.prod'}"]


@pytest.mark.parametrize("value", ["/etc/Dockerfile", "../Dockerfile", "docker//Dockerfile",
                                   "./Dockerfile", "docker/", "a\\b"])
def test_the_dockerfile_stays_inside_the_project(value):
    assert problems(with_value("app.dockerfile", value)) == [
        f"app.dockerfile: {value!r} must be a relative path inside app.source (no leading /, "
        "no empty, . or .. segment, no backslash)"]


# --- the env contract (app.envNames, app.debugValues, app.env, appSecrets) ---------------------

def test_env_names_default_to_the_bundled_apps_and_take_one_several_or_no_name():
    raw = valid()
    raw["app"]["envNames"] = {"dbUser": "DATABASE_USERNAME", "debug": ["DEBUG", "DJANGO_DEBUG"],
                              "csrfTrustedOrigins": []}
    names = parse(raw).app.env_names
    assert names.db_user == ("DATABASE_USERNAME",)
    assert names.debug == ("DEBUG", "DJANGO_DEBUG")
    assert names.csrf_trusted_origins == ()
    assert names.secret_key == ("DJANGO_SECRET_KEY",)  # not given: the default


def test_env_names_are_variable_names():
    raw = valid()
    raw["app"]["envNames"] = {"dbUser": "DATABASE-USER", "dbName": ["OK", 3, ""],
                              "dbHost": {"a": 1}, "dbPort": "9PORT", "secret": "X"}
    assert problems(raw) == [
        "app.envNames.secret: unknown key (did you mean secretKey?)",
        "app.envNames.dbHost: expected a name or a list of names, got {\"a\": 1}",
        "app.envNames.dbPort: '9PORT' is not an environment variable name (letters, digits "
        "and _, not starting with a digit)",
        "app.envNames.dbName[1]: expected a string, got 3",
        "app.envNames.dbName[2]: must not be empty",
        "app.envNames.dbUser: 'DATABASE-USER' is not an environment variable name (letters, "
        "digits and _, not starting with a digit)"]


def test_one_variable_holds_one_value():
    raw = valid()
    raw["app"]["envNames"] = {"dbUser": ["DB_USER", "DB_USER"], "dbName": "DATABASE_HOST",
                              "staticAccessKeyId": "DJANGO_SUPERUSER_EMAIL"}
    assert problems(raw) == [
        "app.envNames.dbName: 'DATABASE_HOST' is also app.envNames.dbHost's name: one "
        "variable holds one value",
        "app.envNames.dbUser: 'DB_USER' is listed twice: one variable holds one value",
        "app.envNames.staticAccessKeyId: 'DJANGO_SUPERUSER_EMAIL' is Django's own "
        "createsuperuser variable, which djscale writes for the release; choose another name"]


def test_debug_values_may_be_empty():
    raw = valid()
    raw["app"]["debugValues"] = {"whenTrue": "True", "whenFalse": ""}
    values = parse(raw).app.debug_values
    assert (values.when_true, values.when_false) == ("True", "")
    assert parse(valid()).app.debug_values.when_false == "false"
    raw["app"]["debugValues"] = {"whenTrue": " yes", "whenFalse": False}
    assert problems(raw) == [
        "app.debugValues.whenTrue: ' yes' has leading or trailing whitespace",
        "app.debugValues.whenFalse: expected a string, got false"]


def test_app_env_holds_the_projects_settings_and_constants():
    raw = valid()
    raw["app"]["env"] = {"DATABASE_ENGINE": "postgresql", "EMAIL_PORT": 587, "FEATURE_X": "",
                         "DATABASE_OPTIONS": '{"sslmode": "verify-full"}'}
    assert parse(raw).app.env == (("DATABASE_ENGINE", "postgresql"),
                                  ("DATABASE_OPTIONS", '{"sslmode": "verify-full"}'),
                                  ("EMAIL_PORT", "587"), ("FEATURE_X", ""))


def test_app_env_refuses_bad_names_values_and_what_djscale_writes():
    raw = valid()
    raw["app"]["env"] = {"BAD NAME": "x", "TWO_LINES": "a\nb", "FLAG": True,
                         "DATABASE_USER": "me", "DJANGO_SUPERUSER_PASSWORD": "pw"}
    raw["app"]["envNames"] = {"dbName": []}  # unmapped: the project may set it itself
    raw["app"]["env"]["DATABASE_NAME"] = "shop"
    assert problems(raw) == [
        "app.env['BAD NAME']: 'BAD NAME' is not an environment variable name (letters, digits "
        "and _, not starting with a digit)",
        "app.env['TWO_LINES']: 'a\\nb' contains a control character (U+000A)",
        "app.env['FLAG']: expected a string, got true",
        "app.env['DATABASE_USER']: djscale writes 'DATABASE_USER' (app.envNames.dbUser); map "
        "app.envNames.dbUser to another name (or []) to set it here",
        "app.env['DJANGO_SUPERUSER_PASSWORD']: djscale writes 'DJANGO_SUPERUSER_PASSWORD' "
        "(the release's createsuperuser)"]


def test_app_secrets_are_named_by_their_secret_paths():
    secrets = BOTH_SECRETS | {"appSecrets.SENTRY_DSN", "appSecrets.API_TOKEN"}
    values = {"appSecrets.SENTRY_DSN": "https://k@o1.example/1", "appSecrets.API_TOKEN": "t"}
    cfg = parse_config(valid(), secrets, check_files=False, secret_values=values)
    assert cfg.app_secret_names == ("API_TOKEN", "SENTRY_DSN")
    assert "k@o1" not in repr(cfg) and parse(valid()).app_secret_names == ()


def test_app_secrets_refuse_bad_names_and_what_djscale_or_app_env_writes():
    raw = valid()
    raw["app"]["env"] = {"API_TOKEN": "plain"}
    secrets = BOTH_SECRETS | {f"appSecrets.{name}" for name in (
        "API_TOKEN", "DATABASE_PASSWORD", "DJANGO_SUPERUSER_PASSWORD", "my-key", "GOOD")}
    assert problems(raw, secrets) == [
        "appSecrets['my-key']: 'my-key' is not an environment variable name (letters, digits "
        "and _, not starting with a digit)",
        "appSecrets['API_TOKEN']: 'API_TOKEN' is also set in app.env; set it in one place",
        "appSecrets['DATABASE_PASSWORD']: djscale writes 'DATABASE_PASSWORD' "
        "(app.envNames.dbPassword); map app.envNames.dbPassword to another name (or []) to "
        "set it here",
        "appSecrets['DJANGO_SUPERUSER_PASSWORD']: djscale writes 'DJANGO_SUPERUSER_PASSWORD' "
        "(the release's createsuperuser)"]


def test_app_secret_values_are_checked_without_being_shown():
    secrets = BOTH_SECRETS | {"appSecrets.A", "appSecrets.B", "appSecrets.C"}
    values = {"appSecrets.A": "s3cr3t\n", "appSecrets.B": " s3cr3t", "appSecrets.C": 42}
    with pytest.raises(ConfigError) as error:
        parse_config(valid(), secrets, check_files=False, secret_values=values)
    assert error.value.problems == [
        "appSecrets['A']: contains a control character (U+000A); the value is not shown (it "
        "is a secret)",
        "appSecrets['B']: has leading or trailing whitespace (a line break from `< file`?); "
        "the value is not shown (it is a secret)",
        "appSecrets['C']: expected a string; the value is not shown (it is a secret)"]
    assert "s3cr3t" not in str(error.value)


def test_app_secrets_in_plain_text_are_refused_by_name():
    raw = with_value("appSecrets", {"SENTRY_DSN": "https://k@o1.example/1"})
    assert problems(raw) == [
        "appSecrets['SENTRY_DSN']: must be set as a secret (pulumi config set --secret --path "
        "'appSecrets.SENTRY_DSN' ...), not in plain text"]
    assert problems(with_value("appSecrets", "x")) == [
        "appSecrets: must be a map of secrets, each set with pulumi config set --secret "
        "--path 'appSecrets.<NAME>' ..."]


def test_stack_file_app_secrets_count_by_path_and_plain_entries_are_kept(tmp_path):
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text("config:\n  djscale:appSecrets:\n    A:\n      secure: v1:abc\n"
                    "    B: plain\n")
    raw, secrets = read_stack_file(path)
    assert secrets == {"appSecrets.A"}
    assert raw == {"appSecrets": {"B": "plain"}}


def test_a_refused_dockerfile_is_not_looked_for_as_well(tmp_path):
    raw = with_value("app.source", str(tmp_path))  # no Dockerfile there either
    raw["app"]["dockerfile"] = "../Dockerfile"
    assert problems(raw) == [
        "app.dockerfile: '../Dockerfile' must be a relative path inside app.source (no "
        "leading /, no empty, . or .. segment, no backslash)"]
    assert problems(with_value("app.source", 7)) == ["app.source: expected a string, got 7"]

# --- maintenance ----------------------------------------------------------------------------

def test_maintenance_is_off_by_default_with_djscales_page():
    maintenance = parse(valid()).maintenance
    assert (maintenance.enabled, maintenance.page, maintenance.retry_after) == (False, None, 300)


def test_maintenance_page_is_a_utf8_file_of_at_most_one_mebibyte(tmp_path):
    page = tmp_path / "down.html"
    page.write_text("<h1>Back soon</h1>\n")
    raw = with_value("maintenance", {"enabled": True, "page": str(page), "retryAfter": "60"})
    assert parse(raw, check_files=True).maintenance == MaintenanceConfig(
        enabled=True, page=str(page), retry_after=60)
    missing = str(tmp_path / "nope.html")
    assert problems(with_value("maintenance", {"page": missing}), check_files=True) == [
        f"maintenance.page: '{missing}' does not exist"]
    page.write_bytes(b"\xff\xfe<h1>")
    assert problems(with_value("maintenance", {"page": str(page)}), check_files=True) == [
        f"maintenance.page: '{page}' is not UTF-8 text"]
    page.write_bytes(b"x" * (1024 * 1024 + 1))
    assert problems(with_value("maintenance", {"page": str(page)}), check_files=True) == [
        f"maintenance.page: '{page}' is larger than 1 MiB"]
    assert problems(with_value("maintenance", {"page": str(tmp_path)}), check_files=True) == [
        f"maintenance.page: '{tmp_path}' is not a file"]


def test_maintenance_retry_after_and_unknown_keys():
    assert problems(with_value("maintenance", {"retryAfter": 0, "enable": True})) == [
        "maintenance.enable: unknown key (did you mean enabled?)",
        "maintenance.retryAfter: must be at least 1, got 0"]
    assert problems(with_value("maintenance.retryAfter", 86401)) == [
        "maintenance.retryAfter: must be at most 86400, got 86401"]


# --- backups --------------------------------------------------------------------------------

def test_backups_are_on_for_a_stack_with_a_database_with_their_defaults():
    backups = parse(valid()).backups
    assert backups == BackupsConfig(
        enabled=True, bucket="site-backups", prefix="backups/", access_key_id="AKIABACKUPEXAMPLE",
        endpoint_url=None, region="us-east-1", path_style=False, schedule="*-*-* 03:00:00",
        keep_count=14, keep_days=0, encrypt=False)


def test_backups_need_a_bucket_a_key_and_its_secret_unless_turned_off():
    raw = valid()
    del raw["backups"]
    assert problems(raw, secrets={"sshPrivateKey", "staticStorageSecretKey"}) == [
        "backups.bucket: is required: the database is backed up unless backups.enabled is false",
        "backups.accessKeyId: is required: the database is backed up unless backups.enabled "
        "is false",
        "backupStorageSecretKey: required secret is missing (pulumi config set --secret "
        "backupStorageSecretKey <value>), or set backups.enabled: false"]
    raw["backups"] = {"enabled": False}
    assert parse(raw, secrets={"sshPrivateKey", "staticStorageSecretKey"}).backups.enabled is False


def test_encrypted_backups_need_the_passphrase():
    raw = with_value("backups.encrypt", True)
    assert problems(raw, secrets={"sshPrivateKey", "staticStorageSecretKey",
                                  "backupStorageSecretKey"}) == [
        "backupEncryptionPassphrase: required secret is missing with backups.encrypt "
        "(pulumi config set --secret backupEncryptionPassphrase <value>)"]
    assert parse(raw).backups.encrypt is True


def test_backup_values_are_checked():
    raw = valid()
    raw["backups"] = {"bucket": "Bad_Bucket", "accessKeyId": "k", "prefix": "/x",
                      "schedule": "nightly", "keepCount": -1, "keepDays": "x", "pathStyle": "y"}
    assert problems(raw) == [
        "backups.bucket: 'Bad_Bucket' is not a valid S3 bucket name (3-63 lowercase letters, "
        "digits, dots and hyphens, starting and ending with a letter or digit)",
        "backups.prefix: '/x' is not a key prefix (letters, digits and ._- in segments "
        "separated by /, at most 200 characters, e.g. backups/ or prod/db-)",
        "backups.accessKeyId: 'k' is not an access key id (3 to 128 letters, digits and . _ - "
        "@ +)",
        "backups.pathStyle: expected true or false, got 'y'",
        "backups.schedule: 'nightly' is not a systemd calendar event (e.g. daily, "
        "*-*-* 03:00:00, Mon..Fri 02:30, *-*-* 00/6:00:00)",
        "backups.keepCount: must be at least 0, got -1",
        "backups.keepDays: expected an integer, got 'x'"]


def test_a_stack_using_another_stacks_database_backs_up_nothing():
    raw = with_database({"stack": "example-org/djscale/db-prod"})
    assert parse(raw, secrets={"sshPrivateKey", "staticStorageSecretKey"}).backups.enabled \
        is False
    raw["backups"] = {"bucket": "x-backups"}
    assert problems(raw) == [
        "backups: not used when database.stack is set (the stack that deploys the database "
        "backs it up); remove it"]
    raw["backups"] = {"enabled": False}
    assert parse(raw).backups.enabled is False
