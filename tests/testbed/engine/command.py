"""`command:remote:Command` and `command:remote:CopyToRemote`: the system ssh/sftp with
each resource's own `connection` (pinned host key verified, proxy as a ProxyCommand)."""
from __future__ import annotations

import hashlib
import logging
import secrets
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from .base import (Context, DeployError, Handler, Refused, Registration, file_tree_hash,
                   key_paths, tail)

log = logging.getLogger("djscale.testbed.engine")

SSH = shutil.which("ssh") or "/usr/bin/ssh"
SFTP = shutil.which("sftp") or "/usr/bin/sftp"

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
