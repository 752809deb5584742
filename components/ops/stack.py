"""The stack the operations CLI works on: its hosts, its outputs, the key to reach them.

* Config: `Pulumi.<stack>.yaml`, read and validated as `pulumi up` reads it (the schema's
  defaults are the project's, components/config), never decrypting anything: the hosts,
  `ssh.*` (user, ports, pinned host keys, bastion).
* Outputs (optional: `status` compares each server's release with `appImage`): with
  `--engine-state` (or DJSCALE_ENGINE_STATE) the test bed's stand-in engine state file (or
  its directory), else `pulumi stack output --json` when the Pulumi CLI is on PATH. Secret
  outputs are never read.
* The SSH key: `--key-file`, else DJSCALE_SSH_PRIVATE_KEY (the key's text), else the
  stack's `ssh.privateKeyPath`, else `pulumi config get sshPrivateKey` when the CLI is
  there. It only goes into the session's private agent.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

import yaml

from components.config import ConfigError, HostConfig, StackConfig, parse_config, read_stack_file
from components.config.stack_file import assume_secrets
from components.plans.app_server import ssh_connection

KEY_ENV = "DJSCALE_SSH_PRIVATE_KEY"
ENGINE_STATE_ENV = "DJSCALE_ENGINE_STATE"
# The SDK's marker of a secret value in wire form (pulumi/runtime/rpc.py): never read.
_SIG_KEY, _SECRET_SIG = "4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"
_STACK_TYPE = "pulumi:pulumi:Stack"


class OpsError(RuntimeError):
    """A problem with the stack or the operator's machine (exit status 2)."""


@dataclass(frozen=True)
class OpsHost:
    name: str  # "db", "app1", "proxy"
    role: str  # "database", "app", "proxy"
    config: HostConfig
    connection: dict  # components/ship_image.py's CONNECTION

    @property
    def where(self) -> str:
        return f"{self.connection['host']}:{self.connection['port']}"


def load_config(stack_file: Path) -> StackConfig:
    if not stack_file.is_file():
        raise OpsError(f"no stack file {stack_file}")
    raw, present = read_stack_file(stack_file)
    try:
        return parse_config(raw, assume_secrets(raw, present)[0], check_files=False)
    except ConfigError as error:
        raise OpsError(f"{stack_file}: {error}") from None


def stack_hosts(cfg: StackConfig) -> list[OpsHost]:
    """Every host of the stack, in deploy order: the database (when the stack owns it), the
    app servers, the proxy."""
    hosts = []
    if cfg.database.host is not None:
        hosts.append(("database", cfg.database.host))
    hosts += [("app", host) for host in cfg.app_servers] + [("proxy", cfg.proxy)]
    return [OpsHost(host.name, role, host, ssh_connection(cfg, host)) for role, host in hosts]


# --- outputs -----------------------------------------------------------------------------

def project_name(project_dir: Path) -> str:
    document = yaml.safe_load((project_dir / "Pulumi.yaml").read_text()) or {}
    return str(document.get("name", "djscale"))


def engine_state_outputs(path: Path, project: str, stack: str) -> dict[str, Any]:
    """The plain (not secret) exports the stand-in engine recorded for `stack`: `path` is
    its state file or the directory of `<project>-<stack>.engine-state.json`."""
    if path.is_dir():
        path = path / f"{project}-{stack}.engine-state.json"
    if not path.is_file():
        raise OpsError(f"no engine state {path}")
    records = json.loads(path.read_text()).get("resources", [])
    for record in records:
        if record.get("type") == _STACK_TYPE and not record.get("delete"):
            return {name: value for name, value in (record.get("outputs") or {}).items()
                    if not _is_secret(value)}
    return {}


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(_SIG_KEY) == _SECRET_SIG


def pulumi_outputs(stack: str, project_dir: Path, timeout: float = 60) -> dict[str, Any]:
    """`pulumi stack output --json` (secrets stay "[secret]": never shown)."""
    done = subprocess.run(["pulumi", "stack", "output", "--json", "--stack", stack],
                          cwd=project_dir, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()
        raise OpsError(f"pulumi stack output --stack {stack}: "
                       f"{said[-1] if said else 'failed'}")
    outputs = json.loads(done.stdout or "{}")
    return {name: value for name, value in outputs.items() if value != "[secret]"}


def read_outputs(stack: Optional[str], project_dir: Path, engine_state: Optional[str],
                 environ: Mapping[str, str] = os.environ) -> tuple[dict[str, Any], str]:
    """(outputs, where they came from); ({}, why not) when there are none to read."""
    state = engine_state or environ.get(ENGINE_STATE_ENV)
    if state:
        if not stack:
            raise OpsError("--engine-state needs --stack (the state file is per stack)")
        return (engine_state_outputs(Path(state), project_name(project_dir), stack),
                f"the engine state {state}")
    if stack and shutil.which("pulumi"):
        try:
            return pulumi_outputs(stack, project_dir), "pulumi stack output"
        except (OpsError, subprocess.SubprocessError, ValueError) as error:
            return {}, f"not read ({error})"
    return {}, "not read (no Pulumi CLI on PATH, no --engine-state)"


# --- the key -----------------------------------------------------------------------------

def private_key(cfg: StackConfig, stack: Optional[str], project_dir: Path,
                key_file: Optional[str], environ: Mapping[str, str] = os.environ,
                timeout: float = 60) -> str:
    """The stack's SSH private key, from the first source that has it."""
    if key_file:
        return _read_key(Path(key_file).expanduser(), "--key-file")
    if environ.get(KEY_ENV):
        return environ[KEY_ENV]
    if cfg.ssh.private_key_path:
        return _read_key(Path(cfg.ssh.private_key_path).expanduser(), "ssh.privateKeyPath")
    if stack and shutil.which("pulumi"):
        done = subprocess.run(["pulumi", "config", "get", "sshPrivateKey", "--stack", stack],
                              cwd=project_dir, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout
    raise OpsError("no SSH key for the stack: pass --key-file KEYFILE, or put the key in "
                   f"{KEY_ENV}, or run where `pulumi config get sshPrivateKey` works")


def _read_key(path: Path, source: str) -> str:
    try:
        return path.read_text()
    except OSError as error:
        raise OpsError(f"{source}: cannot read the key file {path}: {error.strerror}") from None
