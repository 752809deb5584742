"""components/proxy.py: the nginx config activation script, run for real with bash.

A stub `docker` on PATH plays the nginx container: it records every call and answers
`inspect` (running or not) and `nginx -t` (accept or reject) as the test says.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from components.proxy import render_activate_nginx_conf_script

STUB = """#!/bin/sh
echo "$*" >> "$DOCKER_LOG"
case "$1 $2" in
  "container inspect") [ -n "$RUNNING" ] && echo true && exit 0; exit 1 ;;
esac
case "$*" in
  *"nginx -t"*) exit "${NGINX_T_RC:-0}" ;;
esac
exit 0
"""


@pytest.fixture
def box(tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(STUB)
    (bin_dir / "docker").chmod(0o755)
    conf_dir = tmp_path / "nginx"
    conf_dir.mkdir()
    return tmp_path, bin_dir, conf_dir


def _run(box, *, running: bool, nginx_t_rc: int = 0, unless_exists=None):
    tmp, bin_dir, conf_dir = box
    script = render_activate_nginx_conf_script(
        container="djscale-nginx", staged=str(conf_dir / "nginx.conf.new"),
        target=str(conf_dir / "nginx.conf"), unless_exists=unless_exists)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}",
               DOCKER_LOG=str(tmp / "docker.log"), RUNNING="1" if running else "",
               NGINX_T_RC=str(nginx_t_rc))
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
    log = (tmp / "docker.log").read_text().splitlines() if (tmp / "docker.log").exists() else []
    return result, log


def test_first_deploy_installs_config_without_a_container(box):
    _, _, conf_dir = box
    (conf_dir / "nginx.conf.new").write_text("http-only\n")
    result, log = _run(box, running=False)
    assert result.returncode == 0, result.stderr
    assert (conf_dir / "nginx.conf").read_text() == "http-only\n"
    assert not (conf_dir / "nginx.conf.new").exists()
    assert not any("exec" in line for line in log)  # nothing to validate against or reload


def test_running_nginx_validates_the_staged_file_then_reloads(box):
    _, _, conf_dir = box
    (conf_dir / "nginx.conf").write_text("old\n")
    (conf_dir / "nginx.conf.new").write_text("new\n")
    result, log = _run(box, running=True)
    assert result.returncode == 0, result.stderr
    assert (conf_dir / "nginx.conf").read_text() == "new\n"
    execs = [line for line in log if line.startswith("exec")]
    assert execs == [f"exec djscale-nginx nginx -t -q -c {conf_dir}/nginx.conf.new",
                     "exec djscale-nginx nginx -s reload"]


def test_rejected_config_keeps_the_old_one_and_fails(box):
    _, _, conf_dir = box
    (conf_dir / "nginx.conf").write_text("old\n")
    (conf_dir / "nginx.conf.new").write_text("broken\n")
    result, log = _run(box, running=True, nginx_t_rc=1)
    assert result.returncode == 1
    assert "rejects" in result.stderr
    assert (conf_dir / "nginx.conf").read_text() == "old\n"
    assert not (conf_dir / "nginx.conf.new").exists()
    assert not any("reload" in line for line in log)


def test_bootstrap_config_is_discarded_once_a_certificate_exists(box):
    tmp, _, conf_dir = box
    cert = tmp / "fullchain.pem"
    cert.write_text("cert")
    (conf_dir / "nginx.conf").write_text("tls\n")
    (conf_dir / "nginx.conf.new").write_text("http-only\n")
    result, log = _run(box, running=True, unless_exists=str(cert))
    assert result.returncode == 0, result.stderr
    assert (conf_dir / "nginx.conf").read_text() == "tls\n"
    assert not (conf_dir / "nginx.conf.new").exists()
    assert log == []


def test_bootstrap_config_is_installed_while_there_is_no_certificate(box):
    tmp, _, conf_dir = box
    (conf_dir / "nginx.conf").write_text("tls for another domain\n")
    (conf_dir / "nginx.conf.new").write_text("http-only\n")
    result, log = _run(box, running=True, unless_exists=str(tmp / "missing.pem"))
    assert result.returncode == 0, result.stderr
    assert (conf_dir / "nginx.conf").read_text() == "http-only\n"
    assert log[-1] == "exec djscale-nginx nginx -s reload"
