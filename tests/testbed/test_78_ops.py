"""The operations CLI against the bed (issue 12, item 4): `python -m components.ops --stack
testbed --engine-state ...` from the machine, as an operator runs it (the bed's
Pulumi.testbed.yaml, its pinned host keys and key file; the stack's outputs from the stand-in
engine's state). status names each server's release (the one the stack deployed), health,
upstream and certificate; logs bring a request's lines from the server that served it and
from nginx, prefixed by host; exec and manage run in a one-off container of the running
release with the app's environment and leave no container; a host that drops SSH is named
within the connection timeout while the others answer."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest

from . import layout
from .bed import PROJECT_DIR
from .deploy import ENGINE_STATE_DIR
from .hosts import wait_until

pytestmark = pytest.mark.first_suite  # the hosts' release plays no part (conftest.py)


def ops(*args: str, stdin: str = "", timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK",
                                                             "DJSCALE_SSH_PRIVATE_KEY")}
    return subprocess.run([sys.executable, "-m", "components.ops", "--stack", "testbed",
                           "--engine-state", str(ENGINE_STATE_DIR), *args], cwd=PROJECT_DIR,
                          env=env, input=stdin, capture_output=True, text=True,
                          timeout=timeout)


def _image(bed, role: str) -> str:
    return bed.sudo(role, f"docker inspect --format '{{{{.Image}}}}' "
                          f"{bed.app_container(role)}").stdout.strip()


@pytest.fixture(scope="module")
def stack_file(bed, deployed):
    assert (PROJECT_DIR / "Pulumi.testbed.yaml").is_file()  # `testbed up` wrote it
    return PROJECT_DIR / "Pulumi.testbed.yaml"


def test_status_names_every_release_and_checks_the_upstream(bed, stack_file):
    # a release's start step goes on once the app answers its healthcheck command, before
    # Docker's own first check (one interval later): status says "starting" until then
    for app in bed.apps:
        wait_until(f"{app}: Docker's healthcheck passed", lambda app=app: bed.sudo(
            app, "docker inspect --format '{{.State.Health.Status}}' "
                 f"{bed.app_container(app)}").stdout.strip() == "healthy", 30)
    result = ops("status")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    out = result.stdout
    image = _image(bed, bed.apps[0])
    for role, address in bed.roles.items():
        assert f"{role}" in out and f"{address}:22  reachable" in out, (role, out)
    for app in bed.apps:
        slot = bed.app_container(app)
        assert f"release {_image(bed, app)} ({slot}, port " in out, (app, out)
        assert "running healthy, up " in out
    assert f"appImage (the release the last update gave every app server): {image}" in out
    assert f"release {image}: {', '.join(bed.apps)}\n" in out
    for app in bed.apps:
        assert f"upstream {bed.address(app)}:" in out and f"({app}, slot " in out
    assert "certificate: the certificate served for " + layout.DOMAIN in out
    assert "postgresql active" in out
    assert "\n! " not in out and "  ! " not in out, out


def test_logs_bring_a_request_from_the_server_that_served_it_and_from_nginx(bed, stack_file):
    marker = f"ops-{uuid.uuid4().hex[:8]}"
    for i in range(2 * len(bed.apps)):
        bed.curl(f"https://{layout.DOMAIN}/mydb/?{marker}={i}", "-f")
    result = ops("logs", "--proxy", "--since", "5m")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if marker in line]
    served = {line.split(" | ")[0].strip() for line in lines}
    assert served == {*bed.apps, "proxy"}, lines  # round robin: every server got some
    assert sum(line.startswith("proxy") for line in lines) == 2 * len(bed.apps)
    for app in bed.apps:
        assert bed.app_log_count(app, marker) == sum(
            line.split(" | ")[0].strip() == app for line in lines)
    result = ops("logs", "db", "-n", "20")
    assert result.returncode == 0, result.stderr
    assert result.stdout and all(line.startswith("db | ") for line in
                                 result.stdout.splitlines())


def test_exec_and_manage_run_once_in_the_release_with_its_environment(bed, stack_file):
    app = bed.apps[-1]
    result = ops("exec", app, "--", "python", "-c",
                 "import os; print(os.environ['DATABASE_NAME'], os.environ['DATABASE_SSLMODE'])")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "django verify-full"

    result = ops("manage", "shell", stdin=(
        "from django.contrib.auth import get_user_model\n"
        "print('superusers', get_user_model().objects.filter(is_superuser=True).count())\n"))
    assert result.returncode == 0, result.stderr
    assert "superusers 1" in result.stdout
    result = ops("manage", "check")
    assert result.returncode == 0 and "System check identified no issues" in result.stdout
    result = ops("exec", app, "--", "python", "-c", "raise SystemExit(7)")
    assert result.returncode == 7  # the command's status

    result = ops("exec", "db", "--on-host", "--", "sudo", "-u", "postgres", "psql", "-tAc",
                 "select 1")
    assert result.returncode == 0 and result.stdout.strip() == "1", result.stderr
    for role in bed.apps:  # one-off containers are gone
        left = bed.sudo(role, "docker ps -aq --filter label=djscale.oneoff=ops").stdout
        assert left.strip() == "", role


def test_a_host_that_drops_ssh_is_named_within_the_bound(bed, stack_file):
    app = bed.apps[-1]
    rule = f"INPUT -s {layout.GATEWAY}/32 -p tcp --dport 22 -j DROP"
    bed.run_in(app, f"iptables -I {rule}")
    try:
        started = time.monotonic()
        result = ops("--connect-timeout", "3", "status")
        elapsed = time.monotonic() - started
    finally:
        bed.run_in(app, f"iptables -D {rule}")
    assert elapsed < 60, elapsed
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()  # one line, the host named (ssh's own words after)
    assert line.startswith(f"djscale ops: {app} ({bed.address(app)}:22): unreachable: "), line
    assert "timed out" in line, line
    assert f"{app}" in result.stdout and "NOT REACHED" in result.stdout
    for other in bed.apps[:-1]:
        assert f"release {_image(bed, other)} (" in result.stdout
