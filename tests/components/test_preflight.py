"""components/preflight.py: a stale SSH_AUTH_SOCK is refused before anything is created."""
from __future__ import annotations

import socket

import pytest

from components.preflight import PreflightError, agent_socket_problem, check_operator_machine


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
