"""The test-bed engine (tests/testbed/engine/) against a real target.

A throwaway Pulumi program (not djscale's) deploys onto one host container on the outer
Docker engine: sshd with key login for a sudo user `deploy`, and its own dockerd reachable
over ssh://. The tests prove what the bed relies on: commands run with stdin in dependency
order, a second run does nothing, a trigger change replaces (create, then the old delete),
a changed build replaces the container, RandomPassword is stable, and everything the engine
does not implement (types, inputs, a wrong host key) is refused with a clear error.
"""
from __future__ import annotations

import json
import shutil
import socket
import stat
import string
import subprocess
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.dockerd import STATE_ROOT
from tests.support.rootfs import ensure_base_image
from tests.testbed import engine


NETWORK = "djscale-engine-test"
SUBNET = "10.214.20.0/24"  # the bed uses another /24 of the outer engine's pool
HOST_IP = "10.214.20.10"
HOST_NAME = "djscale-engine-test-host"
DATA_DIR = STATE_ROOT / "engine-test"  # the host's /var/lib/docker (overlay2 needs a real fs)
HOST_PACKAGES = ["openssh-server", "sudo", "docker.io", "iproute2", "iptables", "procps",
                 "python3"]
APP_PACKAGES = ["python3"]
RUN_OPTIONS = [  # ../shared/ENVIRONMENT.md: what works here instead of --privileged
    "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--security-opt", "seccomp=unconfined",
    "--security-opt", "apparmor=unconfined", "--security-opt", "systempaths=unconfined",
    "--device-cgroup-rule", "a *:* rwm", "--cgroupns=host",
    "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/tmp"]
HOST_BOOT = r"""
set -e
id deploy >/dev/null 2>&1 || useradd -m -s /bin/bash -G docker deploy
echo 'deploy ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/deploy
install -d -m 700 -o deploy -g deploy /home/deploy/.ssh
printf '%s\n' "$AUTHORIZED_KEY" > /home/deploy/.ssh/authorized_keys
chown deploy:deploy /home/deploy/.ssh/authorized_keys
ssh-keygen -A >/dev/null
mkdir -p /run/sshd
dockerd --storage-driver overlay2 >/var/log/dockerd.log 2>&1 &
exec /usr/sbin/sshd -D -e
"""

PROGRAM = '''
import pulumi
import pulumi_docker as docker
import pulumi_random as random
from pulumi_command import remote

cfg = pulumi.Config()
host = cfg.require("host")
d = "/home/deploy/engine-test"
conn = remote.ConnectionArgs(host=host, user="deploy", private_key=cfg.require_secret(
    "sshPrivateKey"), host_key=cfg.require("hostKey"))

# `first` writes what `second` reads: `second` must start only after `first` finished.
first = remote.Command(
    "first", connection=conn,
    create=f"sleep 2; mkdir -p {d}; cat > {d}/stdin.txt; echo first >> {d}/log",
    delete=f"echo delete-first >> {d}/log",
    stdin=cfg.require_secret("payload"), triggers=[cfg.get("trigger") or "t1"],
    logging=remote.Logging.NONE)
second = remote.Command(
    "second", connection=conn,
    create=f"echo second >> {d}/log; wc -c < {d}/stdin.txt # {cfg.get('note') or ''}",
    opts=pulumi.ResourceOptions(depends_on=[first]))
if cfg.get_bool("extra"):
    remote.Command("extra", connection=conn, create=f"echo extra >> {d}/log",
                   delete=f"echo delete-extra >> {d}/log", opts=pulumi.ResourceOptions(
                       depends_on=[second]))
copied = remote.CopyToRemote(
    "copy", connection=conn, source=pulumi.StringAsset(cfg.get("copyText") or "hello\\n"),
    remote_path=f"{d}/copied.txt", opts=pulumi.ResourceOptions(depends_on=[first]))
password = random.RandomPassword("pw", length=20, special=False, min_numeric=3)

provider = docker.Provider(
    "docker", host=f"ssh://deploy@{host}:22",
    ssh_opts=["-i", cfg.require("keyPath"), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
              "-o", "StrictHostKeyChecking=yes", "-o",
              "UserKnownHostsFile=" + cfg.require("knownHosts")],
    disable_docker_daemon_check=True, opts=pulumi.ResourceOptions(depends_on=[second]))
on_host = pulumi.ResourceOptions(provider=provider)
image = docker.Image(
    "image", image_name="engine-test-app:1", skip_push=True,
    build=docker.DockerBuildArgs(
        context=cfg.require("context"), dockerfile=cfg.require("context") + "/Dockerfile",
        args={"BASE": cfg.require("base"), "GREETING": cfg.get("greeting") or "hello"},
        builder_version=docker.BuilderVersion.BUILDER_V1),
    opts=on_host)
web = docker.Container(
    "web", name="engine-test-web", image=image.repo_digest, restart="unless-stopped",
    ports=[docker.ContainerPortArgs(internal=8000, external=8080, ip=host)],
    envs=["MODE=test"],
    healthcheck=docker.ContainerHealthcheckArgs(
        tests=["CMD", "python3", "-c",
               "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/')"],
        interval="1s", timeout="3s", retries=3, start_period="1s"),
    wait=True, wait_timeout=60, stop_timeout=5, destroy_grace_seconds=5,
    opts=pulumi.ResourceOptions(provider=provider, delete_before_replace=True))

pulumi.export("password", password.result)
pulumi.export("secondStdout", second.stdout)
pulumi.export("imageId", image.repo_digest)
pulumi.export("containerId", web.id)
'''

