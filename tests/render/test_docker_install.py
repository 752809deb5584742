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


def test_app_server_install_docker_script(tmp_path):
    script = render_install_docker_script("deploy", buildkit=True)
    assert_golden("install-docker-app.sh", script)
    check_shell(script, tmp_path)
    assert "buildx" not in render_install_docker_script("deploy")  # the proxy builds nothing


def _docker_stub(version: str, buildx: bool) -> str:
    """docker as an engine of `version` that has the buildx plugin or not (then `apt-get
    install docker-buildx` gives it one)."""
    return f"""
case "$1" in
    buildx) [ {'1' if buildx else '0'} = 1 ] || [ -f "$STUB_LOG.buildx" ] ;;
    version) echo {version} ;;
    *) exit 0 ;;
esac"""


APT_GET = 'case "$*" in *"install -y docker-buildx") touch "$STUB_LOG.buildx" ;; esac'


def _run(tmp_path, version: str, buildx: bool, candidate: str):
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    policy = (f'echo "docker-buildx:"; echo "  Installed: (none)"; '
              f'echo "  Candidate: {candidate}"' if candidate else "exit 0")
    make_stubs(bin_dir, {"docker": _docker_stub(version, buildx), "systemctl": "exit 0",
                         "install": "exit 0", "apt-get": APT_GET, "apt-cache": policy})
    result = run_sandboxed(render_install_docker_script("deploy", buildkit=True), bin_dir, log)
    return result, [c for c in calls(log) if c.startswith(("apt-get", "apt-cache", "docker b"))]


def test_docker_20_10_builds_with_buildkit_without_the_plugin(tmp_path):
    """Debian 12's docker.io 20.10: BuildKit is in its CLI, there is no docker-buildx."""
    result, apt = _run(tmp_path, "20.10.24+dfsg1", buildx=False, candidate="")
    assert result.returncode == 0, result.stderr
    assert apt == ["docker buildx version"]


def test_a_newer_docker_gets_the_distributions_buildx(tmp_path):
    """Debian 13's docker.io 26.1 without docker-buildx (installed without recommends)."""
    result, apt = _run(tmp_path, "26.1.5+dfsg1", buildx=False, candidate="0.13.1+ds1-3")
    assert result.returncode == 0, result.stderr
    assert apt == ["docker buildx version", "apt-cache policy docker-buildx",
                   "apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3 install -y "
                   "docker-buildx", "docker buildx version"]


def test_a_newer_docker_without_a_buildx_package_fails_saying_what_to_install(tmp_path):
    for candidate in ("", "(none)"):
        result, apt = _run(tmp_path, "26.1.5", buildx=False, candidate=candidate)
        assert result.returncode == 1
        assert result.stderr.endswith(
            "djscale: Docker 26.1.5 builds with BuildKit only through the buildx plugin, and "
            "apt offers no docker-buildx package here: install the plugin (Docker's "
            "docker-buildx-plugin with docker-ce), then deploy again\n")
        assert "apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3 update" in apt
        assert not any("install -y docker-buildx" in c for c in apt)
        (tmp_path / "calls.log").unlink()


def test_an_engine_with_buildx_is_left_alone(tmp_path):
    result, apt = _run(tmp_path, "27.3.1", buildx=True, candidate="")
    assert result.returncode == 0, result.stderr
    assert apt == ["docker buildx version"]
