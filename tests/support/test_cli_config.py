"""tests/support/cli_config.py: the config map the Pulumi CLI hands the program for a stack."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.support.cli_config import CliConfigError, cli_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def deliver(tmp_path):
    """cli_config on an inline Pulumi.yaml (project `proj`, its `config:` block) and
    Pulumi.dev.yaml (its `config:` block)."""

    def run(project_config: str, stack_config: str = "", secrets: dict[str, str] | None = None):
        project = tmp_path / "Pulumi.yaml"
        stack = tmp_path / "Pulumi.dev.yaml"
        project.write_text("name: proj\nruntime: python\nconfig:\n"
                           + textwrap.indent(textwrap.dedent(project_config), "  "))
        stack.write_text("config:\n" + textwrap.indent(textwrap.dedent(stack_config), "  "))
        return cli_config(project, stack, secrets or {})

    return run


# --- defaults ----------------------------------------------------------------------------------

def test_unset_keys_get_the_project_defaults_as_text_or_json(deliver):
    config, secret_keys = deliver("""
        region: eu-west-1
        replicas: {type: integer, default: 3}
        debug: {type: boolean, default: false}
        nginx: {default: {workers: 2, gzip: true}}
        tags: {type: array, items: {type: string}, default: [a, b]}
        images: {default: {}}
    """, "proj:other: x\n")
    assert config == {
        "proj:region": "eu-west-1", "proj:replicas": "3", "proj:debug": "false",
        "proj:nginx": '{"gzip":true,"workers":2}', "proj:tags": '["a","b"]',
        "proj:images": "{}", "proj:other": "x"}
    assert secret_keys == []


def test_a_stack_object_replaces_the_default_object_as_a_whole(deliver):
    config, _ = deliver("nginx: {default: {workers: 2, gzip: true}}\n",
                        "proj:nginx: {workers: 4}\n")
    assert config["proj:nginx"] == '{"workers":4}'


def test_a_dotted_project_key_is_a_path_into_the_stack_object(deliver):
    config, _ = deliver("""
        acme.staging: {default: false}
        acme.email: {type: string}
    """, "proj:acme: {email: ops@example.com}\n")
    assert config["proj:acme"] == '{"email":"ops@example.com","staging":false}'


def test_keys_of_other_namespaces_take_the_project_value(deliver):
    config, _ = deliver("aws:region: us-west-2\n", "domain: www.example.com\n")
    assert config == {"aws:region": "us-west-2", "proj:domain": "www.example.com"}


# --- required keys -----------------------------------------------------------------------------

def test_a_declared_key_without_default_must_be_set(deliver):
    with pytest.raises(CliConfigError) as refused:
        deliver("domain: {type: string}\n")
    assert str(refused.value) == (
        "validating stack config: Stack 'dev' is missing configuration value 'domain'")


def test_every_missing_key_is_reported_at_once_typed_or_not(deliver):
    with pytest.raises(CliConfigError) as refused:
        deliver("""
            domain: {type: string}
            database: {description: The PostgreSQL server.}
            acme: {description: Certificates.}
            ssh: {default: {}}
        """)
    assert str(refused.value) == ("validating stack config: Stack 'dev' is missing configuration "
                                  "values 'acme', 'database' and 'domain'")


# --- secrets -----------------------------------------------------------------------------------

def test_secure_values_arrive_as_secret_keys_with_their_plain_values(deliver):
    config, secret_keys = deliver("token: {type: string, secret: true}\n", """
        proj:token: {secure: v1:AAAA}
        proj:db: {host: h, password: {secure: v1:BBBB}}
        proj:plain: p
    """, {"token": "t0k", "db.password": "pw"})
    assert config == {"proj:token": "t0k", "proj:db": '{"host":"h","password":"pw"}',
                      "proj:plain": "p"}
    assert secret_keys == ["proj:db", "proj:token"]


def test_a_secret_the_stack_file_lacks_is_set_as_config_set_secret_would(deliver):
    config, secret_keys = deliver("apiKey: {type: string, secret: true}\n",
                                  secrets={"proj:apiKey": "k"})
    assert config == {"proj:apiKey": "k"}
    assert secret_keys == ["proj:apiKey"]


def test_a_secure_value_needs_its_plain_value_and_a_plain_one_takes_none(deliver):
    with pytest.raises(ValueError, match="proj:token"):
        deliver("token: {secret: true}\n", "proj:token: {secure: v1:AAAA}\n")
    with pytest.raises(ValueError, match="plain text"):
        deliver("token: {secret: true}\n", "proj:token: hunter2\n", {"token": "t0k"})


def test_a_typed_secret_key_in_plain_text_is_refused(deliver):
    with pytest.raises(CliConfigError) as refused:
        deliver("token: {type: string, secret: true}\n", "proj:token: hunter2\n")
    assert str(refused.value) == ("validating stack config: Stack 'dev' with configuration key "
                                  "'token' must be encrypted as it's secret")


def test_the_default_of_a_typed_secret_key_is_plain_text_and_refused(deliver):
    # djscale's sshPrivateKey: `type: string, secret: true, default: ''`, left unset.
    with pytest.raises(CliConfigError, match="'sshPrivateKey' must be encrypted as it's secret"):
        deliver("sshPrivateKey: {type: string, secret: true, default: ''}\n")


def test_an_untyped_secret_key_in_plain_text_passes_and_is_not_secret(deliver):
    config, secret_keys = deliver("token: {secret: true}\n", "proj:token: hunter2\n")
    assert config == {"proj:token": "hunter2"}
    assert secret_keys == []


# --- types -------------------------------------------------------------------------------------

@pytest.mark.parametrize("declared, value, type_name", [
    ("{type: integer}", "hello", "integer"),
    ("{type: integer}", "1.5", "integer"),
    ("{type: array, items: {type: string}}", "someValue", "array<string>"),
    ("{type: array, items: {type: string}}", "[a, 1]", "array<string>"),
    ("{type: string}", "{a: 1}", "string"),
    ("{type: boolean}", "yes", "boolean"),
    ("{type: object}", "[1]", "object"),
])
def test_a_value_of_the_wrong_type_is_refused(deliver, declared, value, type_name):
    with pytest.raises(CliConfigError) as refused:
        deliver(f"key: {declared}\n", f"proj:key: {value}\n")
    assert str(refused.value) == ("validating stack config: Stack 'dev' with configuration key "
                                  f"'key' must be of type '{type_name}'")


@pytest.mark.parametrize("declared, value", [
    ("{type: integer}", "'8080'"),
    ("{type: string}", "8080"),
    ("{type: string}", "true"),
    ("{type: boolean}", "'true'"),
    ("{type: object}", "{a: 1}"),
    ("{type: array, items: {type: integer}}", "[1, 2.0]"),
])
def test_the_type_is_checked_on_the_text_the_program_gets(deliver, declared, value):
    deliver(f"key: {declared}\n", f"proj:key: {value}\n")


def test_a_typed_default_of_the_wrong_type_is_refused_when_the_project_loads(deliver, tmp_path):
    with pytest.raises(CliConfigError) as refused:
        deliver("port: {type: integer, default: eighty}\n")
    assert str(refused.value) == (
        f"could not unmarshal '{tmp_path / 'Pulumi.yaml'}': The default value specified for "
        "configuration key 'port' is not of the expected type 'integer'")


# --- serialization -----------------------------------------------------------------------------

def test_values_are_delivered_as_the_cli_serializes_them(deliver):
    config, _ = deliver("", """
        proj:port: 8080
        proj:quoted: "8080"
        proj:debug: true
        proj:ratio: 1.50
        proj:whole: 2.0
        proj:huge: 1e21
        proj:tiny: 0.0000001
        proj:buffering: off
        proj:answer: yes
        proj:hex: 0x1F
        proj:octal: 017
        proj:thousand: 1_000
        proj:date: 2024-01-01
        proj:empty:
        proj:obj: {b: [1, true, null, 1.5], a: "<b>&</b>", "ü": 2}
    """)
    assert config == {
        "proj:port": "8080", "proj:quoted": "8080", "proj:debug": "true", "proj:ratio": "1.5",
        "proj:whole": "2", "proj:huge": "1e+21", "proj:tiny": "1e-7", "proj:buffering": "off",
        "proj:answer": "yes", "proj:hex": "31", "proj:octal": "15", "proj:thousand": "1000",
        "proj:date": "2024-01-01", "proj:empty": "null",
        "proj:obj": '{"a":"\\u003cb\\u003e\\u0026\\u003c/b\\u003e","b":[1,true,null,1.5],"ü":2}'}


# --- the real project --------------------------------------------------------------------------

def test_the_dev_stack_as_the_cli_delivers_it():
    config, secret_keys = cli_config(ROOT / "Pulumi.yaml", ROOT / "Pulumi.dev.yaml",
                                     {"sshPrivateKey": "k", "staticStorageSecretKey": "s"})
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert set(config) == {f"djscale:{key}" for key in declared}
    assert config["djscale:domain"] == "dev.example.com"
    assert json.loads(config["djscale:acme"])["staging"] is True
    assert config["djscale:images"] == "{}"  # unset: the project's `default: {}`
    assert config["djscale:sshPrivateKey"] == "k"
    assert secret_keys == ["djscale:sshPrivateKey", "djscale:staticStorageSecretKey"]
