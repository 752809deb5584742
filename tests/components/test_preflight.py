"""components/preflight.py: a stale SSH_AUTH_SOCK is refused before anything is created."""
from __future__ import annotations

import socket

import pytest

from components.preflight import (PreflightError, agent_socket_problem, check_app_contract,
                                  check_operator_machine)
from tests.render.conftest import make_config, replace


def test_unset_or_empty_is_fine():
    assert agent_socket_problem({}) is None
    assert agent_socket_problem({"SSH_AUTH_SOCK": ""}) is None


def test_a_listening_agent_socket_is_fine(tmp_path):
    path = tmp_path / "agent.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen(1)
        assert agent_socket_problem({"SSH_AUTH_SOCK": str(path)}) is None


@pytest.mark.parametrize("kind", ["missing", "dead"])
def test_a_stale_socket_is_refused_naming_the_variable(tmp_path, kind):
    path = tmp_path / "agent.sock"
    if kind == "dead":  # a socket file whose agent has gone
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
        server.close()
    with pytest.raises(PreflightError) as error:
        check_operator_machine({"SSH_AUTH_SOCK": str(path)})
    assert str(error.value).startswith(f"SSH_AUTH_SOCK={path} is set but no SSH agent answers")
    assert "unset SSH_AUTH_SOCK" in str(error.value)


def test_the_bundled_project_passes_the_contract_check():
    check_app_contract(make_config())


def test_a_project_that_breaks_the_contract_stops_the_deploy_with_every_problem():
    cfg = make_config()
    cfg = replace(cfg, app=replace(cfg.app, container_port=9000))
    with pytest.raises(PreflightError) as error:
        check_app_contract(cfg)
    assert str(error.value) == (
        "the Django project in assets/app does not keep djscale's contract "
        "(`python -m components.check_app --stack <stack>` lists the same):\n"
        "  - assets/app/Dockerfile: EXPOSE 8000 does not include app.containerPort (9000): "
        "the image says it listens elsewhere; EXPOSE 9000, or set app.containerPort to its "
        "port\n"
        "  - assets/app/gunicorn.conf.py: gunicorn binds 0.0.0.0:8000, but app.containerPort "
        "is 9000: bind 0.0.0.0:9000, or set app.containerPort to the port it binds")
