"""A test-only stand-in for the Pulumi engine and providers: it runs the REAL `__main__.py`.

What it is
    The Pulumi CLI and its provider plugins cannot be installed here, so the test bed runs the
    real program under the Python SDK's mock runtime (`pulumi.runtime.mocks`) with a monitor
    that, for every registered custom resource, performs that resource's *create* for real
    and returns real outputs (camelCase wire names, as the provider returns them):

    * `command:remote:Command`: the `create` script over SSH (system `ssh`, `exec` request, so
      the remote user's login shell runs it) with the resource's own `connection` (host, port,
      user, privateKey, hostKey VERIFIED, proxy), stdin piped; `update`/`delete` honoured.
    * `command:remote:CopyToRemote`: FileAsset / StringAsset / FileArchive (a path) over SFTP.
    * `pulumi:providers:docker` + `docker:index/image:Image` (docker CLI build at the provider's
      `ssh://` host with its `sshOpts`), `docker:index/container:Container` (`docker run`),
      `docker:index/remoteImage:RemoteImage` (local image first, else pull), `Network`, `Volume`.
    * `random:index/randomPassword:RandomPassword` / `RandomString` (`secrets` module).

    Order: the SDK registers a resource only when its inputs and `depends_on` have resolved,
    and a URN resolves only when the create here has returned, so dependencies are honoured
    (tests/testbed/test_engine.py proves it). A JSON state file (mode 600) of every resource's
    inputs and outputs makes a second `deploy` behave like a second `pulumi up`: unchanged
    inputs do nothing; a changed Command runs `update` (else `create`) again; a `triggers`
    change replaces it (create, then the old `delete` at the end; `delete_before_replace`
    deletes first); a changed Container is replaced; an Image rebuilds when its inputs or its
    context's files change; a RandomPassword keeps its value. Resources gone from the program
    are deleted at the end, in reverse creation order.

What it is not
    Not Pulumi: no preview, no refresh (state is never read back from the servers), no
    import, no StackReference, no invokes, no transforms, no resource hooks, no parallelism
    limit other than the SDK's thread pool, no diff of provider-computed defaults. It
    refuses, with an error naming the resource, every resource type and every input property
    (nested ones too) that it does not implement: it fails rather than silently ignoring.
    Known approximations: a Container healthcheck in exec form (`["CMD", ...]`) runs through
    `/bin/sh -c` (the docker CLI has no exec-form flag); `environment` and previous outputs
    reach the server as SSH `env` requests, which sshd drops unless `AcceptEnv` allows them
    (as with the real provider); RandomPassword has no `bcryptHash`.

Use `deploy(config, project_dir)`; `inspect(config, project_dir)` runs the program without
executing anything and reports every resource type and input key it registers, and which of
them this stand-in would refuse.
"""
from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import json
import logging
import os
import runpy
import secrets
import shlex
import shutil
import string
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import pulumi
from pulumi.runtime import config as pulumi_config
from pulumi.runtime import mocks, rpc, settings
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

log = logging.getLogger("djscale.testbed.engine")

PROJECT = "djscale"
DEFAULT_SECRET_KEYS = ("djscale:sshPrivateKey", "djscale:staticStorageSecretKey")
DEFAULT_STATE_DIR = Path(os.environ.get("DJSCALE_TEST_STATE", "/var/lib/djscale-test")) / "engine-state"
_SIG, _SECRET = rpc._special_sig_key, rpc._special_secret_sig
SSH = shutil.which("ssh") or "/usr/bin/ssh"
SFTP = shutil.which("sftp") or "/usr/bin/sftp"


class Refused(Exception):
    """The program asks for something this stand-in does not implement."""


class DeployError(Exception):
    """A resource's real operation failed."""


# --------------------------------------------------------------------------- values

def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(_SIG) == _SECRET


def secret(value: Any) -> dict:
    return value if is_secret(value) else {_SIG: _SECRET, "value": value}


def plain(value: Any) -> Any:
    """An input as plain JSON data: secrets unwrapped, integral floats as ints, assets as
    {"asset"/"archive": kind, ...} dicts."""
    if is_secret(value):
        return plain(value["value"])
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, pulumi.FileAsset):
        return {"asset": "file", "path": str(value.path)}
    if isinstance(value, pulumi.StringAsset):
        return {"asset": "string", "text": value.text}
    if isinstance(value, pulumi.FileArchive):
        return {"archive": "file", "path": str(value.path)}
    if isinstance(value, (pulumi.Asset, pulumi.Archive)):
        return {"unsupported": type(value).__name__}
    return value


def key_paths(value: Any, prefix: str = "") -> list[str]:
    """Every key path of a plain value: dict keys by name, list items as `[*]`."""
    out = []
    if isinstance(value, dict) and not ({"asset", "archive"} & value.keys()):
        for k, v in value.items():
            path = f"{prefix}.{k}" if prefix else k
            out.append(path)
            out += key_paths(v, path)
    elif isinstance(value, list):
        for v in value:
            out += key_paths(v, f"{prefix}[*]")
    return sorted(set(out))


def _top_level(path: str) -> bool:
    return path.replace("_", "").isalnum()


def tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def file_tree_hash(path: Path, ignore: Callable[[str], bool] = lambda rel: False) -> str:
    digest = hashlib.sha256()
    if path.is_file():
        digest.update(path.read_bytes())
        return digest.hexdigest()
    for p in sorted(path.rglob("*")):
        rel = p.relative_to(path).as_posix()
        if p.is_file() and not ignore(rel):
            digest.update(rel.encode() + b"\0" + p.read_bytes() + b"\0")
    return digest.hexdigest()


# --------------------------------------------------------------------------- SSH

CONNECTION_KEYS = {"host", "port", "user", "privateKey", "hostKey", "proxy", "dialErrorLimit",
                   "perDialTimeout"}
_DIAL_ERRORS = ("Connection refused", "Connection timed out", "No route to host",
                "Connection reset", "kex_exchange_identification", "Connection closed by",
                "Network is unreachable")


