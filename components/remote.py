"""Shared plumbing for the host components: SSH connections and remote steps.

Every component reaches its server the same way, so the decisions live here once:

* `SshAccess` gives each host's `connection` (pulumi-command's own SSH client, the pinned
  host key, bastion as a proxy connection with its own pinned key), the key as a secret
  `Output`. The connection is kept
  in each step's state, so `pulumi destroy` and `refresh` work from any machine that can
  decrypt the stack, without running the program.
* `remote_step` runs a root script over SSH (`sudo -n bash -c <script>`); stdin stays free
  for data, so a secret never appears on a command line.
* `remote_input_step` runs a command with content on stdin (a file install, atomically).
* Both re-run only when their content changes: the sha256 of the content is the trigger
  (for a secret the hash is computed inside `apply`, so it stays secret too).
* A step that touches a secret logs nothing while it runs (`logging: none`) and marks
  stdout/stderr secret in the state. That does not hide a failure's output: pulumi-command
  puts stdout and stderr into the error whatever `logging` says (provider/pkg/provider/
  remote/commandOutputs.go, run: `fmt.Errorf("%w: running %q:\n%s", err, cmd, ...)`), along
  with the command itself. So no script prints a secret on any path, and no command line
  holds one (tests/render/test_failure_output.py runs each with a failure injected).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import pulumi
from pulumi_command import remote

from components.config import HostConfig, StackConfig
from components.render.files import render_run_script_command

SECRET_OUTPUTS = ["stdout", "stderr"]


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def content_hash(content: pulumi.Input[str]) -> pulumi.Output[str]:
    """sha256 of `content`; secret when `content` is."""
    return pulumi.Output.from_input(content).apply(sha256_text)


# --- SSH access -------------------------------------------------------------------------

def state_dir(project: str, stack: str) -> Path:
    """Local working directory of a stack on the operator's machine (staged uploads).

    Nothing in it is secret; `DJSCALE_HOME` overrides `~/.djscale` (tests use a temp dir).
    """
    base = Path(os.environ.get("DJSCALE_HOME", "~/.djscale")).expanduser()
    return base / f"{project}-{stack}"


@dataclass(frozen=True)
class SshAccess:
    """How this program logs in to every host of the stack: one `connection` per host for
    pulumi-command, the key inside it as a secret (never in a file on this machine)."""

    cfg: StackConfig
    private_key: pulumi.Output[str]  # secret key content

    @staticmethod
    def create(cfg: StackConfig, private_key: Optional[pulumi.Output[str]]) -> "SshAccess":
        """From `ssh.privateKeyPath` (read now, as a secret) or the `sshPrivateKey` secret."""
        if cfg.ssh.private_key_path:
            path = Path(cfg.ssh.private_key_path).expanduser()
            return SshAccess(cfg, pulumi.Output.secret(path.read_text()))
        if private_key is None:
            raise ValueError("no SSH key: set ssh.privateKeyPath or the sshPrivateKey secret")
        return SshAccess(cfg, pulumi.Output.secret(private_key))

    def connection(self, host: HostConfig) -> remote.ConnectionArgs:
        ssh = self.cfg.ssh
        proxy = None
        if ssh.bastion is not None:
            proxy = remote.ProxyConnectionArgs(
                host=ssh.bastion.address, port=ssh.bastion.port, user=ssh.bastion.user,
                private_key=self.private_key, host_key=self._host_key(ssh.bastion.address),
            )
        return remote.ConnectionArgs(
            host=host.address, port=self.cfg.ssh_port_for(host), user=ssh.user,
            private_key=self.private_key, host_key=self._host_key(host.address),
            proxy=proxy,
        )

    def _host_key(self, address: str) -> Optional[str]:
        """The pinned key; without one pulumi-command accepts any key, so None only when the
        stack says so (the config refuses an unpinned host otherwise, and warns then)."""
        key = self.cfg.ssh.host_key_for(address)
        if key is None and not self.cfg.ssh.insecure_skip_host_key_check:
            raise ValueError(f"{address}: no pinned host key (ssh.hostKeys)")
        return key


# --- Remote steps ----------------------------------------------------------------------

def _step_opts(opts: Optional[pulumi.ResourceOptions], secret: bool) -> pulumi.ResourceOptions:
    extra = pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS) if secret else None
    return pulumi.ResourceOptions.merge(opts or pulumi.ResourceOptions(), extra)


def remote_step(name: str, *, connection: remote.ConnectionArgs, script: pulumi.Input[str],
                stdin: Optional[pulumi.Input[str]] = None,
                triggers: Sequence[pulumi.Input] = (),
                delete: Optional[str] = None, secret: bool = False, ssh_client: bool = False,
                opts: Optional[pulumi.ResourceOptions] = None) -> remote.Command:
    """Run `script` as root on the host; re-run when the script or a trigger changes.

    `secret=True` when stdin carries a secret or the output may show one. With a `delete`,
    a replacement deletes first: create-before-delete would undo the new step's work.
    `ssh_client=True`: the script's `$1` is the session's `$SSH_CLIENT`.
    """
    if delete:
        opts = pulumi.ResourceOptions.merge(opts or pulumi.ResourceOptions(),
                                            pulumi.ResourceOptions(delete_before_replace=True))
    return remote.Command(
        name,
        connection=connection,
        create=pulumi.Output.from_input(script).apply(
            lambda text: render_run_script_command(text, ssh_client=ssh_client)),
        delete=render_run_script_command(delete) if delete else None,
        stdin=stdin,
        triggers=[content_hash(script), *triggers],
        logging=remote.Logging.NONE if secret else None,
        add_previous_output_in_env=False,
        opts=_step_opts(opts, secret),
    )


def remote_input_step(name: str, *, connection: remote.ConnectionArgs, create: str,
                      content: pulumi.Input[str], extra_triggers: Sequence[pulumi.Input] = (),
                      secret: bool = False,
                      opts: Optional[pulumi.ResourceOptions] = None) -> remote.Command:
    """Run the command line `create` with `content` on stdin; re-run when the content (or an
    extra trigger) changes.

    No `delete`: a trigger change replaces the step create-before-delete, so a delete would
    undo what the new step just did. What such steps install stays after a destroy.
    """
    if secret:
        content = pulumi.Output.secret(content)
    return remote.Command(
        name,
        connection=connection,
        create=create,
        stdin=content,
        triggers=[content_hash(content), *extra_triggers],
        logging=remote.Logging.NONE if secret else None,
        add_previous_output_in_env=False,
        opts=_step_opts(opts, secret),
    )
