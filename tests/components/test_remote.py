"""components/remote.py: SSH access for remote.Command."""
from __future__ import annotations

import pulumi
import pytest
from pulumi.runtime.sync_await import _sync_await

from components.config import BastionConfig, SshConfig
from components.remote import SshAccess, sha256_text, state_dir
from tests.components.helpers import stack_config

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyForTestsOnly"


def _value(output):
    return _sync_await(output.future())


@pytest.fixture(autouse=True)
def mocked_runtime():
    from tests.support.pulumi_mocks import DjscaleMocks
    pulumi.runtime.set_mocks(DjscaleMocks(), project="djscale", stack="dev", preview=False)


def test_state_dir_is_per_stack_and_overridable(monkeypatch, tmp_path):
    monkeypatch.setenv("DJSCALE_HOME", str(tmp_path))
    assert state_dir("djscale", "prod") == tmp_path / "djscale-prod"


def test_the_key_secret_stays_a_secret_and_no_file_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("DJSCALE_HOME", str(tmp_path))
    cfg = stack_config()
    access = SshAccess.create(cfg, pulumi.Output.secret("KEY-CONTENT"))
    assert _value(access.private_key) == "KEY-CONTENT"
    assert _sync_await(access.private_key.is_secret())
    assert list(tmp_path.iterdir()) == []  # nothing on the operator's disk


def test_key_path_is_read_as_a_secret(tmp_path):
    key = tmp_path / "id"
    key.write_text("FROM-FILE\n")
    cfg = stack_config(ssh=SshConfig(user="deploy", private_key_path=str(key)))
    access = SshAccess.create(cfg, None)
    assert _value(access.private_key) == "FROM-FILE\n"
    assert _sync_await(access.private_key.is_secret())


def test_connection_pins_the_host_key_and_uses_the_hosts_port():
    cfg = stack_config(ssh=SshConfig(user="deploy", port=2222,
                                     host_keys=(("203.0.113.21", HOST_KEY),)))
    access = SshAccess(cfg, pulumi.Output.secret("k"))
    conn = access.connection(cfg.app_servers[0])
    assert (conn.host, conn.port, conn.user, conn.host_key) == (
        "203.0.113.21", 2222, "deploy", HOST_KEY)
    assert access.connection(cfg.app_servers[1]).host_key is None


def test_bastion_is_a_proxy_connection_with_the_same_key():
    cfg = stack_config(ssh=SshConfig(user="deploy", bastion=BastionConfig(
        address="bastion.example.com", user="jump", port=2200)))
    access = SshAccess(cfg, pulumi.Output.secret("k"))
    proxy = access.connection(cfg.app_servers[0]).proxy
    assert (proxy.host, proxy.port, proxy.user) == ("bastion.example.com", 2200, "jump")
    assert proxy.private_key is access.private_key


def test_sha256_text():
    assert sha256_text("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