@dataclass
class SshTarget:
    """One `connection` input, ready for the system `ssh`/`sftp` binaries."""

    host: str
    port: int
    user: str
    private_key: Optional[str]
    host_key: Optional[str]
    proxy: Optional["SshTarget"]
    dial_error_limit: int
    per_dial_timeout: int

    @staticmethod
    def from_input(conn: dict) -> "SshTarget":
        proxy = conn.get("proxy")
        return SshTarget(
            host=conn["host"], port=int(conn.get("port", 22)), user=conn.get("user", "root"),
            private_key=conn.get("privateKey"), host_key=conn.get("hostKey"),
            proxy=SshTarget.from_input(proxy) if proxy else None,
            dial_error_limit=int(conn.get("dialErrorLimit", 10)),
            per_dial_timeout=int(conn.get("perDialTimeout", 15)))

    def options(self, workdir: Path, tag: str = "target") -> list[str]:
        """ssh options (no destination): key, pinned host key or none, proxy."""
        opts = ["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentityAgent=none",
                "-o", f"ConnectTimeout={self.per_dial_timeout}", "-o", "LogLevel=ERROR",
                "-o", "ServerAliveInterval=30", "-l", self.user]
        if self.private_key:
            key = workdir / f"{tag}.key"
            key.write_text(self.private_key if self.private_key.endswith("\n")
                           else self.private_key + "\n")
            key.chmod(0o600)
            opts += ["-i", str(key), "-o", "IdentitiesOnly=yes"]
        if self.host_key:  # the provider pins exactly this key; without one it accepts any
            known = workdir / f"{tag}.known_hosts"
            name = self.host if self.port == 22 else f"[{self.host}]:{self.port}"
            known.write_text(f"{name} {self.host_key.strip()}\n")
            opts += ["-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known}",
                     "-o", f"HostKeyAlgorithms={_host_key_algorithms(self.host_key)}"]
        else:
            opts += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
        if self.proxy is not None:
            jump = [SSH, *self.proxy.options(workdir, tag + "-proxy"), "-p",
                    str(self.proxy.port), "-W", "%h:%p", self.proxy.host]
            opts += ["-o", "ProxyCommand=" + shlex.join(jump)]
        return opts

    def run(self, command: str, *, stdin: Optional[str] = None,
            env: Optional[dict[str, str]] = None, timeout: float = 3600) -> tuple[int, str, str]:
        """Run `command` through an exec request (the login shell runs it); retry the dial
        like the provider (dialErrorLimit), never a command that ran."""
        env_opts = []
        for k, v in (env or {}).items():
            if any(c in v for c in "\n\r\"'\\") or any(c.isspace() for c in k + v):
                raise Refused(f"environment value for {k!r} cannot be passed as an SSH env "
                              "request by this stand-in (whitespace/quotes/newlines)")
            env_opts += ["-o", f"SetEnv={k}={v}"]
        with tempfile.TemporaryDirectory(prefix="djscale-ssh-") as tmp:
            argv = [SSH, *self.options(Path(tmp)), *env_opts, "-T", "-p", str(self.port),
                    "--", self.host, command]
            dials = 0
            while True:
                dials += 1
                proc = subprocess.run(argv, input=(stdin or "").encode(), capture_output=True,
                                      timeout=timeout)
                err = proc.stderr.decode(errors="replace")
                if proc.returncode == 255 and "Host key verification failed" in err:
                    raise DeployError(f"ssh {self.user}@{self.host}:{self.port}: host key "
                                      f"verification failed (pinned hostKey does not match)"
                                      f"\n{tail(err, 5)}")
                dial_failed = proc.returncode == 255 and any(e in err for e in _DIAL_ERRORS)
                if dial_failed and (self.dial_error_limit < 0 or dials <= self.dial_error_limit):
                    time.sleep(min(2 * dials, 10))
                    continue
                return proc.returncode, proc.stdout.decode(errors="replace"), err

    def sftp(self, batch: str, timeout: float = 600) -> None:
        with tempfile.TemporaryDirectory(prefix="djscale-sftp-") as tmp:
            batch_file = Path(tmp) / "batch"
            batch_file.write_text(batch)
            opts = self.options(Path(tmp))  # sftp has no -l: the user goes into the target
            i = opts.index("-l")
            del opts[i:i + 2]
            proc = subprocess.run([SFTP, *opts, "-P", str(self.port), "-b", str(batch_file),
                                   f"{self.user}@{self.host}"], capture_output=True, text=True,
                                  timeout=timeout)
            if proc.returncode != 0:
                raise DeployError(f"sftp to {self.user}@{self.host}:{self.port} failed "
                                  f"({proc.returncode}):\n{tail(proc.stderr)}")


def _host_key_algorithms(host_key: str) -> str:
    """Only the pinned key's type: the server must prove exactly that key."""
    kind = host_key.split()[0]
    return "rsa-sha2-512,rsa-sha2-256,ssh-rsa" if kind == "ssh-rsa" else kind


# --------------------------------------------------------------------------- docker CLI

class DockerCli:
    """The docker CLI pointed at a provider's host. For `ssh://` hosts the CLI's connection
    helper runs `ssh` from PATH: a wrapper first on PATH adds the provider's `sshOpts`,
    exactly the options the real provider hands its ssh."""

    def __init__(self, provider: dict):
        self.host = provider.get("host") or "unix:///var/run/docker.sock"
        self.ssh_opts = provider.get("sshOpts") or []

    @contextlib.contextmanager
    def session(self):
        with tempfile.TemporaryDirectory(prefix="djscale-docker-") as tmp:
            env = dict(os.environ, DOCKER_HOST=self.host, DOCKER_BUILDKIT="0")
            if self.host.startswith("ssh://"):
                wrapper = Path(tmp) / "ssh"
                wrapper.write_text(f"#!/bin/sh\nexec {shlex.quote(SSH)} "
                                   f"{shlex.join(self.ssh_opts)} \"$@\"\n")
                wrapper.chmod(0o700)
                env["PATH"] = f"{tmp}:{env.get('PATH', '/usr/bin:/bin')}"
            yield _DockerRun(env, Path(tmp), self.host)


