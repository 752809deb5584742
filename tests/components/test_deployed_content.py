"""What the components deploy is exactly what the renderers (and the inspect command) show.

`components/render/hosts.py` lists, host by host, every file and script a server receives;
`python -m components.render` writes that list for review. Here the whole program runs under
mocks and each listed item is found, byte for byte, in the recorded graph: files as the stdin
of an install-file step at that path with that mode, scripts as the command of a step (the
nginx.conf activation scripts run after the command has installed the staged config). And
the other way round: every remote step the graph holds is one of those items.
"""
from __future__ import annotations

import shlex

import pytest

from components.render import certbot, hosts
from components.render.files import render_install_file_command, render_run_script_command
from components.render.nginx import NGINX_CONF_PATH, NGINX_STAGED_CONF_PATH
from tests.support.stack_files import stack_file_as_pulumi_config
from tests.support.pulumi_mocks import _fake_digest, plain, run_program
from tests.test_program import (
    ADMIN_PASSWORD, DB_PASSWORD, S3_SECRET, SECRET_KEY, SECRETS, STACKS, _cfg,
)

MOCK_SECRETS = hosts.Secrets(db_password=DB_PASSWORD, secret_key=SECRET_KEY,
                             static_storage_secret_key=S3_SECRET,
                             superuser_password=ADMIN_PASSWORD)
# The command that installs a staged nginx.conf from stdin, then runs its activation script.
STAGE_NGINX_CONF = render_install_file_command(NGINX_STAGED_CONF_PATH, "0644") + " && "


@pytest.fixture(scope="module", params=["two_apps", "five_apps", "prod", "db_shared"])
def scenario(request, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJSCALE_HOME", str(tmp_path_factory.mktemp("home")))
        path = STACKS[request.param]
        graph = run_program(stack_file_as_pulumi_config(path, SECRETS), stack=request.param)
    return _cfg(path), graph


def _every_host(cfg, graph):
    """What inspect lists, with the values the mocks gave the deploy-time outputs."""
    first = cfg.app_servers[0].name
    image = _fake_digest(graph.named(f"{first}-image").plain_input("imageName"))
    return hosts.every_host(cfg, MOCK_SECRETS, app_image=image)


def _commands_of(graph, host: str) -> dict[str, tuple[str, str]]:
    """{step name: (create, stdin)} of the host's remote commands."""
    return {r.name[len(host) + 1:]: (plain(r.input("create")), plain(r.input("stdin")))
            for r in graph.of_type("command:remote:Command") if r.name.startswith(f"{host}-")}


def test_every_rendered_item_is_deployed_verbatim(scenario):
    cfg, graph = scenario
    for host, items in _every_host(cfg, graph).items():
        commands = _commands_of(graph, host)
        creates = {create: name for name, (create, _) in commands.items()}
        for item in items:
            if item.is_step:
                run = render_run_script_command(item.content)
                name = creates.get(run) or creates.get(STAGE_NGINX_CONF + run)
                assert name, f"{host}: no step runs {item.path}"
            elif item.path == "/etc/ufw/after.rules":
                script = shlex.split(commands["firewall"][0])[4]  # sudo -n bash -c SCRIPT
                assert shlex.quote(item.content) in script, host  # the ufw step writes it
            elif item.path == NGINX_CONF_PATH + ".http-only":
                assert commands["nginx-http-conf"][1] == item.content
            elif item.path == NGINX_CONF_PATH:
                assert commands["nginx-tls-conf"][1] == item.content
            else:
                owner, group = item.owner.split(":")
                name = creates.get(render_install_file_command(item.path, item.mode, owner, group))
                assert name, f"{host}: no step installs {item.path} with mode {item.mode}"
                assert commands[name][1] == item.content, f"{host}:{item.path}"


def test_every_remote_step_is_a_rendered_item(scenario):
    cfg, graph = scenario
    for host, items in _every_host(cfg, graph).items():
        expected = set()
        for item in items:
            if item.is_step:
                expected.add(render_run_script_command(item.content))
                expected.add(STAGE_NGINX_CONF + render_run_script_command(item.content))
            elif item.path not in ("/etc/ufw/after.rules",):
                owner, group = item.owner.split(":")
                expected.add(render_install_file_command(item.path, item.mode, owner, group))
        for name, (create, _) in _commands_of(graph, host).items():
            assert create in expected, f"{host}-{name} deploys something inspect does not show"


def test_removing_the_renewal_step_disables_the_timer(scenario):
    _, graph = scenario
    step = graph.named("proxy-renew-enable")
    assert plain(step.input("delete")) == render_run_script_command(
        certbot.render_disable_renewal_script())
