"""components/remote.py: SSH access for remote.Command."""
from __future__ import annotations

import pulumi
import pytest
from pulumi.runtime.sync_await import _sync_await

from components.config import BastionConfig, SshConfig
from components.remote import SshAccess, sha256_text, state_dir
from tests.components.helpers import stack_config

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHnl8GVYAFjQnt570xK8EvXFN4OsRKFGPsEmBuI7oUOp"
BASTION_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKYGe9V/z0QQGoq7eaddGGuIuSm5yKzCH/CtwoFLnbFm"


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


def test_an_unpinned_host_gets_no_connection_unless_the_stack_says_so():
    """The config refuses an unpinned host first; a StackConfig built another way still
    cannot connect to one unchecked, unless ssh.insecureSkipHostKeyCheck."""
    pinned = (("203.0.113.21", HOST_KEY),)
    cfg = stack_config(ssh=SshConfig(user="deploy", host_keys=pinned))
    with pytest.raises(ValueError, match=r"203\.0\.113\.22: no pinned host key"):
        SshAccess(cfg, pulumi.Output.secret("k")).connection(cfg.app_servers[1])
    cfg = stack_config(ssh=SshConfig(user="deploy", host_keys=pinned,
                                     insecure_skip_host_key_check=True))
    access = SshAccess(cfg, pulumi.Output.secret("k"))
    assert access.connection(cfg.app_servers[1]).host_key is None
    assert access.connection(cfg.app_servers[0]).host_key == HOST_KEY


def test_bastion_is_a_proxy_connection_with_the_same_key_and_its_own_pin():
    cfg = stack_config(ssh=SshConfig(
        user="deploy", bastion=BastionConfig(address="bastion.example.com", user="jump",
                                             port=2200),
        host_keys=(("203.0.113.21", HOST_KEY), ("bastion.example.com", BASTION_KEY))))
    access = SshAccess(cfg, pulumi.Output.secret("k"))
    connection = access.connection(cfg.app_servers[0])
    proxy = connection.proxy
    assert (proxy.host, proxy.port, proxy.user) == ("bastion.example.com", 2200, "jump")
    assert proxy.private_key is access.private_key
    assert (connection.host_key, proxy.host_key) == (HOST_KEY, BASTION_KEY)


def test_sha256_text():
    assert sha256_text("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
