"""The Docker install script: exact text, and run with stand-in commands."""
from __future__ import annotations

from components.render.docker_install import render_install_docker_script
from tests.render.conftest import assert_golden, check_shell
from tests.render.stubs import calls, make_stubs, run_sandboxed


def test_install_docker_script(tmp_path):
    script = render_install_docker_script("deploy")
    assert_golden("install-docker.sh", script)
    check_shell(script, tmp_path)


def test_without_a_user_or_as_root_no_group_change():
    assert "usermod" not in render_install_docker_script()
    assert "usermod" not in render_install_docker_script("root")


def _run(tmp_path, groups: str):
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    make_stubs(bin_dir, {"docker": "exit 0", "systemctl": "exit 0", "usermod": "exit 0",
                         "apt-get": "exit 1",  # must not be needed: docker is present
                         "id": f"echo {groups}"})
    result = run_sandboxed(render_install_docker_script("deploy"), bin_dir, log)
    assert result.returncode == 0, result.stderr
    return calls(log)


def test_adds_the_user_to_the_docker_group_once(tmp_path):
    assert _run(tmp_path / "a", "deploy sudo") == [
        "systemctl enable --now docker", "systemctl is-active --quiet docker", "docker info",
        "docker info", "id -nG deploy", "usermod -aG docker deploy"]
    assert _run(tmp_path / "b", "deploy docker sudo")[-1] == "id -nG deploy"
    assert _run(tmp_path / "c", "deploy dockerish")[-1] == "usermod -aG docker deploy"
