"""Shared plumbing for the host components: SSH connections, remote steps, Docker providers.

Every component reaches its server the same way, so the decisions live here once:

* `SshAccess` holds the stack's SSH key twice: as a secret `Output` (what
  `command.remote.Command` connections take) and as a path to a 0600 key file (what the
  Docker provider needs: it runs the local `ssh` binary and takes no key material).
* `remote_step` runs a root script over SSH (`sudo -n bash -c <script>`); stdin stays free
  for data, so a secret never appears on a command line.
* `remote_input_step` runs a command with content on stdin (a file install, atomically).
* Both re-run only when their content changes: the sha256 of the content is the trigger
  (for a secret the hash is computed inside `apply`, so it stays secret too).
* A step that touches a secret logs nothing and marks stdout/stderr secret.
"""
from __future__ import annotations

import hashlib
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import pulumi
import pulumi_docker as docker
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
    """Private local directory for files the local `ssh` binary needs (key, known_hosts).

    `DJSCALE_HOME` overrides `~/.djscale` (tests point it at a temp dir).
    """
    base = Path(os.environ.get("DJSCALE_HOME", "~/.djscale")).expanduser()
    return base / f"{project}-{stack}"


def _write_private(path: Path, text: str) -> str:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text if text.endswith("\n") else text + "\n")
    os.chmod(path, 0o600)
    return str(path)


@dataclass(frozen=True)
class SshAccess:
    """How this program logs in to every host of the stack."""

    cfg: StackConfig
    private_key: pulumi.Output[str]  # secret key content
    key_path: pulumi.Output[str]  # a file holding the same key (not a secret itself)
    local_dir: Path

    @staticmethod
    def create(cfg: StackConfig, private_key: Optional[pulumi.Output[str]],
               local_dir: Path) -> "SshAccess":
        """From `ssh.privateKeyPath` (read now, as a secret) or the `sshPrivateKey` secret
        (written to `local_dir/id_ssh`, mode 0600, for the Docker provider's ssh)."""
        if cfg.ssh.private_key_path:
            path = str(Path(cfg.ssh.private_key_path).expanduser())
            return SshAccess(cfg, pulumi.Output.secret(Path(path).read_text()),
                             pulumi.Output.from_input(path), local_dir)
        if private_key is None:
            raise ValueError("no SSH key: set ssh.privateKeyPath or the sshPrivateKey secret")
        key_file = local_dir / "id_ssh"
        path = pulumi.Output.unsecret(private_key.apply(lambda k: _write_private(key_file, k)))
        return SshAccess(cfg, pulumi.Output.secret(private_key), path, local_dir)

    def connection(self, host: HostConfig) -> remote.ConnectionArgs:
        ssh = self.cfg.ssh
        proxy = None
        if ssh.bastion is not None:
            proxy = remote.ProxyConnectionArgs(
                host=ssh.bastion.address, port=ssh.bastion.port, user=ssh.bastion.user,
                private_key=self.private_key,
                host_key=ssh.host_key_for(ssh.bastion.address),
            )
        return remote.ConnectionArgs(
            host=host.address, port=self.cfg.ssh_port_for(host), user=ssh.user,
            private_key=self.private_key, host_key=ssh.host_key_for(host.address),
            proxy=proxy,
        )

    # The Docker provider's view of the same host ------------------------------------

    def docker_host(self, host: HostConfig) -> str:
        return f"ssh://{self.cfg.ssh.user}@{host.address}:{self.cfg.ssh_port_for(host)}"

    def known_hosts_file(self, host: HostConfig) -> Optional[str]:
        """Write the pinned host keys (host, and bastion if any) for `host`, or None when
        nothing is pinned for it (then ssh accepts a new key once and remembers it)."""
        ssh = self.cfg.ssh
        lines = []
        for address, port in [(host.address, self.cfg.ssh_port_for(host))] + (
                [(ssh.bastion.address, ssh.bastion.port)] if ssh.bastion else []):
            key = ssh.host_key_for(address)
            if key:
                name = address if port == 22 else f"[{address}]:{port}"
                lines.append(f"{name} {key}")
        if not lines or ssh.host_key_for(host.address) is None:
            return None
        return _write_private(self.local_dir / f"known_hosts.{host.name}", "\n".join(lines))

    def docker_ssh_opts(self, host: HostConfig, key_path: str) -> list[str]:
        """Options for the local `ssh` the Docker CLI/provider spawns: key, host keys,
        bastion (as a ProxyCommand so it uses the same key and host-key policy)."""
        known = self.known_hosts_file(host)
        if known:
            host_key_opts = ["-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known}"]
        else:
            host_key_opts = ["-o", "StrictHostKeyChecking=accept-new",
                             "-o", f"UserKnownHostsFile={self.local_dir / 'known_hosts'}"]
        opts = ["-i", key_path, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                "-o", "ConnectTimeout=15", *host_key_opts]
        bastion = self.cfg.ssh.bastion
        if bastion is not None:
            jump = ["ssh", *opts, "-p", str(bastion.port), "-W", "%h:%p",
                    f"{bastion.user}@{bastion.address}"]
            opts += ["-o", "ProxyCommand=" + shlex.join(jump)]
        return opts

    def docker_provider(self, name: str, host: HostConfig, *,
                        depends_on: Sequence[pulumi.Resource],
                        parent: pulumi.Resource) -> docker.Provider:
        """A Docker provider talking to `host`'s engine over ssh://.

        It is registered after `depends_on` (the engine install). The daemon check is off so
        that `pulumi preview` of a first deploy, before Docker exists there, does not fail;
        images are not built on preview either, so preview never needs the engine.
        """
        return docker.Provider(
            name,
            host=self.docker_host(host),
            ssh_opts=self.key_path.apply(lambda p: self.docker_ssh_opts(host, p)),
            disable_docker_daemon_check=True,
            opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
        )


# --- Remote steps ----------------------------------------------------------------------

def _step_opts(opts: Optional[pulumi.ResourceOptions], secret: bool) -> pulumi.ResourceOptions:
    extra = pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS) if secret else None
    return pulumi.ResourceOptions.merge(opts or pulumi.ResourceOptions(), extra)


def remote_step(name: str, *, connection: remote.ConnectionArgs, script: pulumi.Input[str],
                stdin: Optional[pulumi.Input[str]] = None,
                triggers: Sequence[pulumi.Input] = (),
                delete: Optional[str] = None, secret: bool = False,
                opts: Optional[pulumi.ResourceOptions] = None) -> remote.Command:
    """Run `script` as root on the host; re-run when the script or a trigger changes.

    `secret=True` when stdin carries a secret or the output may show one. With a `delete`,
    a replacement deletes first: create-before-delete would undo the new step's work.
    """
    if delete:
        opts = pulumi.ResourceOptions.merge(opts or pulumi.ResourceOptions(),
                                            pulumi.ResourceOptions(delete_before_replace=True))
    return remote.Command(
        name,
        connection=connection,
        create=pulumi.Output.from_input(script).apply(render_run_script_command),
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
