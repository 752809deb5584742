"""components/remote.py: SSH access for remote.Command and for the Docker provider's ssh."""
from __future__ import annotations

import os
import shlex
import stat

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


def test_secret_key_is_written_to_a_private_file_for_the_docker_provider(tmp_path):
    cfg = stack_config()
    access = SshAccess.create(cfg, pulumi.Output.secret("KEY-CONTENT"), tmp_path / "s")
    path = _value(access.key_path)
    assert path == str(tmp_path / "s" / "id_ssh")
    assert open(path).read() == "KEY-CONTENT\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "s").st_mode) == 0o700
    assert _sync_await(access.private_key.is_secret())
    assert not _sync_await(access.key_path.is_secret())  # a path, not the key


def test_key_path_is_read_as_a_secret_and_used_as_is(tmp_path):
    key = tmp_path / "id"
    key.write_text("FROM-FILE\n")
    cfg = stack_config(ssh=SshConfig(user="deploy", private_key_path=str(key)))
    access = SshAccess.create(cfg, None, tmp_path / "s")
    assert _value(access.private_key) == "FROM-FILE\n"
    assert _sync_await(access.private_key.is_secret())
    assert _value(access.key_path) == str(key)
    assert not (tmp_path / "s").exists()  # nothing written


def test_docker_ssh_opts_pin_the_host_key_when_configured(tmp_path):
    cfg = stack_config(ssh=SshConfig(user="deploy", port=2222,
                                     host_keys=(("203.0.113.21", HOST_KEY),)))
    access = SshAccess(cfg, pulumi.Output.secret("k"), pulumi.Output.from_input("/k"), tmp_path)
    app1, app2 = cfg.app_servers[0], cfg.app_servers[1]
    opts = access.docker_ssh_opts(app1, "/k")
    assert opts[:2] == ["-i", "/k"]
    assert "StrictHostKeyChecking=yes" in opts
    known = (tmp_path / "known_hosts.app1").read_text()
    assert known == f"[203.0.113.21]:2222 {HOST_KEY}\n"
    # no pinned key for app2: trust on first use, remembered in the stack's own file
    opts2 = access.docker_ssh_opts(app2, "/k")
    assert "StrictHostKeyChecking=accept-new" in opts2
    assert f"UserKnownHostsFile={tmp_path / 'known_hosts'}" in opts2
    assert access.docker_host(app1) == "ssh://deploy@203.0.113.21:2222"


def test_bastion_is_a_proxy_command_with_the_same_key(tmp_path):
    cfg = stack_config(ssh=SshConfig(user="deploy", bastion=BastionConfig(
        address="bastion.example.com", user="jump", port=2200)))
    access = SshAccess(cfg, pulumi.Output.secret("k"), pulumi.Output.from_input("/k"), tmp_path)
    opts = access.docker_ssh_opts(cfg.app_servers[0], "/k")
    proxy = [o for o in opts if o.startswith("ProxyCommand=")]
    assert len(proxy) == 1
    words = shlex.split(proxy[0][len("ProxyCommand="):])
    assert words[:3] == ["ssh", "-i", "/k"]
    assert words[-5:] == ["-p", "2200", "-W", "%h:%p", "jump@bastion.example.com"]

    conn = access.connection(cfg.app_servers[0])
    assert conn.proxy is not None


def test_sha256_text():
    assert sha256_text("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