@dataclass
class _DockerRun:
    env: dict
    tmp: Path
    host: str

    def __call__(self, *args: str, check: bool = True, timeout: float = 3600,
                 what: str = "") -> subprocess.CompletedProcess:
        proc = subprocess.run(["docker", *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise DeployError(f"{what or 'docker ' + args[0]} at {self.host} failed "
                              f"({proc.returncode}):\n{tail(proc.stdout, 10)}\n"
                              f"{tail(proc.stderr)}")
        return proc

    def inspect(self, kind: str, ref: str) -> Optional[dict]:
        proc = self(kind, "inspect", ref, check=False)
        return json.loads(proc.stdout)[0] if proc.returncode == 0 else None


# --------------------------------------------------------------------------- resources

@dataclass
class Registration:
    urn: str
    type: str
    name: str
    custom: bool
    raw_inputs: dict  # as deserialized: secrets still wrapped, assets as objects
    provider_ref: str = ""
    delete_before_replace: bool = False
    replace_on_changes: list = field(default_factory=list)
    additional_secret_outputs: list = field(default_factory=list)
    dependencies: list = field(default_factory=list)
    protect: bool = False
    ignore_changes: list = field(default_factory=list)
    retain_on_delete: bool = False
    refused_options: list = field(default_factory=list)

    @property
    def inputs(self) -> dict:
        return plain(self.raw_inputs)


class Handler:
    """One resource type: which input key paths it implements and its real operations.

    create/update return (id, computed outputs); the engine echoes the inputs around them.
    """

    TYPE = ""
    KEYS: frozenset = frozenset()

    def check(self, inputs: dict) -> list[str]:
        """The input key paths this handler does not implement."""
        return [p for p in key_paths(inputs) if p not in self.KEYS]

    def diff_inputs(self, inputs: dict, ctx: "Context") -> dict:
        """The inputs as compared between runs (handlers add content hashes)."""
        return inputs

    def replaces(self, old: dict, new: dict, reg: Registration) -> bool:
        changed = {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
        return bool(changed & {p.split("[")[0].split(".")[0] for p in reg.replace_on_changes})

    def create(self, reg: Registration, inputs: dict, ctx: "Context") -> tuple[str, dict]:
        raise NotImplementedError

    def update(self, reg: Registration, old: dict, inputs: dict,
               ctx: "Context") -> tuple[str, dict]:
        return self.create(reg, inputs, ctx)

    def delete(self, record: dict, ctx: "Context") -> None:
        pass

    def fake_outputs(self, inputs: dict) -> dict:
        return {}


@dataclass
class Context:
    providers: dict  # provider URN -> plain inputs
    project_dir: Path

    def provider_for(self, reg: Registration) -> dict:
        urn = reg.provider_ref.rsplit("::", 1)[0] if reg.provider_ref else ""
        if urn not in self.providers:
            raise Refused(f"{reg.type} {reg.name!r} has no explicit docker provider: the "
                          "default provider (local engine) is not implemented")
        return self.providers[urn]


LOGGING_STREAMS = {"stdout": {"stdout"}, "stderr": {"stderr"}, "none": set(),
                   "stdoutAndStderr": {"stdout", "stderr"}}


class RemoteCommand(Handler):
    TYPE = "command:remote:Command"
    KEYS = frozenset(
        {"connection", "create", "update", "delete", "stdin", "triggers", "triggers[*]",
         "logging", "addPreviousOutputInEnv", "environment", "environment.*"}
        | {f"connection.{k}" for k in CONNECTION_KEYS}
        | {f"connection.proxy.{k}" for k in CONNECTION_KEYS - {"proxy"}})

    def check(self, inputs: dict) -> list[str]:
        # triggers may hold anything (they are only compared); environment keys are names
        paths = [p for p in key_paths(inputs) if not p.startswith("triggers[*]")
                 and not p.startswith("environment.")]
        return [p for p in paths if p not in self.KEYS]

    def _run(self, reg: Registration, inputs: dict, command: str, what: str,
             previous: Optional[dict] = None) -> dict:
        target = SshTarget.from_input(inputs["connection"])
        env = dict(inputs.get("environment") or {})
        if previous and inputs.get("addPreviousOutputInEnv", True):
            for key, name in (("stdout", "PULUMI_COMMAND_STDOUT"),
                              ("stderr", "PULUMI_COMMAND_STDERR")):
                if previous.get(key):
                    env[name] = previous[key]
        shown = LOGGING_STREAMS[inputs.get("logging", "stdoutAndStderr")]
        started = time.monotonic()
        rc, out, err = target.run(command, stdin=inputs.get("stdin"), env=env)
        log.info("%s %s on %s: exit %d in %.1fs", what, reg.name, target.host, rc,
                 time.monotonic() - started)
        for stream, text in (("stdout", out), ("stderr", err)):
            if stream in shown and text.strip():
                log.debug("[%s %s] %s", reg.name, stream, tail(text, 40))
        if rc != 0:
            parts = [f"remote.Command {reg.name!r} ({what}) on {target.user}@{target.host}:"
                     f"{target.port} exited {rc}"]
            for stream, text in (("stdout", out), ("stderr", err)):
                parts.append(f"--- {stream} (tail) ---\n{tail(text)}" if stream in shown
                             else f"--- {stream} hidden (logging={inputs.get('logging')}) ---")
            raise DeployError("\n".join(parts))
        return {"stdout": out.removesuffix("\n"), "stderr": err.removesuffix("\n")}

    def create(self, reg, inputs, ctx):
        outputs = {"stdout": "", "stderr": ""}
        if inputs.get("create") is not None:
            outputs = self._run(reg, inputs, inputs["create"], "create")
        return f"{reg.name}-{secrets.token_hex(4)}", outputs

    def update(self, reg, old, inputs, ctx):
        command = inputs.get("update") or inputs.get("create")
        outputs = dict(old["outputs"])
        if command is not None:
            outputs = self._run(reg, inputs, command, "update", previous=old["outputs"])
        return old["id"], outputs

    def delete(self, record, ctx):
        inputs = record["inputs"]
        if inputs.get("delete") is not None:
            reg = Registration(record["urn"], self.TYPE, record["name"], True, {})
            self._run(reg, inputs, inputs["delete"], "delete", previous=record["outputs"])

    def fake_outputs(self, inputs):
        return {"stdout": "", "stderr": ""}


class CopyToRemote(Handler):
    TYPE = "command:remote:CopyToRemote"
    KEYS = frozenset({"connection", "source", "remotePath", "triggers", "triggers[*]"}
                     | {f"connection.{k}" for k in CONNECTION_KEYS}
                     | {f"connection.proxy.{k}" for k in CONNECTION_KEYS - {"proxy"}})

    def check(self, inputs):
        problems = [p for p in key_paths(inputs) if not p.startswith("triggers[*]")
                    and p not in self.KEYS]
        source = inputs.get("source") or {}
        if source.get("asset") not in ("file", "string") and source.get("archive") != "file":
            problems.append(f"source ({source.get('unsupported') or source})")
        return problems

    def _source_path(self, source: dict, ctx: Context) -> Path:
        return (ctx.project_dir / source["path"]).resolve()

    def diff_inputs(self, inputs, ctx):
        source = inputs["source"]
        digest = (hashlib.sha256(source["text"].encode()).hexdigest() if "text" in source
                  else file_tree_hash(self._source_path(source, ctx)))
        return {**inputs, "source": {**source, "hash": digest}}

    def create(self, reg, inputs, ctx):
        target = SshTarget.from_input(inputs["connection"])
        source, dest = inputs["source"], inputs["remotePath"]
        rc, kind, _ = target.run(f"if [ -d {shlex.quote(dest)} ]; then echo dir; "
                                 f"elif [ -e {shlex.quote(dest)} ]; then echo file; "
                                 "else echo none; fi")
        kind = kind.strip()
        with tempfile.TemporaryDirectory(prefix="djscale-copy-") as tmp:
            if "text" in source:
                if kind == "dir":
                    raise DeployError(f"CopyToRemote {reg.name!r}: remote path {dest} is a "
                                      "directory; a text asset needs a file path")
                src = Path(tmp) / "content"
                src.write_text(source["text"])
                batch = [f"put {_q(src)} {_q(dest)}"]
            else:
                src = self._source_path(source, ctx)
                batch = self._batch(src, source["path"].endswith("/"), dest, kind)
            target.sftp("\n".join(batch) + "\n")
        log.info("copy %s to %s:%s", reg.name, target.host, dest)
        return secrets.token_hex(8), {}

    @staticmethod
    def _batch(src: Path, trailing_slash: bool, dest: str, kind: str) -> list[str]:
        """The provider's table: a dir goes to dest/<name> unless its path ends with '/'."""
        if src.is_file():
            final = f"{dest.rstrip('/')}/{src.name}" if kind == "dir" else dest
            return [f"put {_q(src)} {_q(final)}"]
        if kind == "file":
            raise DeployError(f"remote path {dest} exists but is not a directory")
        root = dest if trailing_slash else f"{dest.rstrip('/')}/{src.name}"
        batch = [f"-mkdir {_q(dest)}", f"-mkdir {_q(root)}"]
        for p in sorted(src.rglob("*")):
            remote = f"{root}/{p.relative_to(src).as_posix()}"
            batch.append(f"-mkdir {_q(remote)}" if p.is_dir() else f"put {_q(p)} {_q(remote)}")
        return batch

    def update(self, reg, old, inputs, ctx):
        if (self.diff_inputs(inputs, ctx)["source"] != old["diff_inputs"]["source"]
                or inputs["remotePath"] != old["inputs"]["remotePath"]):
            return self.create(reg, inputs, ctx)[0], {}
        return old["id"], {}


def _q(path: Any) -> str:
    text = str(path)
    if '"' in text or "\n" in text:
        raise Refused(f"path {text!r} cannot be written in an sftp batch")
    return f'"{text}"'


class DockerProvider(Handler):
    TYPE = "pulumi:providers:docker"
    KEYS = frozenset({"host", "sshOpts", "disableDockerDaemonCheck", "version"})

    @staticmethod
    def normalize(inputs: dict) -> dict:
        out = dict(inputs)
        for key in ("sshOpts", "disableDockerDaemonCheck"):
            if isinstance(out.get(key), str):  # the SDK sends these JSON-encoded
                out[key] = json.loads(out[key])
        return out

    def create(self, reg, inputs, ctx):
        provider = self.normalize(inputs)
        if not provider.get("disableDockerDaemonCheck"):
            with DockerCli(provider).session() as docker:  # the upstream provider pings
                docker("version", what=f"docker provider {reg.name!r} daemon check")
        return str(uuid.uuid4()), {}

    def update(self, reg, old, inputs, ctx):
        return self.create(reg, inputs, ctx)[0], {}


class DockerResource(Handler):
    def create(self, reg, inputs, ctx):
        with DockerCli(ctx.provider_for(reg)).session() as docker:
            return self.create_with(docker, reg, inputs, ctx)

    def delete(self, record, ctx):
        with DockerCli(record["provider"]).session() as docker:
            self.delete_with(docker, record)

    def create_with(self, docker, reg, inputs, ctx):
        raise NotImplementedError

    def delete_with(self, docker, record):
        pass


class Image(DockerResource):
    TYPE = "docker:index/image:Image"
    KEYS = frozenset({"imageName", "skipPush", "buildOnPreview", "build", "build.context",
                      "build.dockerfile", "build.args", "build.args.*", "build.platform",
                      "build.target", "build.network", "build.builderVersion",
                      "build.addHosts", "build.addHosts[*]"})

    def check(self, inputs):
        problems = [p for p in key_paths(inputs) if p not in self.KEYS
                    and not p.startswith("build.args.")]
        if not inputs.get("skipPush"):
            problems.append("skipPush=false (pushing to a registry is not implemented)")
        if (inputs.get("build") or {}).get("builderVersion", "BuilderV1") != "BuilderV1":
            problems.append("build.builderVersion=BuilderBuildKit (engine 20.10, no buildx)")
        return problems

    def _paths(self, inputs, ctx):
        build = inputs.get("build") or {}
        context = (ctx.project_dir / build.get("context", ".")).resolve()
        dockerfile = (ctx.project_dir / build["dockerfile"]).resolve() if build.get(
            "dockerfile") else context / "Dockerfile"
        return context, dockerfile

    def diff_inputs(self, inputs, ctx):
        context, dockerfile = self._paths(inputs, ctx)
        ignore = _dockerignore(context)
        return {**inputs, "contextHash": file_tree_hash(context, ignore),
                "dockerfileHash": file_tree_hash(dockerfile)}

    def create_with(self, docker, reg, inputs, ctx):
        build = inputs.get("build") or {}
        context, dockerfile = self._paths(inputs, ctx)
        args = ["build", "-t", inputs["imageName"], "-f", str(dockerfile)]
        for k, v in (build.get("args") or {}).items():
            args += ["--build-arg", f"{k}={v}"]
        for flag, key in (("--platform", "platform"), ("--target", "target"),
                          ("--network", "network")):
            if build.get(key):
                args += [flag, build[key]]
        for host in build.get("addHosts") or []:
            args += ["--add-host", host]
        started = time.monotonic()
        docker(*args, str(context), what=f"docker build of Image {reg.name!r}")
        image_id = docker("image", "inspect", "-f", "{{.Id}}", inputs["imageName"]).stdout.strip()
        log.info("built %s (%s) in %.1fs", inputs["imageName"], image_id[:19],
                 time.monotonic() - started)
        return inputs["imageName"], {
            "imageName": inputs["imageName"], "repoDigest": image_id,  # local image: its id
            "baseImageName": inputs["imageName"], "registryServer": "",
            "context": str(context), "dockerfile": str(dockerfile),
            "platform": build.get("platform", "")}

    def update(self, reg, old, inputs, ctx):
        return self.create(reg, inputs, ctx)

    def fake_outputs(self, inputs):
        return {"imageName": inputs.get("imageName"), "repoDigest": "sha256:" + "0" * 64}


def _dockerignore(context: Path) -> Callable[[str], bool]:
    import fnmatch
    path = context / ".dockerignore"
    patterns = [line.strip() for line in path.read_text().splitlines()
                if line.strip() and not line.startswith("#")] if path.exists() else []

    def ignored(rel: str) -> bool:
        result = False
        for pattern in patterns:
            negate = pattern.startswith("!")
            pat = pattern.lstrip("!").strip("/")
            if fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(rel, pat + "/*") or any(
                    fnmatch.fnmatch(rel, f"*/{pat}") for _ in [0] if pat.startswith("**")):
                result = not negate
        return result
    return ignored


class RemoteImage(DockerResource):
    TYPE = "docker:index/remoteImage:RemoteImage"
    KEYS = frozenset({"name", "keepLocally", "forceRemove", "platform", "triggers",
                      "triggers.*", "pullTriggers", "pullTriggers[*]"})

    def check(self, inputs):
        return [p for p in key_paths(inputs) if p not in self.KEYS
                and not p.startswith("triggers.")]

    def replaces(self, old, new, reg):
        return any(old.get(k) != new.get(k) for k in ("name", "platform", "triggers",
                                                      "pullTriggers"))

    def create_with(self, docker, reg, inputs, ctx):
        name = inputs["name"]
        found = docker.inspect("image", name)  # the provider uses a local image first
        if found is None:
            args = ["pull", name] + (["--platform", inputs["platform"]]
                                     if inputs.get("platform") else [])
            docker(*args, what=f"docker pull for RemoteImage {reg.name!r}")
            found = docker.inspect("image", name)
        digests = found.get("RepoDigests") or []
        return f"{found['Id']}{name}", {"imageId": found["Id"],
                                         "repoDigest": digests[0] if digests else ""}

    def update(self, reg, old, inputs, ctx):
        return old["id"], old["outputs"]

    def delete_with(self, docker, record):
        if not record["inputs"].get("keepLocally"):
            force = ["-f"] if record["inputs"].get("forceRemove") else []
            docker("image", "rm", *force, record["outputs"]["imageId"], check=False)

    def fake_outputs(self, inputs):
        return {"imageId": "sha256:" + "1" * 64, "repoDigest": ""}


class Container(DockerResource):
    TYPE = "docker:index/container:Container"
    KEYS = frozenset(
        {"name", "image", "restart", "maxRetryCount", "ports", "ports[*].internal",
         "ports[*].external", "ports[*].ip", "ports[*].protocol", "envs", "volumes",
         "volumes[*].hostPath", "volumes[*].containerPath", "volumes[*].readOnly",
         "volumes[*].volumeName", "mounts", "mounts[*].target", "mounts[*].source",
         "mounts[*].type", "mounts[*].readOnly", "networkMode", "healthcheck",
         "healthcheck.tests", "healthcheck.interval", "healthcheck.timeout",
         "healthcheck.retries", "healthcheck.startPeriod", "wait", "waitTimeout", "mustRun",
         "logDriver", "logOpts", "command", "entrypoints", "user", "hostname", "labels",
         "labels[*].label", "labels[*].value", "capabilities", "capabilities.adds",
         "capabilities.drops", "stopSignal", "stopTimeout", "destroyGraceSeconds", "init",
         "workingDir", "readOnly", "hosts", "hosts[*].host", "hosts[*].ip", "dns",
         "securityOpts", "start", "removeVolumes", "memory", "shmSize", "tmpfs"})

    def check(self, inputs):
        return [p for p in key_paths(inputs) if p not in self.KEYS
                and not p.startswith(("logOpts.", "tmpfs."))]

    def replaces(self, old, new, reg):
        return True  # the upstream provider forces a new container for these inputs

    def _run_args(self, inputs: dict, env_file: Path) -> list[str]:
        args = ["run" if inputs.get("start", True) else "create"]
        args += ["-d"] if inputs.get("start", True) else []
        args += ["--name", inputs["name"]] if inputs.get("name") else []
        restart = inputs.get("restart", "no")
        if restart == "on-failure" and inputs.get("maxRetryCount"):
            restart += f":{inputs['maxRetryCount']}"
        args += ["--restart", restart]
        for p in inputs.get("ports") or []:
            external = str(p["external"]) if p.get("external") is not None else ""
            args += ["-p", f"{p.get('ip', '0.0.0.0')}:{external}:{p['internal']}/"
                           f"{p.get('protocol', 'tcp')}"]
        if inputs.get("envs"):
            env_file.write_text("".join(f"{e}\n" for e in inputs["envs"]))
            env_file.chmod(0o600)
            if any("\n" in e for e in inputs["envs"]):
                raise Refused("an envs entry holds a newline (no env-file form for it)")
            args += ["--env-file", str(env_file)]
        for v in inputs.get("volumes") or []:
            source = v.get("hostPath") or v.get("volumeName")
            args += ["-v", f"{source}:{v['containerPath']}" + (":ro" if v.get("readOnly")
                                                                else "")]
        for m in inputs.get("mounts") or []:
            spec = f"type={m.get('type', 'volume')},target={m['target']}"
            spec += f",source={m['source']}" if m.get("source") else ""
            spec += ",readonly" if m.get("readOnly") else ""
            args += ["--mount", spec]
        hc = inputs.get("healthcheck")
        if hc:
            tests = hc["tests"]
            if tests[0] == "NONE":
                args += ["--no-healthcheck"]
            else:  # CMD-SHELL as given; exec form through sh -c (the CLI has no exec form)
                cmd = tests[1] if tests[0] == "CMD-SHELL" else shlex.join(tests[1:])
                args += ["--health-cmd", cmd]
                for flag, key in (("--health-interval", "interval"),
                                  ("--health-timeout", "timeout"),
                                  ("--health-start-period", "startPeriod"),
                                  ("--health-retries", "retries")):
                    if hc.get(key) not in (None, "", "0s"):
                        args += [flag, str(hc[key])]
        flags = {"networkMode": "--network", "logDriver": "--log-driver", "user": "--user",
                 "hostname": "--hostname", "stopSignal": "--stop-signal",
                 "stopTimeout": "--stop-timeout", "workingDir": "--workdir"}
        for key, flag in flags.items():
            if inputs.get(key) is not None:
                args += [flag, str(inputs[key])]
        for k, v in (inputs.get("logOpts") or {}).items():
            args += ["--log-opt", f"{k}={v}"]
        for label in inputs.get("labels") or []:
            args += ["--label", f"{label['label']}={label['value']}"]
        caps = inputs.get("capabilities") or {}
        for cap in caps.get("adds") or []:
            args += ["--cap-add", cap]
        for cap in caps.get("drops") or []:
            args += ["--cap-drop", cap]
        for h in inputs.get("hosts") or []:
            args += ["--add-host", f"{h['host']}:{h['ip']}"]
        for d in inputs.get("dns") or []:
            args += ["--dns", d]
        for o in inputs.get("securityOpts") or []:
            args += ["--security-opt", o]
        for path, opts in (inputs.get("tmpfs") or {}).items():
            args += ["--tmpfs", f"{path}:{opts}" if opts else path]
        if inputs.get("memory"):
            args += ["--memory", f"{inputs['memory']}m"]
        if inputs.get("shmSize"):
            args += ["--shm-size", f"{inputs['shmSize']}m"]
        args += ["--init"] if inputs.get("init") else []
        args += ["--read-only"] if inputs.get("readOnly") else []
        entry = inputs.get("entrypoints") or []
        if entry:
            args += ["--entrypoint", entry[0]]
        return args + [inputs["image"], *entry[1:], *(inputs.get("command") or [])]

    def create_with(self, docker, reg, inputs, ctx):
        started = time.monotonic()
        args = self._run_args(inputs, docker.tmp / "env")
        cid = docker(*args, what=f"docker run for Container {reg.name!r}").stdout.strip()
        what = f"Container {reg.name!r} ({inputs.get('name', cid[:12])}) at {docker.host}"
        if inputs.get("start", True) and inputs.get("mustRun", True):
            self._wait_running(docker, cid, what)
        if inputs.get("wait"):
            self._wait_healthy(docker, cid, what, inputs.get("waitTimeout", 60))
        info = docker.inspect("container", cid) or {}
        log.info("container %s up in %.1fs", what, time.monotonic() - started)
        networks = (info.get("NetworkSettings") or {}).get("Networks") or {}
        return cid, {"name": info.get("Name", "").lstrip("/") or inputs.get("name"),
                     "networkDatas": [{"networkName": n, "ipAddress": d.get("IPAddress", ""),
                                       "gateway": d.get("Gateway", ""),
                                       "macAddress": d.get("MacAddress", "")}
                                      for n, d in networks.items()],
                     "bridge": "", "containerLogs": None, "exitCode": None}

    @staticmethod
    def _state(docker, cid) -> dict:
        return (docker.inspect("container", cid) or {}).get("State") or {}

    def _wait_running(self, docker, cid, what, timeout=15.0):
        deadline = time.monotonic() + timeout
        while True:
            state = self._state(docker, cid)
            if state.get("Running"):
                return
            if time.monotonic() > deadline or state.get("Status") in ("exited", "dead"):
                logs = docker("logs", "--tail", "20", cid, check=False)
                raise DeployError(f"{what} failed to be in running state "
                                  f"({state.get('Status')}, exit {state.get('ExitCode')}):"
                                  f"\n{tail(logs.stdout + logs.stderr, 20)}")
            time.sleep(0.5)

    def _wait_healthy(self, docker, cid, what, timeout):
        deadline = time.monotonic() + float(timeout)
        while True:
            health = (self._state(docker, cid).get("Health") or {})
            if health.get("Status") == "healthy":
                return
            if time.monotonic() > deadline:
                last = (health.get("Log") or [{}])[-1]
                raise DeployError(f"{what} did not become healthy in {timeout}s (status "
                                  f"{health.get('Status')}; last check: "
                                  f"{tail(str(last.get('Output', '')), 5)})")
            time.sleep(1)

    def delete_with(self, docker, record):
        inputs = record["inputs"]
        grace = inputs.get("destroyGraceSeconds")
        if grace:
            docker("stop", "-t", str(grace), record["id"], check=False)
        rm = ["rm", "-f"] + (["-v"] if inputs.get("removeVolumes", True) else [])
        proc = docker(*rm, record["id"], check=False)
        if proc.returncode != 0 and "No such container" not in proc.stderr:
            raise DeployError(f"docker rm {record['id'][:12]} failed: {tail(proc.stderr)}")

    def fake_outputs(self, inputs):
        return {"name": inputs.get("name", ""), "networkDatas": []}


class Network(DockerResource):
    TYPE = "docker:index/network:Network"
    KEYS = frozenset({"name", "driver", "internal", "attachable", "ipamConfigs",
                      "ipamConfigs[*].subnet", "ipamConfigs[*].gateway",
                      "ipamConfigs[*].ipRange"})

    def replaces(self, old, new, reg):
        return True

    def create_with(self, docker, reg, inputs, ctx):
        args = ["network", "create", "--driver", inputs.get("driver", "bridge")]
        args += ["--internal"] if inputs.get("internal") else []
        args += ["--attachable"] if inputs.get("attachable") else []
        for ipam in inputs.get("ipamConfigs") or []:
            for flag, key in (("--subnet", "subnet"), ("--gateway", "gateway"),
                              ("--ip-range", "ipRange")):
                args += [flag, ipam[key]] if ipam.get(key) else []
        return docker(*args, inputs["name"]).stdout.strip(), {}

    def delete_with(self, docker, record):
        docker("network", "rm", record["id"], check=False)


class Volume(DockerResource):
    TYPE = "docker:index/volume:Volume"
    KEYS = frozenset({"name", "driver"})

    def replaces(self, old, new, reg):
        return True

    def create_with(self, docker, reg, inputs, ctx):
        name = docker("volume", "create", "--driver", inputs.get("driver", "local"),
                      *([inputs["name"]] if inputs.get("name") else [])).stdout.strip()
        return name, {"name": name, "mountpoint": ""}

    def delete_with(self, docker, record):
        docker("volume", "rm", record["id"], check=False)


class RandomText(Handler):
    """RandomPassword / RandomString, as terraform-provider-random generates them."""

    KEYS = frozenset({"length", "special", "upper", "lower", "numeric", "number", "minUpper",
                      "minLower", "minNumeric", "minSpecial", "overrideSpecial", "keepers",
                      "keepers.*"})

    def __init__(self, type_: str):
        self.TYPE = type_

    def check(self, inputs):
        return [p for p in key_paths(inputs) if p not in self.KEYS
                and not p.startswith("keepers.")]

    def replaces(self, old, new, reg):
        return True

    @staticmethod
    def generate(inputs: dict) -> str:
        rng = secrets.SystemRandom()
        special = inputs.get("overrideSpecial") or "!@#$%&*()-_=+[]{}<>:?"
        sets = [("upper", "minUpper", string.ascii_uppercase),
                ("lower", "minLower", string.ascii_lowercase),
                ("numeric", "minNumeric", string.digits),
                ("special", "minSpecial", special)]
        numeric = inputs.get("numeric", inputs.get("number", True))
        chars, pool = [], ""
        for key, min_key, charset in sets:
            enabled = numeric if key == "numeric" else inputs.get(key, True)
            if enabled:
                pool += charset
                chars += [rng.choice(charset) for _ in range(int(inputs.get(min_key, 0)))]
        length = int(inputs["length"])
        if not pool or len(chars) > length:
            raise DeployError(f"random: impossible character rules {inputs}")
        chars += [rng.choice(pool) for _ in range(length - len(chars))]
        rng.shuffle(chars)
        return "".join(chars)

    def create(self, reg, inputs, ctx):
        result = self.generate(inputs)
        return "none", {"result": result}

    def fake_outputs(self, inputs):
        return {"result": "x" * int(inputs.get("length", 16))}


HANDLERS: dict[str, Handler] = {h.TYPE: h for h in [
    RemoteCommand(), CopyToRemote(), DockerProvider(), Image(), RemoteImage(), Container(),
    Network(), Volume(), RandomText("random:index/randomPassword:RandomPassword"),
    RandomText("random:index/randomString:RandomString")]}


# --------------------------------------------------------------------------- engine

class State:
    """The JSON state file (mode 600: it holds secret inputs in clear), one record per URN."""

    def __init__(self, path: Optional[Path]):
        self.path = path
        self.lock = threading.RLock()
        self.records: dict[str, dict] = {}
        if path is not None and path.exists():
            self.records = json.loads(path.read_text())

    def get(self, urn: str) -> Optional[dict]:
        with self.lock:
            return self.records.get(urn)

    def put(self, record: dict) -> None:
        with self.lock:
            self.records[record["urn"]] = record
            self._save()

    def remove(self, urn: str) -> None:
        with self.lock:
            self.records.pop(urn, None)
            self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self.records, f, indent=1, sort_keys=True)
        os.replace(partial, self.path)


@dataclass
class Registered:
    """What `inspect` saw of one custom resource."""

    type: str
    name: str
    urn: str
    keys: list[str]
    problems: list[str]


@dataclass
class Action:
    kind: str  # create | update | replace | same | delete
    type: str
    name: str
    seconds: float


class Engine:
    """Runs one `pulumi up` of a program: see the module docstring."""

    def __init__(self, state_path: Optional[Path], project_dir: Path, dry: bool = False):
        self.state = State(state_path)
        self.ctx = Context(providers={}, project_dir=Path(project_dir).resolve())
        self.dry = dry
        self.lock = threading.Lock()
        self.seen: set[str] = set()
        self.pending_deletes: list[dict] = []
        self.failed: Optional[str] = None
        self.actions: list[Action] = []
        self.registered: list[Registered] = []
        self.idle = threading.Condition()
        self.inflight = 0
        self._seq = max([r.get("seq", 0) for r in self.state.records.values()], default=0)

    # -- one resource ----------------------------------------------------------------------
    def register(self, reg: Registration) -> tuple[str, dict]:
        if not reg.custom:  # component resources only group their children
            return "", {}
        handler = HANDLERS.get(reg.type)
        inputs = reg.inputs
        if reg.type == DockerProvider.TYPE:
            self.ctx.providers[reg.urn] = DockerProvider.normalize(inputs)
        option_problems = [f"option {o}" for o in reg.refused_options] + [
            f"option ignoreChanges={p}" for p in reg.ignore_changes if not _top_level(p)]
        if self.dry:
            problems = (handler.check(inputs) if handler else ["(resource type)"]) + option_problems
            with self.lock:
                self.registered.append(Registered(reg.type, reg.name, reg.urn,
                                                  key_paths(inputs), problems))
            fake = handler.fake_outputs(inputs) if handler else {}
            return f"inspect-{reg.name}", self._response(reg, fake)
        try:
            if handler is None:
                raise Refused(f"resource type {reg.type} ({reg.name!r}) is not implemented "
                              "by the test-bed engine")
            problems = handler.check(inputs) + option_problems
            if problems:
                raise Refused(f"{reg.type} {reg.name!r}: not implemented by the test-bed "
                              f"engine: {', '.join(problems)}")
            with self.idle:
                if self.failed:
                    raise DeployError(f"{reg.name!r} not started: {self.failed} failed before")
                self.inflight += 1
            try:
                id_, outputs = self._apply(handler, reg, inputs)
            finally:
                with self.idle:
                    self.inflight -= 1
                    self.idle.notify_all()
        except Exception:
            self.failed = self.failed or f"{reg.type} {reg.name!r}"
            raise
        return id_, self._response(reg, outputs)

    def wait_idle(self, timeout: float = 3600) -> None:
        """After a failure: let the operations already running finish, as Pulumi does."""
        with self.idle:
            self.failed = self.failed or "the program"
            self.idle.wait_for(lambda: self.inflight == 0, timeout)

    def _apply(self, handler: Handler, reg: Registration, inputs: dict) -> tuple[str, dict]:
        started = time.monotonic()
        with self.lock:
            self.seen.add(reg.urn)
        old = self.state.get(reg.urn)
        if old is not None and old["type"] != reg.type:
            self.pending_deletes.append(old)
            old = None
        if old is not None:  # ignoreChanges: the old value stands in for the new one
            for key in reg.ignore_changes:
                inputs.pop(key, None)
                if key in old["inputs"]:
                    inputs[key] = old["inputs"][key]
        diff = handler.diff_inputs(inputs, self.ctx)
        if old is None:
            kind, (id_, outputs) = "create", handler.create(reg, inputs, self.ctx)
        elif old["diff_inputs"] == json.loads(json.dumps(diff)):
            kind, id_, outputs = "same", old["id"], old["outputs"]
        elif handler.replaces(old["inputs"], inputs, reg):
            kind = "replace"
            if old.get("protect") or reg.protect:
                raise DeployError(f"{reg.type} {reg.name!r} is protected: its changed inputs "
                                  "need a replacement, which Pulumi refuses for it")
            if reg.delete_before_replace:
                self._delete(handler, old)
                self.state.remove(reg.urn)
            else:  # create first, the old one goes at the end (Pulumi's default order)
                with self.lock:
                    self.pending_deletes.append(old)
            id_, outputs = handler.create(reg, inputs, self.ctx)
        else:
            kind, (id_, outputs) = "update", handler.update(reg, old, inputs, self.ctx)
        with self.lock:
            self._seq += 1
            seq = self._seq if kind != "same" else old.get("seq", self._seq)
            self.actions.append(Action(kind, reg.type, reg.name, time.monotonic() - started))
        provider_urn = reg.provider_ref.rsplit("::", 1)[0] if reg.provider_ref else ""
        self.state.put({"urn": reg.urn, "type": reg.type, "name": reg.name, "id": id_,
                        "inputs": inputs, "diff_inputs": diff, "outputs": outputs,
                        "provider": self.ctx.providers.get(provider_urn), "seq": seq,
                        "protect": reg.protect, "retainOnDelete": reg.retain_on_delete})
        if kind != "same":
            log.info("%s %s %s (%.1fs)", kind, reg.type, reg.name, time.monotonic() - started)
        return id_, outputs

    def _delete(self, handler: Handler, record: dict) -> None:
        if not record.get("retainOnDelete"):
            handler.delete(record, self.ctx)

    @staticmethod
    def _response(reg: Registration, outputs: dict) -> dict:
        """Inputs echoed with the computed outputs, secrets where the resource says so."""
        state = {**reg.raw_inputs, **{k: v for k, v in outputs.items() if v is not None}}
        for key in reg.additional_secret_outputs:
            if key in state:
                state[key] = secret(state[key])
        return state

    # -- after the program -----------------------------------------------------------------
    def finish(self) -> None:
        """Delete what was replaced (create-before-delete) and what left the program."""
        gone = [r for urn, r in self.state.records.items() if urn not in self.seen]
        for record in sorted(self.pending_deletes + gone, key=lambda r: r.get("seq", 0),
                             reverse=True):
            started = time.monotonic()
            if record["urn"] not in self.seen and record.get("protect"):
                raise DeployError(f"{record['type']} {record['name']!r} left the program but "
                                  "is protected: Pulumi refuses to delete it")
            self._delete(HANDLERS[record["type"]], record)
            if record["urn"] not in self.seen:
                self.state.remove(record["urn"])
            self.actions.append(Action("delete", record["type"], record["name"],
                                       time.monotonic() - started))
            log.info("delete %s %s", record["type"], record["name"])
        self.pending_deletes.clear()


# Resource options whose semantics this stand-in does not implement (protect, ignoreChanges
# on top-level inputs, retainOnDelete, deleteBeforeReplace, replaceOnChanges,
# additionalSecretOutputs, depends_on, parent and provider are implemented).
REFUSED_OPTIONS = frozenset({"importId", "customTimeouts", "aliases", "aliasSpecs",
                             "aliasURNs", "deletedWith", "replace_with", "replacement_trigger",
                             "transforms", "envVarMappings", "remote", "providers"})


class EngineMonitor(mocks.MockMonitor):
    """The mock monitor, with each RegisterResource handed to the Engine in full (the plain
    Mocks interface does not see URNs, dependencies or resource options)."""

    def __init__(self, engine: Engine):
        super().__init__(_RefusingMocks())
        self.engine = engine

    def RegisterResource(self, request):
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            return resource_pb2.RegisterResourceResponse(urn=urn)
        _ensure_event_loop()
        set_fields = {f.name for f, _ in request.ListFields()}
        refused = sorted(set_fields & REFUSED_OPTIONS - {"aliases"})
        for alias in request.aliases:  # the SDKs add type-only aliases (old type tokens):
            spec = alias.spec                # our state never holds those old types
            same_place = spec.name in ("", request.name) and not (
                spec.stack or spec.project or spec.noParent) and spec.parentUrn in (
                "", request.parent)
            if alias.urn or not same_place:
                refused.append("aliases")
                break
        if request.hooks.ListFields():
            refused.append("hooks")
        reg = Registration(
            urn=urn, type=request.type, name=request.name, custom=bool(request.custom),
            raw_inputs=rpc.deserialize_properties(request.object),
            provider_ref=request.provider, delete_before_replace=request.deleteBeforeReplace,
            replace_on_changes=list(request.replaceOnChanges),
            additional_secret_outputs=list(request.additionalSecretOutputs),
            dependencies=list(request.dependencies), protect=bool(request.protect),
            ignore_changes=list(request.ignoreChanges),
            retain_on_delete=bool(request.retainOnDelete), refused_options=refused)
        id_, state = self.engine.register(reg)
        obj = _sync_await(rpc.serialize_properties(state, {}))
        self.resources[urn] = mocks.MockMonitor.ResourceRegistration(urn, id_, state)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=id_, object=obj)

    def ReadResource(self, request):
        raise Refused(f"reading existing resources ({request.type} {request.name!r}, e.g. "
                      "StackReference or .get()) is not implemented by the test-bed engine")


class _RefusingMocks(mocks.Mocks):
    def new_resource(self, args):
        raise Refused(f"unexpected mock registration of {args.typ}")

    def call(self, args):
        raise Refused(f"invoke {args.token} is not implemented by the test-bed engine")


PARALLEL = 16  # resource operations at once (most of them wait on SSH)
_RUN_LOCK = threading.Lock()  # the SDK's runtime settings are process-wide


@contextlib.contextmanager
def _program_environment(project_dir: Path):
    """cwd and import path as `pulumi up` gives the program; a fresh import of its modules."""
    import sys
    project_dir = project_dir.resolve()

    # the program's own top-level modules and packages (not the tests, this module among them)
    local = {p.stem for p in project_dir.iterdir()
             if p.suffix == ".py" or (p / "__init__.py").exists()} - {"tests", "__main__"}

    def take() -> dict:
        return {name: sys.modules.pop(name) for name in list(sys.modules)
                if name.split(".")[0] in local}
    cwd = os.getcwd()
    saved = take()  # the run imports them afresh, as a new `pulumi up` process would
    sys.path.insert(0, str(project_dir))
    os.chdir(project_dir)
    try:
        yield
    finally:
        os.chdir(cwd)
        sys.path.remove(str(project_dir))
        take()
        sys.modules.update(saved)  # whoever imported them before keeps the same classes


def run_program(engine: Engine, config: dict[str, str], project_dir: Path, stack: str,
                secret_keys: Iterable[str] = DEFAULT_SECRET_KEYS) -> dict:
    """Run `project_dir/__main__.py` once against `engine`; return its exports (plain)."""
    project_dir = Path(project_dir)
    with _RUN_LOCK, _program_environment(project_dir):
        settings.set_root_resource(None)  # a previous run's root Stack would keep its exports
        mocks.set_mocks(_RefusingMocks(), project=PROJECT, stack=stack, preview=False,
                        monitor=EngineMonitor(engine))
        settings.SETTINGS.rpc_manager.clear()
        settings.SETTINGS.outputs.clear()  # not reset by set_mocks: an old run's tasks
        pulumi_config.set_all_config({k: str(v) for k, v in config.items()},
                                     [k for k in secret_keys if k in config])
        main = str(project_dir.resolve() / "__main__.py")
        # Our own pool for the SDK's blocking RegisterResource calls, shut down (waited for)
        # at the end, so that no thread of this run is still busy when the next one starts.
        executor = ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="engine")
        loop = asyncio.get_event_loop()
        loop.set_default_executor(executor)
        loop.set_exception_handler(_quiet_exception_handler)
        try:
            _sync_await(run_pulumi_func(lambda: runpy.run_path(main, run_name="__main__")))
            root = settings.get_root_resource()
            exports = _sync_await(pulumi.Output.from_input(dict(root.outputs)).future())
        except BaseException:
            engine.wait_idle()
            _cancel_leftover_tasks()  # or they would register into the next run
            raise
        finally:
            executor.shutdown(wait=True)
            loop.set_default_executor(ThreadPoolExecutor())  # for whoever uses the loop next
            settings.set_root_resource(None)
    return plain(exports)


