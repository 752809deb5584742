"""No secret on a failure path: pulumi-command puts a failed step's command, stdout and
stderr into the error, whatever `logging` says (pulumi/pulumi-command v1.2.1,
provider/pkg/provider/remote/commandOutputs.go, run: `fmt.Errorf("%w: running %q:\\n%s",
err, cmd, stdouterrbuf)`). Each step that carries a secret runs here with a failure injected,
and its command line, stdout and stderr are searched for the secret.

The image ship (`appK-image`, on the operator's machine, the SSH key on stdin) is proven in
tests/components/test_ship_image.py. The database setup is proven against a real PostgreSQL
(tests/render/test_postgres.py,
test_a_failing_setup_shows_the_password_neither_in_its_output_nor_in_the_server_log), the app
container against a real Docker engine (tests/render/test_containers.py).
"""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from components.plans import stack_plans
from components.plans.items import File, Local, Step, render_text
from components.render import release
from components.render.files import render_install_file_command
from tests.render.conftest import make_config, replace
from tests.render.stubs import make_stubs

SECRET = "Top-Secret-Value-9d1c"


def _config():
    """The two-app stack, with a secret of the project's own (appSecrets) and a plain
    setting (app.env): every secret deploy value below is the marker."""
    cfg = make_config()
    return replace(cfg, app_secret_names=("API_TOKEN",),
                   app=replace(cfg.app, env=(("SITE_GREETING", "hello"),)))


def _secret_values(cfg) -> dict[str, object]:
    db = cfg.database
    return {"db_host": db.private_address, "db_port": db.port, "db_name": db.name,
            "db_user": db.user, "db_password": SECRET, "secret_key": SECRET,
            "s3_secret_key": SECRET, "superuser_password": SECRET, "app_image": "sha256:feed",
            "slot_port": cfg.app.port, "ssh_key": SECRET, "backup_s3_secret_key": SECRET,
            "backup_passphrase": SECRET,
            "app_secrets": {name: SECRET for name in cfg.app_secret_names}}


def test_no_step_carries_a_secret_on_its_command_line():
    """Secrets travel on stdin or in root-only files: the command text pulumi-command puts in
    its error never holds one (a secret deploy value set to a marker, every item rendered)."""
    cfg = _config()
    values = _secret_values(cfg)
    for plan in stack_plans(cfg):
        for item in plan.items:
            command = (render_text(item.script, values) if isinstance(item, Step)
                       else getattr(item, "activate", None) or getattr(item, "script", ""))
            assert SECRET not in (command or ""), f"{plan.host}-{item.name}"


@pytest.mark.parametrize("mode", ["0600"])
def test_a_failing_secret_file_install_prints_no_content(tmp_path, mode):
    """Failure injected: the target's directory is a file, so the install fails after reading
    nothing back; the content (an env file full of secrets) is in no output."""
    blocker = tmp_path / "etc"
    blocker.write_text("not a directory")
    command = render_install_file_command(str(blocker / "app.env"), mode, sudo=False)
    result = subprocess.run(["bash", "-c", command], input=f"SECRET={SECRET}\n", text=True,
                            capture_output=True)
    assert result.returncode != 0
    assert SECRET not in command + result.stdout + result.stderr


def test_a_failing_release_prints_no_secret_and_leaves_nothing_behind(tmp_path):
    """Failure injected: `docker run` fails (a stand-in that prints every argument it got,
    the way Docker's own errors quote them). The release's environment (its stdin, secrets
    included) reaches docker through a pipe: docker's arguments name the pipe, not a file,
    and no output holds a secret. The stand-in reads the pipe, as docker does, to prove the
    environment arrived; the file an older djscale kept is deleted."""
    cfg = _config()
    plan = next(p for p in stack_plans(cfg) if p.host == "app1")
    step = plan.item("release")
    env_text = render_text(step.stdin, _secret_values(cfg))
    assert f"\nAPI_TOKEN={SECRET}\n" in env_text  # the stdin does hold them, appSecrets too
    legacy = tmp_path / "release.env"
    legacy.write_text(f"DJANGO_SUPERUSER_PASSWORD={SECRET}\n")
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    make_stubs(bin_dir, {"docker": """
echo "docker: error running: $*" >&2
while [ $# -gt 0 ]; do
    if [ "$1" = --env-file ]; then
        [ -p "$2" ] && echo "env from a pipe" >> "$STUB_LOG"
        grep -c '^DJANGO_SUPERUSER_PASSWORD=' "$2" >> "$STUB_LOG"
    fi
    shift
done
exit 125"""})
    script = release.render_release_script("sha256:feed", legacy_env_file=str(legacy))
    scratch = tmp_path / "tmp"  # TMPDIR: where bash and mktemp would put a file
    scratch.mkdir()
    result = subprocess.run(
        ["unshare", "-m", "bash", "-c", 'mount --make-rprivate / && mount -t tmpfs x /run && '
         'bash -c "$0"; echo "rc=$?"; find /run "$TMPDIR" -type f', script],
        input=env_text, text=True, capture_output=True,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "STUB_LOG": str(log),
             "TMPDIR": str(scratch)})
    assert result.stdout == "rc=125\n", result  # and no file in /run or TMPDIR
    assert log.read_text().splitlines()[-2:] == ["env from a pipe", "1"]
    assert "--env-file /dev/fd/" in result.stderr  # the stand-in did print its arguments
    assert SECRET not in result.stdout + result.stderr + script
    assert not legacy.exists()


def test_secret_steps_are_marked_and_silent():
    """Where a secret is on stdin or in the content, the step logs nothing while it runs and
    its outputs are secret in the state (components/remote.py)."""
    cfg = _config()
    secret_items = [(p.host, i) for p in stack_plans(cfg) for i in p.items
                    if getattr(i, "secret", False)]
    assert {f"{h}-{i.name}" for h, i in secret_items} == {
        "db-setup", "db-backup-credentials", "app1-env-file", "app1-release", "app2-env-file"}
    for _, item in secret_items:
        assert isinstance(item, (File, Step))


def test_the_only_step_on_the_operators_machine_is_the_image_ship_proven_apart():
    """Local items run `python3 -m <module>` with a secret request on stdin (the SSH key):
    only the image ship, whose every failure stage is run with the key searched for in its
    output in tests/components/test_ship_image.py."""
    cfg = _config()
    values = _secret_values(cfg)
    local = {f"{p.host}-{i.name}": i for p in stack_plans(cfg) for i in p.items
             if isinstance(i, Local)}
    assert {name: item.module for name, item in local.items()} == {
        "app2-image": "components.ship_image"}
    assert json.loads(render_text(local["app2-image"].stdin, values))["key"] == SECRET


def test_the_env_file_holding_app_secrets_is_root_only_and_travels_on_stdin():
    """appSecrets reach the app containers through the env file only: mode 0600, root,
    its content the install command's stdin (never its command line), and the container
    is started with --env-file, not -e."""
    cfg = _config()
    values = _secret_values(cfg)
    for plan in stack_plans(cfg):
        if plan.role != "app":
            continue
        env_file = plan.item("env-file")
        assert (env_file.mode, env_file.owner, env_file.secret) == ("0600", "root:root", True)
        assert f"\nAPI_TOKEN={SECRET}\n" in render_text(env_file.content, values)
        assert SECRET not in render_install_file_command(env_file.path, env_file.mode)
        start = render_text(plan.item("start").script, values)
        assert "API_TOKEN" not in start and SECRET not in start
