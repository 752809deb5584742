"""components/apply.py: the whole program under mocks deploys exactly each host's plan.

For every scenario, each plan item is found in the recorded graph as `<host>-<item>`, with
the content the plan renders for the values the mocks gave (files as the stdin of their
install command, scripts as the command, containers with their spec), waiting for what the
item names; and the other way round, every resource under a host component is a plan item.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from components.config import StackConfig
from components.plans import stack_plans
from components.plans.items import File, Local, Step, Teardown, Upload, render_text
from components.remote import sha256_text
from components.render.files import render_install_file_command, render_run_script_command
from tests.support.pulumi_mocks import (MOCK_CA_CERT, Graph, _fake_digest, is_secret, plain,
                                        run_program)
from tests.support.stack_files import cli_stack_config
from tests.test_program import (SSH_KEY, ADMIN_PASSWORD, APP_SECRETS, BACKUP_SECRET, DB_PASSWORD,
                                FIXTURES, S3_SECRET, SECRET_KEY, SECRETS, STACKS, _cfg,
                                secrets_for)

TYPES = {Step: "command:remote:Command", File: "command:remote:Command",
         Teardown: "command:remote:Command", Upload: "command:remote:CopyToRemote",
         Local: "command:local:Command"}
PEERS = {"@release", "@image", "@batch", "@switched", "@app-starts"}
REFERENCED_CA_CERT = ("-----BEGIN CERTIFICATE-----\nTHE-DATABASE-STACK-CERTIFICATE\n"
                      "-----END CERTIFICATE-----\n")


@pytest.fixture(scope="module", params=["two_apps", "five_apps", "prod", "db_shared", "dbref",
                                        "own_project"])
def scenario(request, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJSCALE_HOME", str(tmp_path_factory.mktemp("home")))
        path = STACKS.get(request.param, FIXTURES / "stack_dbref.yaml")
        refs = {"example-org/djscale/db-prod": ({
            "dbPrivateAddress": "10.0.9.10", "dbPort": 5432.0, "dbName": "shop",
            "dbUser": "shop_app", "dbPassword": DB_PASSWORD, "dbCaCert": REFERENCED_CA_CERT,
            "dbClientAddresses": [h.private_address for h in _cfg(path).app_servers]},
            ["dbPassword"])}
        config, secret_keys = cli_stack_config(path, secrets_for(path))
        graph = run_program(config, secret_keys=secret_keys, stack=request.param,
                            stack_references=refs)
    return _cfg(path), graph


def _values(cfg: StackConfig, graph: Graph, host: str) -> dict[str, object]:
    """The deploy values as the mocks produced them."""
    db = cfg.database
    endpoint = ({"db_host": db.private_address, "db_port": db.port, "db_name": db.name,
                 "db_user": db.user} if db.host else
                {"db_host": "10.0.9.10", "db_port": 5432, "db_name": "shop",
                 "db_user": "shop_app"})
    values = {**endpoint, "db_password": DB_PASSWORD, "secret_key": SECRET_KEY,
              "s3_secret_key": S3_SECRET, "superuser_password": ADMIN_PASSWORD,
              "backup_s3_secret_key": BACKUP_SECRET,
              "db_ca_cert": MOCK_CA_CERT if db.host else REFERENCED_CA_CERT}
    # the mocks print a digest of the build step's command (on the first app server: the
    # others get that image), and the second slot's port for every start step
    values["app_image"] = _fake_digest(
        graph.named(f"{cfg.app_servers[0].name}-image").plain_input("create"))
    values["ssh_key"] = SSH_KEY
    values["app_secrets"] = {name: APP_SECRETS[name] for name in cfg.app_secret_names}
    values["slot_port"] = str(cfg.app.port + 1)
    values.update({f"port@{h.name}": str(cfg.app.port + 1) for h in cfg.app_servers})
    return values


def test_every_plan_item_is_deployed_as_planned(scenario):
    cfg, graph = scenario
    for plan in stack_plans(cfg):
        values = _values(cfg, graph, plan.host)
        for item in plan.items:
            resource = graph.named(f"{plan.host}-{item.name}")
            assert resource.type == TYPES[type(item)], resource.name
            deps = graph.deps(resource)
            for name in item.after:
                if name not in PEERS:
                    assert f"{plan.host}-{name}" in deps, (resource.name, name)
            if isinstance(item, Step):
                assert plain(resource.input("create")) == render_run_script_command(
                    render_text(item.script, values), ssh_client=item.ssh_client), resource.name
                if item.stdin:
                    stdin = render_text(item.stdin, values)
                    assert plain(resource.input("stdin")) == stdin
                    assert plain(resource.input("triggers"))[-1] == sha256_text(stdin)
                if item.undo:
                    assert plain(resource.input("delete")) == render_run_script_command(item.undo)
            elif isinstance(item, File):
                owner, group = item.owner.split(":")
                create = render_install_file_command(item.path, item.mode, owner, group)
                if item.activate:
                    create += " && " + render_run_script_command(item.activate)
                assert plain(resource.input("create")) == create, resource.name
                assert plain(resource.input("stdin")) == render_text(item.content, values)
            elif isinstance(item, Local):
                assert plain(resource.input("stdin")) == render_text(item.stdin, values)
                assert is_secret(resource.input("stdin")), resource.name  # the SSH key
                assert plain(resource.input("create")).endswith(f" -m {item.module}")
            elif isinstance(item, Teardown):
                assert resource.plain_input("create") is None
                assert plain(resource.input("delete")) == render_run_script_command(item.script)
            elif isinstance(item, Upload):
                assert resource.plain_input("remotePath") == item.remote_dir
                source = resource.input("source")
                staged = Path(source["path"])
                assert staged.name == item.dir_name
                assert sorted(p.relative_to(staged).as_posix() for p in staged.rglob("*")
                              if p.is_file()) == sorted(item.files)


def test_every_resource_of_a_host_is_a_plan_item(scenario):
    cfg, graph = scenario
    for plan in stack_plans(cfg):
        component = graph.named(plan.host)
        planned = {f"{plan.host}-{item.name}" for item in plan.items}
        owned = {r.name for r in graph.children(component)} - {"db-password"}
        assert owned == planned, plan.host


def test_secret_items_are_secret_in_the_graph(scenario):
    cfg, graph = scenario
    for plan in stack_plans(cfg):
        for item in plan.items:
            if getattr(item, "secret", False):
                resource = graph.named(f"{plan.host}-{item.name}")
                assert {"stdout", "stderr"} <= set(resource.additional_secret_outputs)
                assert plain(resource.input("logging")) == "none"
