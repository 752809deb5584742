"""components/stack.py: pulumi.Config in (under Pulumi's mock runtime), validated config out."""
from __future__ import annotations

import json
from pathlib import Path

import pulumi
import pytest
from pulumi.runtime.config import set_all_config
from pulumi.runtime.sync_await import _sync_await

from components.config import ConfigError, parse_config, read_stack_file
from components.stack import load_stack
from tests.support.stack_files import cli_stack_config

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SECRETS = {"sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n",
           "staticStorageSecretKey": "s3-secret-value",
           "backupStorageSecretKey": "backup-secret-value"}


class _NoResources(pulumi.runtime.Mocks):
    def new_resource(self, args):
        raise AssertionError(f"load_stack must not register resources, got {args.typ}")

    def call(self, args):
        return {}


@pytest.fixture(autouse=True)
def mocked_runtime():
    pulumi.runtime.set_mocks(_NoResources(), project="djscale", stack="dev", preview=False)
    yield
    set_all_config({})


def _configure(path: Path, secrets: dict[str, str] = SECRETS, **overrides: str) -> None:
    """The config `pulumi up` hands the program (project defaults, stack file, secrets)."""
    config, secret_keys = cli_stack_config(path, secrets)
    config.update({f"djscale:{key}": value for key, value in overrides.items()})
    set_all_config(config, secret_keys)


DEV_PINS = read_stack_file(ROOT / "Pulumi.dev.yaml")[0]["ssh"]["hostKeys"]


def _resolve(output: pulumi.Output):
    return _sync_await(output.future()), _sync_await(output.is_secret())


def test_secrets_come_back_as_secret_outputs():
    _configure(ROOT / "Pulumi.dev.yaml")
    stack, secrets = load_stack()
    assert stack.domain == "dev.example.com"
    assert len(stack.app_servers) == 2
    assert isinstance(secrets.ssh_private_key, pulumi.Output)
    assert _resolve(secrets.ssh_private_key) == (SECRETS["sshPrivateKey"], True)
    assert _resolve(secrets.static_storage_secret_key) == ("s3-secret-value", True)


def test_secret_values_never_reach_the_config_objects():
    _configure(ROOT / "Pulumi.prod.yaml")
    stack, _ = load_stack()
    assert "s3-secret-value" not in repr(stack)
    assert "PRIVATE KEY" not in repr(stack)


def test_key_path_instead_of_key_secret_gives_no_ssh_secret(tmp_path):
    key = tmp_path / "id_ed25519"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n-----END OPENSSH PRIVATE KEY-----\n")
    _configure(ROOT / "Pulumi.dev.yaml", {"staticStorageSecretKey": "x", "backupStorageSecretKey": "y"},
               ssh=json.dumps({"privateKeyPath": str(key), "hostKeys": DEV_PINS}))
    stack, secrets = load_stack()
    assert stack.ssh.private_key_path == str(key)
    assert secrets.ssh_private_key is None


def test_same_result_as_parsing_the_stack_file():
    _configure(FIXTURES / "stack_two_apps.yaml")
    stack, _ = load_stack()
    raw, present = read_stack_file(FIXTURES / "stack_two_apps.yaml")
    assert stack == parse_config(raw, present)


def test_bad_config_raises_config_error_naming_the_key():
    _configure(ROOT / "Pulumi.dev.yaml", appServers=json.dumps(
        [{"name": "app1", "address": "203.0.113.21", "privateAddress": "10.0.0.21"},
         {"name": "app2", "address": "10.0.0.300", "privateAddress": "10.0.0.22"}]))
    with pytest.raises(ConfigError) as error:
        load_stack()
    assert error.value.problems == ["appServers[1].address: '10.0.0.300' is not an IPv4 address"]


def test_missing_secret_raises_config_error():
    """The CLI refuses first (the key is typed, without a default); without the CLI's check
    (an older Pulumi.yaml, another tool) the program does."""
    config, secret_keys = cli_stack_config(ROOT / "Pulumi.dev.yaml", SECRETS)
    del config["djscale:staticStorageSecretKey"]
    set_all_config(config, secret_keys)
    with pytest.raises(ConfigError) as error:
        load_stack()
    assert error.value.problems == [
        "staticStorageSecretKey: required secret is missing "
        "(pulumi config set --secret staticStorageSecretKey <value>)"]


def test_unknown_top_level_key_is_reported():
    _configure(ROOT / "Pulumi.dev.yaml", appServer="[]")
    with pytest.raises(ConfigError) as error:
        load_stack()
    assert error.value.problems == ["appServer: unknown key (did you mean appServers?)"]


def test_object_that_is_not_json_is_reported():
    _configure(ROOT / "Pulumi.dev.yaml", nginx="fast")
    with pytest.raises(ConfigError) as error:
        load_stack()
    assert error.value.problems == ["nginx: expected an object, got 'fast'"]


def test_other_namespaces_are_ignored():
    config, secret_keys = cli_stack_config(ROOT / "Pulumi.dev.yaml", SECRETS)
    config["aws:region"] = "eu-west-1"
    set_all_config(config, secret_keys)
    stack, _ = load_stack()
    assert stack.domain == "dev.example.com"


