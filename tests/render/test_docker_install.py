"""The Docker install script: exact text, and run with stand-in commands."""
from __future__ import annotations

from components.render.docker_install import render_install_docker_script
from tests.render.conftest import assert_golden, check_shell
from tests.render.stubs import calls, make_stubs, run_sandboxed


def test_install_docker_script(tmp_path):
    script = render_install_docker_script("deploy")
    assert_golden("install-docker.sh", script)
    check_shell(script, tmp_path)


def test_no_docker_group_for_anyone():
    """Docker is used only through sudo: the docker group would be root for the SSH user."""
    assert "usermod" not in render_install_docker_script("deploy")
    assert "install -d" not in render_install_docker_script()  # no uploads, no directory


def test_makes_the_upload_directory_private_to_the_ssh_user(tmp_path):
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    make_stubs(bin_dir, {"docker": "exit 0", "systemctl": "exit 0", "install": "exit 0",
                         "apt-get": "exit 1"})  # must not be needed: docker is present
    result = run_sandboxed(render_install_docker_script("deploy"), bin_dir, log)
    assert result.returncode == 0, result.stderr
    assert calls(log) == [
        "systemctl enable --now docker", "systemctl is-active --quiet docker", "docker info",
        "docker info", "install -d -m 0700 -o deploy -g deploy /var/lib/djscale/uploads"]