DOCKERFILE = """\
ARG BASE
FROM ${BASE}
ARG GREETING
RUN mkdir -p /srv/www && echo "$GREETING" > /srv/www/index.html
WORKDIR /srv/www
CMD ["python3", "-m", "http.server", "8000"]
"""


def sh(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=check, capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def target(docker_engine, tmp_path_factory):
    """One host container: sshd for `deploy` (key login) and its own Docker engine."""
    keys = tmp_path_factory.mktemp("keys")
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "id"))
    host_image = ensure_base_image(docker_engine, "djscale-test/engine-host", HOST_PACKAGES)
    app_image = ensure_base_image(docker_engine, "djscale-test/engine-app", APP_PACKAGES)
    _remove_leftovers(docker_engine)
    docker_engine.docker("network", "create", "--subnet", SUBNET, NETWORK)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    try:
        docker_engine.docker(
            "run", "-d", "--name", HOST_NAME, "--hostname", "enginetest", "--network", NETWORK,
            "--ip", HOST_IP, *RUN_OPTIONS, "-v", f"{DATA_DIR}:/var/lib/docker",
            "-e", "AUTHORIZED_KEY=" + (keys / "id.pub").read_text().strip(),
            host_image, "/bin/sh", "-c", HOST_BOOT)
        _wait_for(lambda: _port_open(HOST_IP, 22), "sshd")
        _wait_for(lambda: docker_engine.docker("exec", HOST_NAME, "docker", "info",
                                               check=False).returncode == 0, "nested dockerd")
        host_key = docker_engine.docker(
            "exec", HOST_NAME, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.split()
        save = subprocess.Popen(["docker", "save", app_image], env=docker_engine.env(),
                                stdout=subprocess.PIPE)
        subprocess.run(["docker", "exec", "-i", HOST_NAME, "docker", "load"], stdin=save.stdout,
                       env=docker_engine.env(), check=True, capture_output=True)
        assert save.wait() == 0
        known = keys / "known_hosts"
        known.write_text(f"{HOST_IP} {host_key[0]} {host_key[1]}\n")
        yield {"ip": HOST_IP, "host_key": f"{host_key[0]} {host_key[1]}", "keys": keys,
               "known_hosts": known, "app_image": app_image, "engine": docker_engine}
    finally:
        _remove_leftovers(docker_engine)


def _remove_leftovers(docker_engine) -> None:
    docker_engine.docker("rm", "-f", "-v", HOST_NAME, check=False)
    docker_engine.docker("network", "rm", NETWORK, check=False)
    if DATA_DIR.exists():  # the nested engine's layers: stale ones would confuse a new engine
        shutil.rmtree(DATA_DIR, ignore_errors=True)


def _port_open(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=1):
            return True
    except OSError:
        return False


def _wait_for(check, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout}s")
        time.sleep(0.5)


def on_host(target, *command: str) -> str:
    return target["engine"].docker("exec", HOST_NAME, *command).stdout


def write_program(directory: Path, source: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "__main__.py").write_text(textwrap.dedent(source))
    return directory


@pytest.fixture
def project(tmp_path, target):
    project = write_program(tmp_path / "program", PROGRAM)
    context = project / "app"
    context.mkdir()
    (context / "Dockerfile").write_text(DOCKERFILE)
    config = {
        "djscale:host": target["ip"], "djscale:hostKey": target["host_key"],
        "djscale:sshPrivateKey": (target["keys"] / "id").read_text(),
        "djscale:keyPath": str(target["keys"] / "id"),
        "djscale:knownHosts": str(target["known_hosts"]),
        "djscale:payload": "twelve bytes", "djscale:context": str(context),
        "djscale:base": target["app_image"],
    }
    on_host(target, "rm", "-rf", "/home/deploy/engine-test")
    target["engine"].docker("exec", HOST_NAME, "docker", "rm", "-f", "engine-test-web",
                            check=False)
    return project, config, tmp_path / "state"


def kinds(actions) -> dict[str, str]:
    return {a.name: a.kind for a in actions}


@pytest.mark.docker
@pytest.mark.testbed
def test_deploy_twice_then_change(project, target):
    program, config, state = project
    started = time.monotonic()
    exports, actions = engine.run(config, program, stack="enginetest", state=state)
    first_seconds = time.monotonic() - started
    assert set(kinds(actions).values()) == {"create"}, kinds(actions)
    # stdin arrived, and `second` ran only after `first` had finished (depends_on only)
    assert exports["secondStdout"] == "12"
    assert on_host(target, "cat", "/home/deploy/engine-test/log").split() == ["first", "second"]
    assert on_host(target, "cat", "/home/deploy/engine-test/copied.txt") == "hello\n"
    password = exports["password"]
    assert len(password) == 20 and password.isalnum() and sum(c.isdigit() for c in password) >= 3
    # the container answers on the given address, built from our context, healthy
    body = urllib.request.urlopen(f"http://{target['ip']}:8080/", timeout=10).read()
    assert body == b"hello\n"
    health = on_host(target, "docker", "inspect", "-f", "{{.State.Health.Status}}",
                     "engine-test-web").strip()
    assert health == "healthy"
    state_file = engine.state_file(state, "enginetest")
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600

    # second run, nothing changed: nothing runs
    again, actions = engine.run(config, program, stack="enginetest", state=state)
    assert set(kinds(actions).values()) == {"same"}, kinds(actions)
    assert again == exports
    assert on_host(target, "cat", "/home/deploy/engine-test/log").split() == ["first", "second"]

    # a trigger change replaces `first` (new create, old delete at the end); another input
    # change re-runs `second`'s create in place; a build arg change rebuilds the image,
    # which replaces the container (delete before replace)
    changed = dict(config, **{"djscale:trigger": "t2", "djscale:greeting": "bonjour",
                              "djscale:copyText": "changed\n", "djscale:note": "n2",
                              "djscale:extra": "true"})
    third, actions = engine.run(changed, program, stack="enginetest", state=state)
    assert [(a.name, a.kind) for a in actions if a.name == "first"] == [
        ("first", "replace"), ("first", "delete")]
    assert kinds(actions) == {"first": "delete", "second": "update", "copy": "update",
                              "extra": "create", "pw": "same", "docker": "same",
                              "image": "update", "web": "replace"}
    log_lines = on_host(target, "cat", "/home/deploy/engine-test/log").split()
    assert log_lines == ["first", "second", "first", "second", "extra", "delete-first"]
    assert on_host(target, "cat", "/home/deploy/engine-test/copied.txt") == "changed\n"
    assert third["password"] == password
    assert third["imageId"] != exports["imageId"] and third["containerId"] != exports["containerId"]
    body = urllib.request.urlopen(f"http://{target['ip']}:8080/", timeout=10).read()
    assert body == b"bonjour\n"
    assert on_host(target, "docker", "ps", "-aq").split() == [third["containerId"][:12]]

    # a resource that left the program is deleted (its `delete` runs), nothing else moves
    dropped = dict(changed, **{"djscale:extra": "false"})
    _, actions = engine.run(dropped, program, stack="enginetest", state=state)
    assert {n: k for n, k in kinds(actions).items() if k != "same"} == {"extra": "delete"}
    assert on_host(target, "cat", "/home/deploy/engine-test/log").split()[-1] == "delete-extra"
    print(f"first deploy {first_seconds:.1f}s")


@pytest.mark.docker
@pytest.mark.testbed
def test_wrong_host_key_is_refused(tmp_path, target):
    other = tmp_path / "other"
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other))
    program = write_program(tmp_path / "p", '''
        import pulumi
        from pulumi_command import remote
        cfg = pulumi.Config()
        remote.Command("probe", create="touch /tmp/should-not-exist",
                       connection=remote.ConnectionArgs(
                           host=cfg.require("host"), user="deploy",
                           private_key=cfg.require_secret("sshPrivateKey"),
                           host_key=cfg.require("hostKey")))
    ''')
    config = {"djscale:host": target["ip"],
              "djscale:sshPrivateKey": (target["keys"] / "id").read_text(),
              "djscale:hostKey": " ".join(Path(f"{other}.pub").read_text().split()[:2])}
    with pytest.raises(Exception, match="host key verification failed"):
        engine.deploy(config, program, stack="hostkey", state=tmp_path / "state")
    assert "should-not-exist" not in on_host(target, "ls", "/tmp")