def _quiet_exception_handler(loop, context) -> None:
    """After a failed run, futures nobody awaited report their exception when collected.
    asyncio's default handler formats a traceback then, and Python 3.11's traceback
    formatting calls ast.parse, which corrupts a parse already running on this thread if
    the collection happened inside it ("AST constructor recursion depth mismatch" in
    pytest). The failure itself was raised to the caller: note these at debug level."""
    exc = context.get("exception")
    log.debug("asyncio: %s%s", context.get("message"), f" ({exc!r})" if exc else "")


def _cancel_leftover_tasks() -> None:
    loop = asyncio.get_event_loop()
    with settings.SETTINGS.lock:
        leftovers = set(settings.SETTINGS.outputs)
        settings.SETTINGS.outputs.clear()
    leftovers |= {f for f in settings.SETTINGS.rpc_manager.rpcs if isinstance(f, asyncio.Future)}
    settings.SETTINGS.rpc_manager.clear()
    leftovers |= asyncio.all_tasks(loop)
    for task in leftovers:
        task.cancel()
    if leftovers:  # gather also retrieves every exception
        loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
    gc.collect()  # finalize the run's other futures now, not inside someone's ast.parse


def state_file(state: Optional[Path], stack: str) -> Path:
    return Path(state or DEFAULT_STATE_DIR) / f"{PROJECT}-{stack}.engine-state.json"


