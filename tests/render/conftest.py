"""Stack configs for the renderer tests, built directly as dataclasses.

`make_config` is the scenario factory: the defaults are the "two app servers" stack every
golden file is rendered from; tests pass overrides for other scenarios.
"""
from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from components.config import (AcmeConfig, AppConfig, AppServerConfig, BackupsConfig,
                               DatabaseConfig, FirewallConfig, HostConfig, ImagesConfig,
                               NginxConfig, SshConfig, StackConfig, StaticStorageConfig,
                               SuperuserConfig)

from tests.render.netns import Namespaces, listener_code, wait_listening

GOLDEN = Path(__file__).parent / "golden"


def make_config(*, app_count: int = 2, **overrides) -> StackConfig:
    app_servers = tuple(
        AppServerConfig(name=f"app{i}", address=f"203.0.113.{20 + i}",
                        private_address=f"10.0.0.{20 + i}")
        for i in range(1, app_count + 1)
    )
    values = dict(
        domain="shop.example.com",
        acme=AcmeConfig(email="ops@example.com", staging=True),
        ssh=SshConfig(user="deploy", port=22),
        database=DatabaseConfig(address="203.0.113.10", private_address="10.0.0.10",
                                name="django", user="django", port=5432),
        app_servers=app_servers,
        proxy=HostConfig(name="proxy", address="203.0.113.30", private_address="10.0.0.30",
                         ssh_port=2222),
        images=ImagesConfig(),
        app=AppConfig(superuser=SuperuserConfig(username="admin", email="admin@example.com")),
        static_storage=StaticStorageConfig(bucket="shop-static", access_key_id="AKIAEXAMPLE",
                                           endpoint_url="https://s3.example.net",
                                           region="eu-west-1"),
        firewall=FirewallConfig(admin_cidrs=("198.51.100.0/24", "192.0.2.7/32")),
        nginx=NginxConfig(),
        backups=BackupsConfig(bucket="shop-backups", access_key_id="AKIABACKUPEXAMPLE",
                              endpoint_url="https://s3.example.net", region="eu-west-1"),
    )
    values.update(overrides)
    return StackConfig(**values)


def replace(obj, **changes):
    return dataclasses.replace(obj, **changes)


@pytest.fixture
def cfg() -> StackConfig:
    return make_config()


def assert_golden(name: str, text: str) -> None:
    """Compare with tests/render/golden/<name>. Regenerate explicitly:
    DJSCALE_REGEN_GOLDEN=1 pytest tests/render  (then review the diff before committing)."""
    import os

    path = GOLDEN / name
    if os.environ.get("DJSCALE_REGEN_GOLDEN") == "1":
        path.write_text(text)
    assert path.exists(), f"missing golden file {path}"
    assert text == path.read_text(), f"rendered text differs from {path}"


def check_shell(script: str, tmp_path: Path) -> None:
    """bash -n and (when installed) shellcheck on a rendered script."""
    path = tmp_path / "script.sh"
    path.write_text(script)
    subprocess.run(["bash", "-n", str(path)], check=True)
    assert script.startswith("#!/usr/bin/env bash\n# managed by djscale, do not edit\n")
    assert "set -euo pipefail\n" in script
    assert not re.search(r"^\s*set -[a-z]*x", script, re.M), "never trace a script (secrets)"
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is required (apt-get install shellcheck)"
    result = subprocess.run([shellcheck, "-s", "bash", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


# --- hosts as network namespaces (tests/render/netns.py) ---------------------------------

@pytest.fixture
def netns():
    name = f"djscale-fw-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


@pytest.fixture
def sshd_stand_in(netns):
    """Listeners on the SSH ports inside the namespace: the ufw script checks that sshd
    listens where it is about to allow SSH."""
    started = []

    def listen(port: int) -> None:
        started.append(subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-c",
                                         listener_code(port)]))
        wait_listening(netns, port)

    yield listen
    for proc in started:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def namespaces():
    spaces = Namespaces()
    try:
        yield spaces
    finally:
        spaces.close()
