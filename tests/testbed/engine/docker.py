"""The docker provider's resources through the docker CLI at the provider's host; for
`ssh://` hosts with the provider's `sshOpts`, as the real provider runs ssh."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from components.dockerignore import context_hash

from .base import DeployError, Handler, Refused, file_tree_hash, key_paths, tail
from .command import SSH

log = logging.getLogger("djscale.testbed.engine")


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
        # what `docker build` sends, by Docker's own .dockerignore rules (the program's matcher)
        return {**inputs, "contextHash": context_hash(context),
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
        try:
            if inputs.get("start", True) and inputs.get("mustRun", True):
                self._wait_running(docker, cid, what)
            if inputs.get("wait"):
                self._wait_healthy(docker, cid, what, inputs.get("waitTimeout", 60))
        except DeployError as exc:  # the container stays for a look; the next run replaces it
            exc.partial_id = cid
            raise
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