def deploy(config: dict[str, str], project_dir: Path, stack: str = "testbed",
           state: Optional[Path] = None, *,
           secret_keys: Iterable[str] = DEFAULT_SECRET_KEYS) -> dict:
    """`pulumi up` of the program in `project_dir` with `config` ("djscale:<key>" -> string,
    secrets in clear); returns the stack exports with secrets unwrapped. State lives in
    `state`/djscale-<stack>.engine-state.json (mode 600), so a second call is a second up."""
    return run(config, project_dir, stack, state, secret_keys=secret_keys)[0]


def run(config: dict[str, str], project_dir: Path, stack: str = "testbed",
        state: Optional[Path] = None, *,
        secret_keys: Iterable[str] = DEFAULT_SECRET_KEYS) -> tuple[dict, list[Action]]:
    """`deploy`, also returning what was done to each resource (create/update/.../same)."""
    started = time.monotonic()
    engine = Engine(state_file(state, stack), Path(project_dir))
    exports = run_program(engine, config, Path(project_dir), stack, secret_keys)
    engine.finish()
    counts: dict[str, int] = {}
    for action in engine.actions:
        counts[action.kind] = counts.get(action.kind, 0) + 1
    log.info("deploy of %s/%s: %s in %.1fs", PROJECT, stack, counts, time.monotonic() - started)
    return exports, engine.actions


def inspect(config: dict[str, str], project_dir: Path, stack: str = "testbed", *,
            secret_keys: Iterable[str] = DEFAULT_SECRET_KEYS) -> list[Registered]:
    """Run the program without executing anything: every custom resource it registers, with
    its input key paths and what this stand-in would refuse (`problems`)."""
    engine = Engine(None, Path(project_dir), dry=True)
    run_program(engine, config, Path(project_dir), stack, secret_keys)
    return engine.registered
