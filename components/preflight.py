"""Checks before anything is created: the operator's machine, and the Django project the
stack deploys against djscale's contract (components/check_app/: the same problems
`python -m components.check_app --stack <stack>` prints).

pulumi-command dials the SSH agent named by SSH_AUTH_SOCK whenever that variable is set,
even when the connection has a private key, and fails the step when the dial fails
(pulumi/pulumi-command v1.2.1, provider/pkg/provider/remote/connection.go, SSHConfig:
`tryGetDefaultAgentSocket` then `dialAgent` returns its error). A stale SSH_AUTH_SOCK (an
agent that died, a forwarded socket of a closed session) would make every remote step fail
with a bare "connect: no such file or directory": refuse early, naming the variable.
"""
from __future__ import annotations

import os
import socket
from typing import Mapping, Optional

from components.check_app import app_source, check_stack_app
from components.config import StackConfig


class PreflightError(RuntimeError):
    """The operator's machine cannot run this deploy as it is."""


def agent_socket_problem(environ: Mapping[str, str] = os.environ,
                         timeout: float = 2.0) -> Optional[str]:
    """Why SSH_AUTH_SOCK would break pulumi-command's SSH, or None (unset, or an agent)."""
    path = environ.get("SSH_AUTH_SOCK", "")
    if not path:
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
    except OSError as error:
        return (f"SSH_AUTH_SOCK={path} is set but no SSH agent answers there "
                f"({error.strerror or error}); pulumi-command would fail every remote step "
                "(it dials the agent whenever the variable is set). Start the agent "
                "(eval $(ssh-agent)) or unset SSH_AUTH_SOCK for `pulumi up`.")
    return None


def check_operator_machine(environ: Mapping[str, str] = os.environ) -> None:
    problem = agent_socket_problem(environ)
    if problem:
        raise PreflightError(problem)


def check_app_contract(cfg: StackConfig) -> None:
    """Every way the project would fail once deployed that its files already show."""
    problems = check_stack_app(cfg).problems
    if problems:
        raise PreflightError(
            f"the Django project in {app_source(cfg)[1]} does not keep djscale's contract "
            "(`python -m components.check_app --stack <stack>` lists the same):\n"
            + "\n".join(f"  - {problem}" for problem in problems))