def test_read_stack_file_counts_encrypted_secrets_and_keeps_plain_ones(tmp_path):
    stack_file = tmp_path / "Pulumi.x.yaml"
    stack_file.write_text(
        "config:\n"
        "  djscale:domain: x.example.com\n"
        "  djscale:staticStorageSecretKey:\n"
        "    secure: v1:AAAA\n"
        "  djscale:sshPrivateKey: plain-text-key\n"
        "  aws:region: eu-west-1\n"
        "  nginx:\n"
        "    readTimeout: 5s\n")
    raw, present = read_stack_file(stack_file)
    assert present == frozenset({"staticStorageSecretKey"})
    assert raw == {"domain": "x.example.com", "sshPrivateKey": "plain-text-key",
                   "nginx": {"readTimeout": "5s"}}


def test_a_plain_text_secret_is_refused_and_its_value_goes_nowhere():
    """The CLI enforces `secret: true` only for typed keys (pkg/workspace/config.go,
    validateStackConfigValues); sshPrivateKey is untyped (optional): the program refuses."""
    config, secret_keys = cli_stack_config(ROOT / "Pulumi.dev.yaml", SECRETS)
    config["djscale:sshPrivateKey"] = "-----BEGIN OPENSSH PRIVATE KEY-----\nPLAIN\n"
    set_all_config(config, [k for k in secret_keys if k != "djscale:sshPrivateKey"])
    with pytest.raises(ConfigError) as error:
        load_stack()
    assert error.value.problems == [
        "sshPrivateKey: must be set as a secret (pulumi config set --secret sshPrivateKey ...),"
        " not in plain text"]
    assert "PLAIN" not in str(error.value)


def test_empty_ssh_key_secret_counts_as_unset(tmp_path):
    """Pulumi.yaml gives sshPrivateKey the default "": the CLI injects it (plain) into a stack
    that uses a key file; the program takes it as not set."""
    key = tmp_path / "id_ed25519"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n-----END OPENSSH PRIVATE KEY-----\n")
    _configure(ROOT / "Pulumi.dev.yaml", {"staticStorageSecretKey": "x", "backupStorageSecretKey": "y"},
               ssh=json.dumps({"privateKeyPath": str(key), "hostKeys": DEV_PINS}))
    assert pulumi.Config("djscale").get("sshPrivateKey") == ""  # the project's default
    _, secrets = load_stack()
    assert secrets.ssh_private_key is None


def test_the_static_storage_secret_is_checked_where_it_is_read_and_never_shown():
    """A line break in it would stop the env-file renderer inside `up`; the program refuses
    it with the config problems instead, without its value."""
    _configure(ROOT / "Pulumi.dev.yaml", {**SECRETS, "staticStorageSecretKey": "SeCrEt-Xy\n"})
    with pytest.raises(ConfigError) as error:
        load_stack()
    assert error.value.problems == [
        "staticStorageSecretKey: contains a control character (U+000A); the value is not "
        "shown (it is a secret)"]
    assert "SeCrEt" not in str(error.value)


def test_app_secrets_set_with_path_come_back_as_one_secret_output():
    """`pulumi config set --secret --path 'appSecrets.SENTRY_DSN' ...`: the program gets the
    object as one secret key; the names go into the config, the values stay an Output."""
    _configure(ROOT / "Pulumi.dev.yaml", {**SECRETS, "appSecrets.SENTRY_DSN": "https://k@s/1",
                                          "appSecrets.API_TOKEN": "tok-Secret"})
    stack, secrets = load_stack()
    assert stack.app_secret_names == ("API_TOKEN", "SENTRY_DSN")
    assert _resolve(secrets.app_secrets) == (
        {"API_TOKEN": "tok-Secret", "SENTRY_DSN": "https://k@s/1"}, True)
    assert "tok-Secret" not in repr(stack)


def test_no_app_secrets_is_pulumi_yamls_empty_default():
    _configure(ROOT / "Pulumi.dev.yaml")
    assert pulumi.Config("djscale").get("appSecrets") == "{}"  # the project's default
    stack, secrets = load_stack()
    assert stack.app_secret_names == ()
    assert _resolve(secrets.app_secrets) == ({}, True)


def test_app_secrets_in_plain_text_are_refused_by_name_and_go_nowhere():
    """Pulumi.yaml cannot type a map (secret: true alone is not enforced): the program
    refuses a plain one, naming each entry, never its value."""
    _configure(ROOT / "Pulumi.dev.yaml", appSecrets=json.dumps({"SENTRY_DSN": "PLAIN-dsn"}))
    with pytest.raises(ConfigError) as error:
        load_stack()
    assert error.value.problems == [
        "appSecrets['SENTRY_DSN']: must be set as a secret (pulumi config set --secret --path "
        "'appSecrets.SENTRY_DSN' ...), not in plain text"]
    assert "PLAIN" not in str(error.value)


def test_an_app_secret_is_checked_where_it_is_read_and_never_shown():
    _configure(ROOT / "Pulumi.dev.yaml", {**SECRETS, "appSecrets.SENTRY_DSN": "dsn-Xy\r"})
    with pytest.raises(ConfigError) as error:
        load_stack()
    assert error.value.problems == [
        "appSecrets['SENTRY_DSN']: contains a control character (U+000D); the value is not "
        "shown (it is a secret)"]
    assert "dsn-Xy" not in str(error.value)