@pytest.mark.docker
@pytest.mark.testbed
def test_failed_command_reports_host_and_honours_logging(tmp_path, target):
    program = write_program(tmp_path / "p", '''
        import pulumi
        from pulumi_command import remote
        cfg = pulumi.Config()
        conn = remote.ConnectionArgs(host=cfg.require("host"), user="deploy",
                                     private_key=cfg.require_secret("sshPrivateKey"))
        remote.Command("noisy", connection=conn, create="echo visible-error >&2; exit 3")
        remote.Command("quiet", connection=conn, create="echo hidden-secret >&2; exit 4",
                       logging=remote.Logging.NONE)
    ''')
    config = {"djscale:host": target["ip"],
              "djscale:sshPrivateKey": (target["keys"] / "id").read_text()}
    with pytest.raises(Exception) as failure:
        engine.deploy(config, program, stack="failing", state=tmp_path / "state")
    text = str(failure.value)
    assert target["ip"] in text
    if "noisy" in text:
        assert "exited 3" in text and "visible-error" in text
    else:
        assert "exited 4" in text and "hidden-secret" not in text


REFUSALS = {
    "unknown network input": ('''
        import pulumi_docker as docker
        docker.Network("net", name="x", ipv6=True)
    ''', r"docker:index/network:Network 'net'.*ipv6"),
    "unknown resource type": ('''
        from pulumi_command import local
        local.Command("here", create="true")
    ''', r"command:local:Command \('here'\) is not implemented"),
    "unknown connection input": ('''
        from pulumi_command import remote
        remote.Command("pw", create="true", connection=remote.ConnectionArgs(
            host="127.0.0.1", password="secret"))
    ''', r"'pw'.*connection\.password"),
    "unknown container input": ('''
        import pulumi_docker as docker
        p = docker.Provider("p", host="ssh://deploy@127.0.0.1:1", disable_docker_daemon_check=True)
        docker.Container("c", image="x", privileged=True,
                         opts=__import__("pulumi").ResourceOptions(provider=p))
    ''', r"docker:index/container:Container 'c'.*privileged"),
    "registry push": ('''
        import pulumi_docker as docker
        p = docker.Provider("p", host="ssh://deploy@127.0.0.1:1", disable_docker_daemon_check=True)
        docker.Image("i", image_name="r.example/x:1", build=docker.DockerBuildArgs(context="."),
                     opts=__import__("pulumi").ResourceOptions(provider=p))
    ''', r"skipPush=false"),
    "unimplemented resource option": ('''
        import pulumi, pulumi_random as random
        random.RandomPassword("slow", length=8, opts=pulumi.ResourceOptions(
            custom_timeouts=pulumi.CustomTimeouts(create="1m")))
    ''', r"'slow'.*option customTimeouts"),
    "stack reference": ('''
        import pulumi
        pulumi.StackReference("other", stack_name="org/p/s")
    ''', r"reading existing resources"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_unimplemented_is_refused(tmp_path, case):
    """Refusals need no target: nothing runs before the check."""
    source, message = REFUSALS[case]
    program = write_program(tmp_path / "p", source)
    with pytest.raises(Exception, match=message):
        engine.deploy({}, program, stack="refuse", state=tmp_path / "state")


# --- the real program: everything it registers must be implemented here -----------------

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ["stack_one_app.yaml", "stack_two_apps.yaml", "stack_five_apps.yaml",
             "stack_minio.yaml"]  # stack_dbref reads another stack: not a bed scenario


def scenario_config(name: str) -> dict[str, str]:
    import yaml
    config = yaml.safe_load((ROOT / "tests" / "fixtures" / name).read_text())["config"]
    wired = {}
    for key, value in config.items():
        if isinstance(value, dict) and "secure" in value:
            value = f"placeholder for {key}"  # inspect never uses a secret's value
        wired[key] = value if isinstance(value, str) else json.dumps(value)
    return wired


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_real_program_uses_only_what_the_engine_implements(scenario, tmp_path, monkeypatch):
    monkeypatch.setenv("DJSCALE_HOME", str(tmp_path))  # the program writes its ssh key there
    registered = engine.inspect(scenario_config(scenario), ROOT)
    types = {r.type for r in registered}
    assert types == {"command:remote:Command", "command:remote:CopyToRemote",
                     "random:index/randomPassword:RandomPassword"}, types
    problems = {f"{r.type} {r.name}": r.problems for r in registered if r.problems}
    assert problems == {}


def test_inspect_reports_what_would_be_refused(tmp_path):
    program = write_program(tmp_path / "p", '''
        import pulumi, pulumi_docker as docker
        p = docker.Provider("p", host="ssh://deploy@127.0.0.1:1")
        docker.Container("c", image="x", privileged=True, opts=pulumi.ResourceOptions(provider=p))
        docker.Service("s", task_spec={"container_spec": {"image": "x"}},
                       opts=pulumi.ResourceOptions(provider=p))
    ''')
    registered = {r.name: r for r in engine.inspect({}, program)}
    assert registered["c"].problems == ["privileged"]
    assert registered["s"].problems == ["(resource type)"]
    assert registered["p"].problems == []


RANDOM_PROGRAM = '''
    import asyncio, pulumi, pulumi_random as random
    cfg = pulumi.Config()
    kept = random.RandomPassword("kept", length=cfg.get_int("length") or 16,
                                 opts=pulumi.ResourceOptions(ignore_changes=["length"]))
    guarded = random.RandomPassword("guarded", length=cfg.get_int("guardedLength") or 16,
                                    special=False, opts=pulumi.ResourceOptions(protect=True))
    plain_text = random.RandomString("plain", length=8, special=False)
    pulumi.export("kept", kept.result)
    pulumi.export("guarded", guarded.result)
    # the provider's additional secret outputs apply (the plain mock runtime drops them)
    async def secretness():
        return [await kept.result.is_secret(), await plain_text.result.is_secret()]
    pulumi.export("secretness", pulumi.Output.from_input(asyncio.ensure_future(secretness())))
'''


def test_ignore_changes_and_protect(tmp_path):
    program = write_program(tmp_path / "p", RANDOM_PROGRAM)
    state = tmp_path / "state"
    first = engine.deploy({}, program, stack="options", state=state)
    assert len(first["kept"]) == 16 and len(first["guarded"]) == 16
    assert not any(c in string.punctuation for c in first["guarded"])
    assert first["secretness"] == [True, False]
    again, actions = engine.run({"djscale:length": "30"}, program, stack="options", state=state)
    assert again == first and {a.kind for a in actions} == {"same"}  # length is ignored
    with pytest.raises(Exception, match="'guarded' is protected"):
        engine.deploy({"djscale:guardedLength": "20"}, program, stack="options", state=state)


UNHEALTHY_PROGRAM = '''
    import pulumi, pulumi_docker as docker
    cfg = pulumi.Config()
    provider = docker.Provider(
        "docker", host=f"ssh://deploy@{cfg.require('host')}:22",
        ssh_opts=["-i", cfg.require("keyPath"), "-o", "IdentitiesOnly=yes",
                  "-o", "StrictHostKeyChecking=yes",
                  "-o", "UserKnownHostsFile=" + cfg.require("knownHosts")])
    docker.Container(
        "sleeper", name="engine-test-sleeper", image=cfg.require("base"),
        command=["sleep", "600"], stop_signal="SIGKILL",
        healthcheck=docker.ContainerHealthcheckArgs(tests=["CMD", cfg.require("check")],
                                                    interval="1s", retries=1),
        wait=True, wait_timeout=4,
        opts=pulumi.ResourceOptions(provider=provider, delete_before_replace=True))
'''


@pytest.mark.docker
@pytest.mark.testbed
def test_unhealthy_container_fails_then_is_replaced(project, target):
    _, config, state = project
    program = write_program(state.parent / "unhealthy", UNHEALTHY_PROGRAM)
    config = dict(config, **{"djscale:check": "false"})
    with pytest.raises(Exception, match=r"'sleeper'.*did not become healthy in 4"):
        engine.deploy(config, program, stack="unhealthy", state=state)
    # the failed container stays for a look; the next run replaces it instead of colliding
    _, actions = engine.run(dict(config, **{"djscale:check": "true"}), program,
                            stack="unhealthy", state=state)
    assert kinds(actions)["sleeper"] == "replace"
    names = on_host(target, "docker", "ps", "-a", "--format", "{{.Names}} {{.Status}}")
    assert [line.split()[0] for line in names.splitlines()] == ["engine-test-sleeper"]
    assert "healthy" in names
    target["engine"].docker("exec", HOST_NAME, "docker", "rm", "-f", "engine-test-sleeper")


@pytest.mark.docker
@pytest.mark.testbed
def test_command_through_a_proxy(tmp_path, target):
    """The host is its own bastion: the target 127.0.0.1 is only reachable through it."""
    program = write_program(tmp_path / "p", '''
        import pulumi
        from pulumi_command import remote
        cfg = pulumi.Config()
        key, host_key = cfg.require_secret("sshPrivateKey"), cfg.require("hostKey")
        hop = remote.Command("hop", create="echo $SSH_CONNECTION", connection=remote.ConnectionArgs(
            host="127.0.0.1", user="deploy", private_key=key, host_key=host_key,
            proxy=remote.ProxyConnectionArgs(host=cfg.require("host"), user="deploy",
                                             private_key=key, host_key=host_key)))
        pulumi.export("connection", hop.stdout)
    ''')
    config = {"djscale:host": target["ip"], "djscale:hostKey": target["host_key"],
              "djscale:sshPrivateKey": (target["keys"] / "id").read_text()}
    exports = engine.deploy(config, program, stack="proxy", state=tmp_path / "state")
    assert exports["connection"].split()[0] == "127.0.0.1"  # sshd saw a local client
