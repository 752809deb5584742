"""The test-bed engine (tests/testbed/engine/) against a real target, and what it copies
from Pulumi (its docstring lists each point with the source it follows).

Throwaway Pulumi programs (not djscale's) deploy onto one host container on the outer
Docker engine: sshd with key login for the sudo users `deploy` and `deploy2`. The tests
prove what the bed relies on: commands and copies in dependency order with stdin, a second
run that does nothing, trigger replacement (create, then the old delete at the end, with the
old recorded connection), no state from a failed create, old copies kept across a failed
update and deleted at the end of the next one, protected resources, destroy and refresh
from the state alone, stack references, and refusals. The real program, inspected on every
stack scenario, must use only what the engine does faithfully.
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
from pathlib import Path

import pytest

from components.config import read_stack_file
from tests.support.stack_files import cli_stack_config
from tests.support.rootfs import ensure_base_image
from tests.testbed import engine
from tests.testbed.engine import command as engine_command

NETWORK = "djscale-engine-test"
SUBNET = "10.214.20.0/24"  # the bed uses another /24 of the outer engine's pool
HOST_IP = "10.214.20.10"
HOST_NAME = "djscale-engine-test-host"
HOST_PACKAGES = ["openssh-server", "sudo", "procps"]
HOST_BOOT = r"""
set -e
for user in deploy deploy2; do
    id "$user" >/dev/null 2>&1 || useradd -m -s /bin/bash "$user"
    echo "$user ALL=(ALL) NOPASSWD:ALL" > "/etc/sudoers.d/$user"
    install -d -m 700 -o "$user" -g "$user" "/home/$user/.ssh"
    printf '%s\n' "$AUTHORIZED_KEY" > "/home/$user/.ssh/authorized_keys"
    chown "$user:$user" "/home/$user/.ssh/authorized_keys"
done
ssh-keygen -A >/dev/null
mkdir -p /run/sshd
exec /usr/sbin/sshd -D -e
"""
LOG = "/tmp/engine-test/log"  # every test program appends what it ran here


def sh(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=check, capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def target(docker_engine, tmp_path_factory):
    """One host container with sshd: users `deploy` and `deploy2`, one key for both."""
    keys = tmp_path_factory.mktemp("keys")
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "id"))
    image = ensure_base_image(docker_engine, "djscale-test/engine-host", HOST_PACKAGES)
    _remove_leftovers(docker_engine)
    docker_engine.docker("network", "create", "--subnet", SUBNET, NETWORK)
    try:
        docker_engine.docker(
            "run", "-d", "--name", HOST_NAME, "--hostname", "enginetest", "--network", NETWORK,
            "--ip", HOST_IP, "--tmpfs", "/run", "--tmpfs", "/tmp",
            "-e", "AUTHORIZED_KEY=" + (keys / "id.pub").read_text().strip(),
            image, "/bin/sh", "-c", HOST_BOOT)
        _wait_for(lambda: _port_open(HOST_IP, 22), "sshd")
        host_key = docker_engine.docker(
            "exec", HOST_NAME, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.split()
        yield {"ip": HOST_IP, "host_key": f"{host_key[0]} {host_key[1]}", "keys": keys,
               "engine": docker_engine}
    finally:
        _remove_leftovers(docker_engine)


def _remove_leftovers(docker_engine) -> None:
    docker_engine.docker("rm", "-f", "-v", HOST_NAME, check=False)
    docker_engine.docker("network", "rm", NETWORK, check=False)


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


def on_host(target, *command: str, check: bool = True) -> str:
    return target["engine"].docker("exec", HOST_NAME, *command, check=check).stdout


def host_log(target) -> list[str]:
    return on_host(target, "cat", LOG, check=False).split("\n")[:-1]


def write_program(directory: Path, source: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "__main__.py").write_text(textwrap.dedent(source))
    return directory


def connected(snippet: str) -> str:
    """A program: CONNECT, then `snippet` (indented like the test around it)."""
    return CONNECT + textwrap.dedent(snippet)


def kinds(actions) -> dict[str, str]:
    return {a.name: a.kind for a in actions}


CONNECT = f'''
import pulumi
import pulumi_random as random
from pulumi_command import remote

cfg = pulumi.Config()
conn = remote.ConnectionArgs(host=cfg.require("host"), user=cfg.get("user") or "deploy",
                             private_key=cfg.require_secret("sshPrivateKey"),
                             host_key=cfg.require("hostKey"))

def log(line):  # as root: `deploy` and `deploy2` both append
    return f"sudo -n mkdir -p /tmp/engine-test && echo {{line}} | sudo -n tee -a {LOG} >/dev/null"
'''


@pytest.fixture
def connect(target, tmp_path):
    """(config, state dir) for a program that starts with CONNECT; an empty log."""
    on_host(target, "rm", "-rf", "/tmp/engine-test", "/home/deploy/engine-test")
    config = {"djscale:host": target["ip"], "djscale:hostKey": target["host_key"],
              "djscale:sshPrivateKey": (target["keys"] / "id").read_text()}
    return config, tmp_path / "state"


# --- create, same, update, replace, delete ---------------------------------------------

PROGRAM = CONNECT + '''
d = "/home/deploy/engine-test"
# `first` writes what `second` reads: `second` must start only after `first` finished.
first = remote.Command(
    "first", connection=conn,
    create=f"sleep 2; mkdir -p {d}; cat > {d}/stdin.txt; " + log("first"),
    delete=log("delete-first"), stdin=cfg.require_secret("payload"),
    triggers=[cfg.get("trigger") or "t1"], logging=remote.Logging.NONE)
second = remote.Command(
    "second", connection=conn,
    create=log("second") + f"; wc -c < {d}/stdin.txt # {cfg.get('note') or ''}",
    opts=pulumi.ResourceOptions(depends_on=[first]))
if cfg.get_bool("extra"):
    remote.Command("extra", connection=conn, create=log("extra"), delete=log("delete-extra"),
                   opts=pulumi.ResourceOptions(depends_on=[second]))
remote.CopyToRemote(
    "copy", connection=conn, source=pulumi.StringAsset(cfg.get("copyText") or "hello\\n"),
    remote_path=f"{d}/made/by/copy.txt", opts=pulumi.ResourceOptions(depends_on=[first]))
remote.CopyToRemote(
    "upload", connection=conn, source=pulumi.FileArchive(cfg.require("site")),
    remote_path=f"{d}/uploads", opts=pulumi.ResourceOptions(depends_on=[first]))
password = random.RandomPassword("pw", length=20, special=False, min_numeric=3)

pulumi.export("password", password.result)
pulumi.export("secondStdout", second.stdout)
'''


@pytest.mark.docker
@pytest.mark.testbed
def test_deploy_twice_then_change(connect, target, tmp_path):
    config, state = connect
    program = write_program(tmp_path / "program", PROGRAM)
    site = tmp_path / "site"
    (site / "sub").mkdir(parents=True)
    (site / "index.html").write_text("v1\n")
    (site / "sub" / "run.sh").write_text("#!/bin/sh\n")
    (site / "sub" / "run.sh").chmod(0o755)
    config = dict(config, **{"djscale:payload": "twelve bytes", "djscale:site": str(site)})
    d = "/home/deploy/engine-test"

    exports, actions = engine.run(config, program, stack="enginetest", state=state)
    assert set(kinds(actions).values()) == {"create"}, kinds(actions)
    # stdin arrived, and `second` ran only after `first` had finished (depends_on only)
    assert exports["secondStdout"] == "12"
    assert host_log(target) == ["first", "second"]
    assert on_host(target, "cat", f"{d}/made/by/copy.txt") == "hello\n"  # parents made
    assert on_host(target, "cat", f"{d}/uploads/site/index.html") == "v1\n"
    # files are created as pkg/sftp creates them: 0666 & ~umask, not the local mode
    assert on_host(target, "stat", "-c", "%a", f"{d}/uploads/site/sub/run.sh").strip() == "644"
    password = exports["password"]
    assert len(password) == 20 and password.isalnum() and sum(c.isdigit() for c in password) >= 3
    assert stat.S_IMODE(engine.state_file(state, "enginetest").stat().st_mode) == 0o600

    # second run, nothing changed: nothing runs
    again, actions = engine.run(config, program, stack="enginetest", state=state)
    assert set(kinds(actions).values()) == {"same"}, kinds(actions)
    assert again == exports
    assert host_log(target) == ["first", "second"]

    # a trigger change replaces `first` (new create, old delete at the end); other input
    # changes re-run `second` in place and copy again; a new resource is created
    (site / "index.html").write_text("v2\n")
    changed = dict(config, **{"djscale:trigger": "t2", "djscale:copyText": "changed\n",
                              "djscale:note": "n2", "djscale:extra": "true"})
    third, actions = engine.run(changed, program, stack="enginetest", state=state)
    assert [a.kind for a in actions if a.name == "first"] == ["replace", "delete"]
    assert kinds(actions) == {"first": "delete", "second": "update", "copy": "update",
                              "upload": "update", "extra": "create", "pw": "same"}
    assert host_log(target) == ["first", "second", "first", "second", "extra", "delete-first"]
    assert on_host(target, "cat", f"{d}/made/by/copy.txt") == "changed\n"
    assert on_host(target, "cat", f"{d}/uploads/site/index.html") == "v2\n"
    assert third["password"] == password

    # a resource that left the program is deleted (its `delete` runs), nothing else moves
    dropped = dict(changed, **{"djscale:extra": "false"})
    _, actions = engine.run(dropped, program, stack="enginetest", state=state)
    assert {n: k for n, k in kinds(actions).items() if k != "same"} == {"extra": "delete"}
    assert host_log(target)[-1] == "delete-extra"


# --- failures: no partial state; old copies wait for the next successful update -----------

PENDING_PROGRAM = CONNECT + '''
t = cfg.require("t")
a = remote.Command("a", connection=conn, triggers=[t], create=log(f"create-a-{t}-$(whoami)"),
                   delete=log(f"delete-a-{t}-$(whoami)"))
remote.Command("b", connection=conn, create=log(f"b-{t}") + f"; test {cfg.get('fail') or 'no'} = no",
               opts=pulumi.ResourceOptions(depends_on=[a]))
'''


@pytest.mark.docker
@pytest.mark.testbed
def test_a_failed_update_keeps_the_old_copy_for_the_next_one(connect, target, tmp_path):
    config, state = connect
    program = write_program(tmp_path / "p", PENDING_PROGRAM)
    engine.deploy(dict(config, **{"djscale:t": "t1"}), program, "pending", state)
    a_urn = next(r["urn"] for r in engine.resources("pending", state) if r["name"] == "a")

    # `a` is replaced (new create, now as deploy2), then `b` fails: the update stops before
    # the delete phase, and the old `a` stays in the state, marked for deletion
    failing = dict(config, **{"djscale:t": "t2", "djscale:user": "deploy2",
                              "djscale:fail": "yes"})
    with pytest.raises(engine.DeployError, match=r"'b'.*Process exited with status 1"):
        engine.deploy(failing, program, "pending", state)
    assert host_log(target) == ["create-a-t1-deploy", "b-t1", "create-a-t2-deploy2", "b-t2"]
    copies = [r for r in engine.resources("pending", state) if r["urn"] == a_urn]
    assert sorted(bool(r.get("delete")) for r in copies) == [False, True]

    # the next update deletes it at its end, after everything else, with its own recorded
    # state: the old command and the old connection (user deploy)
    _, actions = engine.run(dict(failing, **{"djscale:fail": "no"}), program, "pending", state)
    assert [(a.name, a.kind) for a in actions] == [("a", "same"), ("b", "update"),
                                                   ("a", "delete")]
    assert host_log(target)[-2:] == ["b-t2", "delete-a-t1-deploy"]
    assert [bool(r.get("delete")) for r in engine.resources("pending", state)
            if r["urn"] == a_urn] == [False]


@pytest.mark.docker
@pytest.mark.testbed
def test_a_failed_create_leaves_nothing_and_reports_its_output(connect, target, tmp_path):
    config, state = connect
    program = write_program(tmp_path / "p", connected('''
        remote.Command("bad", connection=conn, logging=remote.Logging.NONE,
                       create="echo output-of-bad; echo error-of-bad >&2; exit " + cfg.require("rc"))
    '''))
    with pytest.raises(engine.DeployError) as failure:
        engine.deploy(dict(config, **{"djscale:rc": "3"}), program, "failing", state)
    text = str(failure.value)
    assert target["ip"] in text and "Process exited with status 3" in text
    # pulumi-command puts the output into the error whatever `logging` says
    assert "output-of-bad" in text and "error-of-bad" in text
    assert [r["name"] for r in engine.resources("failing", state)] == ["djscale-failing"]
    _, actions = engine.run(dict(config, **{"djscale:rc": "0"}), program, "failing", state)
    assert kinds(actions) == {"bad": "create"}


# --- protect ---------------------------------------------------------------------------

PROTECT_PROGRAM = CONNECT + '''
if cfg.get_bool("present"):
    base = remote.Command("base", connection=conn, create=log("base"), delete=log("delete-base"))
    remote.Command("guard", connection=conn, create=log("guard"), delete=log("delete-guard"),
                   opts=pulumi.ResourceOptions(depends_on=[base], protect=True))
    remote.Command("loose", connection=conn, create=log("loose"), delete=log("delete-loose"))
'''


@pytest.mark.docker
@pytest.mark.testbed
def test_a_protected_delete_is_refused_and_spares_what_it_uses(connect, target, tmp_path):
    config, state = connect
    program = write_program(tmp_path / "p", PROTECT_PROGRAM)
    engine.deploy(dict(config, **{"djscale:present": "true"}), program, "protect", state)
    # all three leave the program: `guard` is refused, `base` (it depends on it) is
    # spared, `loose` is deleted; the update fails with Pulumi's message
    with pytest.raises(engine.DeployError, match=r"(?s)guard\" cannot be deleted\nbecause it is "
                                                  r"protected.*pulumi state unprotect"):
        engine.deploy(dict(config, **{"djscale:present": "false"}), program, "protect", state)
    assert host_log(target)[3:] == ["delete-loose"]
    assert {r["name"] for r in engine.resources("protect", state)} == {
        "djscale-protect", "base", "guard"}


RANDOM_PROGRAM = '''
    import asyncio, pulumi, pulumi_random as random
    cfg = pulumi.Config()
    kept = random.RandomPassword("kept", length=cfg.get_int("length") or 16,
                                 opts=pulumi.ResourceOptions(ignore_changes=["length"]))
    guarded = random.RandomPassword("guarded", length=cfg.get_int("guardedLength") or 16,
                                    special=False, opts=pulumi.ResourceOptions(protect=True))
    pulumi.export("kept", kept.result)
    pulumi.export("guarded", guarded.result)
    # the provider's additional secret outputs apply (the plain mock runtime drops them)
    pulumi.export("secret", pulumi.Output.from_input(asyncio.ensure_future(
        kept.result.is_secret())))
'''


def test_ignore_changes_and_no_replacement_of_a_protected_resource(tmp_path):
    program = write_program(tmp_path / "p", RANDOM_PROGRAM)
    state = tmp_path / "state"
    first = engine.deploy({}, program, stack="options", state=state)
    assert len(first["kept"]) == 16 and len(first["guarded"]) == 16
    assert not any(c in string.punctuation for c in first["guarded"])
    assert first["secret"] is True
    again, actions = engine.run({"djscale:length": "30"}, program, stack="options", state=state)
    assert again == first and {a.kind for a in actions} == {"same"}  # length is ignored
    before = engine.resources("options", state)
    with pytest.raises(engine.DeployError, match=r"unable to replace resource \".*guarded\"\n"
                                                  "as it is currently marked for protection"):
        engine.deploy({"djscale:guardedLength": "20"}, program, stack="options", state=state)
    after = engine.resources("options", state)
    assert [r for r in after if r["name"] == "guarded"] == [
        r for r in before if r["name"] == "guarded"]


LOCAL_PROGRAM = '''
import pulumi
from pulumi_command import local
config = pulumi.Config("djscale")
ran = local.Command("ran", create="python3 -m helper", stdin=pulumi.Output.secret(
    config.get("request") or "one"), triggers=[config.get("trigger") or "a"],
    add_previous_output_in_env=False,
    opts=pulumi.ResourceOptions(additional_secret_outputs=["stdout"]))
pulumi.export("out", ran.stdout)
'''
HELPER = '''
import os, sys
request = sys.stdin.read()
with open("runs", "a") as runs:
    runs.write(request + "\\n")
if request == "fail":
    print("helper refused", file=sys.stderr)
    sys.exit(3)
print(f"{request} in {os.path.basename(os.getcwd())}")
'''


def test_a_local_command_runs_in_the_project_directory(tmp_path):
    """pulumi-command v1.2.1 local.Command: `create` in the provider's working directory
    (the project's), stdin as input; an input change runs `create` again (Update with no
    `update`); a trigger change replaces; a failed run reports its output, keeps the state."""
    program = write_program(tmp_path / "p", LOCAL_PROGRAM)
    (program / "helper.py").write_text(HELPER)
    state = tmp_path / "state"
    first = engine.deploy({}, program, stack="local", state=state)
    assert first["out"] == "one in p"
    again, actions = engine.run({}, program, stack="local", state=state)
    assert again == first and {a.kind for a in actions} == {"same"}
    changed, actions = engine.run({"djscale:request": "two"}, program, stack="local",
                                  state=state)
    assert changed["out"] == "two in p" and {a.kind for a in actions} == {"update"}
    _, actions = engine.run({"djscale:request": "two", "djscale:trigger": "b"}, program,
                            stack="local", state=state)
    # create-before-replace: the new one runs, the old one is deleted at the end
    assert sorted(a.kind for a in actions) == ["delete", "replace"]
    assert (program / "runs").read_text().split() == ["one", "two", "two"]
    before = engine.resources("local", state)
    with pytest.raises(engine.DeployError, match=r"(?s)'ran'.*helper refused"):
        engine.deploy({"djscale:request": "fail", "djscale:trigger": "b"}, program,
                      stack="local", state=state)
    assert engine.resources("local", state) == before


COPY_PROGRAM = f'''
import pulumi
from pulumi_command import remote
cfg = pulumi.Config()
conn = remote.ConnectionArgs(host="192.0.2.10", user="deploy", private_key="not used",
                             host_key=cfg.require("hostKey"))
remote.CopyToRemote("upload", connection=conn, source=pulumi.FileArchive(cfg.require("site")),
                    remote_path="/srv/uploads", triggers=[cfg.get("trigger") or "t1"])
'''


def test_a_copy_whose_connection_alone_changes_is_not_made_again(tmp_path, monkeypatch):
    """pulumi-command v1.2.1 provider/pkg/provider/remote/copyController.go,
    CopyToRemote.Update: `needCopy := news.hash() != olds.hash() || news.RemotePath !=
    olds.RemotePath`; a new connection (a new machine behind the address) is an update that
    copies nothing, only a trigger change (replaceOnChanges) copies to it. The stand-in must
    not be kinder: the program's upload carries the host key in its triggers for this
    (components/apply.py), and a bed run must fail as a real one would if it did not."""
    copies = []
    monkeypatch.setattr(engine_command.CopyToRemote, "create",
                        lambda self, reg, inputs, ctx: (copies.append(
                            inputs["connection"]["hostKey"]), ("copy-id", {}))[1])
    program = write_program(tmp_path / "p", COPY_PROGRAM)
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("v1\n")
    state, old_key, new_key = tmp_path / "state", "ssh-ed25519 AAAAold", "ssh-ed25519 AAAAnew"
    config = {"djscale:site": str(site), "djscale:hostKey": old_key}

    _, actions = engine.run(config, program, stack="copy", state=state)
    assert kinds(actions) == {"upload": "create"} and copies == [old_key]
    config["djscale:hostKey"] = new_key  # a new machine: only the connection differs
    _, actions = engine.run(config, program, stack="copy", state=state)
    assert kinds(actions) == {"upload": "update"} and copies == [old_key]  # nothing copied
    (site / "index.html").write_text("v2\n")  # the source's hash differs: copied again
    _, actions = engine.run(config, program, stack="copy", state=state)
    assert kinds(actions) == {"upload": "update"} and copies == [old_key, new_key]
    _, actions = engine.run(dict(config, **{"djscale:trigger": "t2"}), program, stack="copy",
                            state=state)
    assert [a.kind for a in actions] == ["replace", "delete"]
    assert copies == [old_key, new_key, new_key]


def test_a_failures_error_carries_all_its_output(tmp_path, monkeypatch):
    """pulumi-command v1.2.1 remote/ and local/commandOutputs.go, run: `fmt.Errorf("%w:
    running %q:\n%s", err, cmd, stdouterrbuf.String())`, every line the command printed.
    A stand-in that kept only the last lines would hide a secret printed early, which a real
    run shows (the failure-output proofs run the scripts themselves: tests/render/)."""
    lines = "".join(f"line {i}\n" for i in range(1, 101))
    monkeypatch.setattr(engine_command.SshTarget, "run",
                        lambda self, command, **kw: (1, lines, "failed\n"))
    connection = {"host": "192.0.2.10", "user": "deploy", "hostKey": "ssh-ed25519 AAAA"}
    with pytest.raises(engine.DeployError) as remote_failure:
        engine_command.RemoteCommand()._run("step", {"connection": connection}, "x", "create")
    with pytest.raises(engine.DeployError) as local_failure:
        engine_command.LocalCommand()._run(
            "local", {}, "for i in $(seq 1 100); do echo line $i; done; echo failed >&2; "
            "exit 1", "create", tmp_path)
    for failure in (remote_failure, local_failure):
        assert str(failure.value).endswith(f":\n{lines}failed\n"), str(failure.value)[-300:]


@pytest.mark.parametrize("pin, algorithms", [
    ("ssh-ed25519 AAAAC3Nza", "ssh-ed25519"),
    ("ecdsa-sha2-nistp256 AAAAE2Vj", "ecdsa-sha2-nistp256"),
    ("ssh-rsa AAAAB3Nza", "ssh-rsa"),  # SHA-1 only, as the provider asks: no rsa-sha2-*
])
def test_a_pinned_host_key_admits_only_its_own_type(tmp_path, pin, algorithms):
    """connection.go SSHConfig: `hostKeyAlgorithms = []string{publicKey.Type()}`; for an
    ssh-rsa pin the server must sign with SHA-1, which OpenSSH 8.8 and later refuse, so the
    real provider cannot reach it (components/config/rules.py refuses such pins)."""
    target = engine_command.SshTarget.from_input({"host": "192.0.2.10", "hostKey": pin})
    options = target.options(tmp_path)
    assert f"HostKeyAlgorithms={algorithms}" in options


def test_the_program_reads_no_output_the_engine_lacks():
    """The stand-in's RandomPassword has no `bcryptHash` (random_text.py): the program must
    not read it (outputs a program reads are not in what `inspect` lists)."""
    sources = [ROOT / "__main__.py", *(ROOT / "components").rglob("*.py")]
    assert [p for p in sources if "bcrypt" in p.read_text()] == []


# --- destroy and refresh, from the state alone ----------------------------------------

DESTROY_PROGRAM = CONNECT + '''
a = remote.Command("a", connection=conn, create=log("a"), delete=log("delete-a"))
b = remote.Command("b", connection=conn, create=log("b"), delete=log("delete-b"),
                   opts=pulumi.ResourceOptions(depends_on=[a]))
remote.Command("c", connection=conn, create=log("c"), delete=log("delete-c"),
               opts=pulumi.ResourceOptions(depends_on=[b]))
remote.Command("d", connection=conn, create=log("d"), delete=log("delete-d"))
kept = random.RandomPassword("kept", length=16, opts=pulumi.ResourceOptions(protect=True))
remote.Command("uses-kept", connection=conn, create="cat >/dev/null", stdin=kept.result,
               delete=log("delete-uses-kept"))
remote.CopyToRemote("copy", connection=conn, source=pulumi.StringAsset("x"),
                    remote_path="/home/deploy/engine-test/copied")
'''


@pytest.mark.docker
@pytest.mark.testbed
def test_destroy_deletes_dependents_first_without_the_program(connect, target, tmp_path):
    config, state = connect
    program = write_program(tmp_path / "p", DESTROY_PROGRAM)
    engine.deploy(config, program, "destroy", state)
    shutil.rmtree(program)  # destroy needs no program and no file but the state
    with pytest.raises(engine.DeployError, match=r"kept\" cannot be deleted\nbecause it is "
                                                  "protected"):
        engine.destroy("destroy", state)
    deletes = [line for line in host_log(target) if line.startswith("delete-")]
    assert sorted(deletes) == ["delete-a", "delete-b", "delete-c", "delete-d",
                               "delete-uses-kept"]
    # ScheduleDeletes' antichains: c, then b and uses-kept, then a and d
    assert deletes[0] == "delete-c" and set(deletes[1:3]) == {"delete-b", "delete-uses-kept"}
    assert on_host(target, "cat", "/home/deploy/engine-test/copied") == "x"  # no Delete
    # what the protected password depends on stays with it: its parent, the Stack
    assert {r["name"] for r in engine.resources("destroy", state)} == {"kept",
                                                                       "djscale-destroy"}


@pytest.mark.docker
@pytest.mark.testbed
def test_refresh_changes_nothing_the_providers_do_not_read(connect, target, tmp_path):
    config, state = connect
    program = write_program(tmp_path / "p", connected('''
        remote.Command("mark", connection=conn,
                       create="mkdir -p engine-test && touch engine-test/mark")
        random.RandomPassword("pw", length=12)
    '''))
    engine.deploy(config, program, "refresh", state)
    on_host(target, "rm", "/home/deploy/engine-test/mark")  # drift the provider cannot see
    before = engine.state_file(state, "refresh").read_text()
    actions = engine.refresh("refresh", state)
    assert {a.name: a.kind for a in actions} == {"mark": "same", "pw": "same"}
    assert engine.state_file(state, "refresh").read_text() == before
    _, actions = engine.run(config, program, "refresh", state)
    assert set(kinds(actions).values()) == {"same"}  # the command does not run again
    assert on_host(target, "ls", "/home/deploy/engine-test") == ""


# --- stack references ------------------------------------------------------------------

EXPORTER = '''
    import pulumi, pulumi_random as random
    cfg = pulumi.Config()
    pulumi.export("port", cfg.get_int("port") or 5432)
    pulumi.export("password", pulumi.Output.secret("s3cret"))
    if cfg.get_bool("broken"):  # fails the run; `late` depends on the failed resource
        bad = random.RandomPassword("bad", length=1, min_upper=2)
        pulumi.export("late", bad.result)
'''

READER = '''
    import asyncio, pulumi
    cfg = pulumi.Config()
    ref = pulumi.StackReference("db", stack_name=cfg.require("ref"))
    port, password = ref.require_output("port"), ref.get_output("password")
    async def secretness():
        return [await port.is_secret(), await password.is_secret()]
    pulumi.export("port", port)
    pulumi.export("password", password)
    pulumi.export("secretness", pulumi.Output.from_input(asyncio.ensure_future(secretness())))
    pulumi.export("secretNames", ref.secret_output_names)
    pulumi.export("missing", ref.get_output("nothing"))
    if cfg.get("require"):
        pulumi.export("required", ref.require_output(cfg.get("require")))
'''


def test_a_stack_reference_reads_the_other_stacks_exports(tmp_path):
    state = tmp_path / "state"
    exporter = write_program(tmp_path / "db", EXPORTER)
    reader = write_program(tmp_path / "app", READER)
    engine.deploy({}, exporter, "db-prod", state)
    ref = {"djscale:ref": "organization/djscale/db-prod"}
    exports = engine.deploy(ref, reader, "app", state)
    # (an export that is None is not recorded: serialize_properties leaves it out)
    assert exports == {"port": 5432, "password": "s3cret", "secretness": [False, True],
                       "secretNames": ["password"]}
    # recorded as a read, with the builtin provider's outputs (secrets still marked)
    read = next(r for r in engine.resources("app", state)
                if r["type"] == "pulumi:pulumi:StackReference")
    assert read["external"] and read["inputs"] == {"name": "organization/djscale/db-prod"}
    assert read["outputs"]["secretOutputNames"] == ["password"]
    assert read["outputs"]["outputs"]["password"]["value"] == "s3cret"

    # refresh reads the other stack again
    engine.deploy({"djscale:port": "6432"}, exporter, "db-prod", state)
    assert {a.name: a.kind for a in engine.refresh("app", state)} == {"db": "update"}
    read = next(r for r in engine.resources("app", state) if r["name"] == "db")
    assert read["outputs"]["outputs"]["port"] == 6432

    with pytest.raises(engine.DeployError, match=r'unknown stack "organization/djscale/nope"'):
        engine.deploy({"djscale:ref": "organization/djscale/nope"}, reader, "app2", state)
    with pytest.raises(KeyError, match="nothing"):  # the SDK's require_output
        engine.deploy(dict(ref, **{"djscale:require": "nothing"}), reader, "app3", state)


def test_stack_reference_names_are_parsed_as_the_diy_backend_parses_them(tmp_path):
    """pkg/backend/diy/store.go, projectReferenceStore.ParseReference (the backend of
    `pulumi login --local`): "stack", "org/stack" or "org/project/stack", this program's
    project unless named, and no organization but "organization"; then
    backend.go GetStackOutputs: a name that parses but names no stack is `unknown stack`."""
    state = tmp_path / "state"
    engine.deploy({}, write_program(tmp_path / "db", EXPORTER), "db-prod", state)
    reader = write_program(tmp_path / "app", READER)
    for name in ("db-prod", "organization/db-prod", "organization/djscale/db-prod"):
        exports = engine.deploy({"djscale:ref": name}, reader, "app", state)
        assert exports["port"] == 5432 and exports["secretNames"] == ["password"], name
    for name in ("example-org/djscale/db-prod", "example-org/db-prod"):  # Pulumi Cloud's
        with pytest.raises(engine.DeployError,
                           match="organization name must be 'organization'"):
            engine.deploy({"djscale:ref": name}, reader, "app", state)
    # the same stack name in another project is another stack
    with pytest.raises(engine.DeployError, match='unknown stack "organization/other/db-prod"'):
        engine.deploy({"djscale:ref": "organization/other/db-prod"}, reader, "app", state)


def test_exports_after_a_failed_update(tmp_path):
    """Pulumi lays new exports over the old ones when the update fails, if the SDK could
    still send them (all resolved); otherwise the old ones stay."""
    state = tmp_path / "state"
    exporter = write_program(tmp_path / "db", EXPORTER)
    engine.deploy({"djscale:port": "1"}, exporter, "db-prod", state)

    def recorded() -> dict:
        stack = next(r for r in engine.resources("db-prod", state)
                     if r["type"] == "pulumi:pulumi:Stack")
        return {k: v for k, v in stack["outputs"].items() if k != "password"}

    with pytest.raises(engine.DeployError, match="impossible character rules"):
        engine.deploy({"djscale:port": "2", "djscale:broken": "true"}, exporter, "db-prod",
                      state)
    assert recorded() == {"port": 1}  # `late` never resolved: nothing was sent
    broken = write_program(tmp_path / "db2", EXPORTER.replace(
        'pulumi.export("late", bad.result)', 'pass'))
    with pytest.raises(engine.DeployError, match="impossible character rules"):
        engine.deploy({"djscale:port": "3", "djscale:broken": "true"}, broken, "db-prod", state)
    assert recorded() == {"port": 3}


# --- refusals ----------------------------------------------------------------------------

@pytest.mark.docker
@pytest.mark.testbed
def test_wrong_host_key_is_refused(tmp_path, target):
    other = tmp_path / "other"
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other))
    program = write_program(tmp_path / "p", connected('''
        remote.Command("probe", create="touch /tmp/should-not-exist", connection=conn)
    '''))
    config = {"djscale:host": target["ip"],
              "djscale:sshPrivateKey": (target["keys"] / "id").read_text(),
              "djscale:hostKey": " ".join(Path(f"{other}.pub").read_text().split()[:2])}
    with pytest.raises(Exception, match="host key verification failed"):
        engine.deploy(config, program, stack="hostkey", state=tmp_path / "state")
    assert "should-not-exist" not in on_host(target, "ls", "/tmp")


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


REFUSALS = {
    # the program uses no pulumi-docker (not installed): a resource of its type tokens
    "docker container": ('''
        import pulumi
        pulumi.CustomResource("docker:index/container:Container", "c", {"image": "x"})
    ''', r"docker:index/container:Container \('c'\) is not implemented"),
    "docker image": ('''
        import pulumi
        pulumi.CustomResource("docker:index/image:Image", "i",
                              {"imageName": "x:1", "skipPush": True})
    ''', r"docker:index/image:Image \('i'\) is not implemented"),
    "local command asset paths": ('''
        from pulumi_command import local
        local.Command("here", create="true", asset_paths=["*.txt"])
    ''', r"'here'.*assetPaths"),
    "unknown connection input": ('''
        from pulumi_command import remote
        remote.Command("pw", create="true", connection=remote.ConnectionArgs(
            host="127.0.0.1", password="secret"))
    ''', r"'pw'.*connection\.password"),
    "environment": ('''
        from pulumi_command import remote
        remote.Command("env", create="true", environment={"A": "b"},
                       connection=remote.ConnectionArgs(host="127.0.0.1"))
    ''', r"'env'.*environment"),
    "unimplemented resource option": ('''
        import pulumi, pulumi_random as random
        random.RandomPassword("slow", length=8, opts=pulumi.ResourceOptions(
            custom_timeouts=pulumi.CustomTimeouts(create="1m")))
    ''', r"'slow'.*option customTimeouts"),
    "nested replaceOnChanges": ('''
        import pulumi
        from pulumi_command import remote
        remote.Command("n", create="true", connection=remote.ConnectionArgs(host="h"),
                       opts=pulumi.ResourceOptions(replace_on_changes=["connection.host"]))
    ''', r"'n'.*option replaceOnChanges=connection.host"),
    "dependent replacement": ('''
        import pulumi, pulumi_random as random
        from pulumi_command import remote
        first = random.RandomPassword("first", length=8,
                                      opts=pulumi.ResourceOptions(delete_before_replace=True))
        remote.Command("then", create="true", connection=remote.ConnectionArgs(host="h"),
                       triggers=[first.result])
    ''', r"'then'.*input triggers depends on .*first, which is replaced delete-before-replace"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_unimplemented_is_refused(tmp_path, case):
    """Refusals need no target: nothing runs before the check (inspect reports the same)."""
    source, message = REFUSALS[case]
    program = write_program(tmp_path / "p", source)
    problems = [p for r in engine.inspect({}, program) for p in r.problems]
    assert problems, case
    with pytest.raises(engine.Refused, match=message):
        engine.deploy({}, program, stack="refuse", state=tmp_path / "state")


# --- the real program: only what the engine does faithfully ----------------------------

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted([ROOT / "Pulumi.dev.yaml", ROOT / "Pulumi.prod.yaml",
                    *(ROOT / "tests" / "fixtures").glob("stack_*.yaml")])
SECRETS = {"sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nplaceholder\n"
                            "-----END OPENSSH PRIVATE KEY-----\n",
           "staticStorageSecretKey": "placeholder", "backupStorageSecretKey": "placeholder"}
DB_STACK = '''
    import pulumi  # what stack_db_shared.yaml exports, for stack_dbref.yaml to read
    pulumi.export("dbClientAddresses", ["10.0.4.21", "10.0.4.22", "10.0.4.41", "10.0.4.42"])
    pulumi.export("dbPrivateAddress", "10.0.4.10")
    pulumi.export("dbPort", 5432)
    pulumi.export("dbName", "shop")
    pulumi.export("dbUser", "shop_app")
    pulumi.export("dbPassword", pulumi.Output.secret("placeholder"))
    pulumi.export("dbCaCert", "-----BEGIN CERTIFICATE-----\\nplaceholder\\n-----END CERTIFICATE-----\\n")
    pulumi.export("dbWorkersPerClient", 3)
'''


@pytest.fixture(scope="module")
def referenced_stacks(tmp_path_factory):
    """A state directory holding the stack that stack_dbref.yaml references."""
    state = tmp_path_factory.mktemp("references")
    program = write_program(tmp_path_factory.mktemp("db-prod"), DB_STACK)
    engine.deploy({}, program, "db-prod", state)
    return state


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_real_program_uses_only_what_the_engine_does_faithfully(
        scenario, referenced_stacks, tmp_path, monkeypatch):
    monkeypatch.setenv("DJSCALE_HOME", str(tmp_path))  # the program stages uploads there
    _, present = read_stack_file(scenario)  # and each appSecrets entry the stack holds
    secrets = {**SECRETS, **{path: "placeholder" for path in present
                             if path.startswith("appSecrets.")}}
    config, secret_keys = _on_a_local_backend(*cli_stack_config(scenario, secrets))
    registered = engine.inspect(config, ROOT, secret_keys=secret_keys, state=referenced_stacks)
    assert {r.type for r in registered} <= engine.IMPLEMENTED_TYPES
    assert {o for r in registered for o in r.options} <= engine.IMPLEMENTED_OPTIONS
    assert {f"{r.type} {r.name}": r.problems for r in registered if r.problems} == {}
    if scenario.name == "stack_dbref.yaml":  # the database comes from the other stack
        assert "pulumi:pulumi:StackReference" in {r.type for r in registered}


def _on_a_local_backend(config: dict, secret_keys) -> tuple[dict, tuple]:
    """A stack file's config with its database.stack named as on the diy backend the
    stand-in's state directory is (stack_dbref.yaml names a Pulumi Cloud organization)."""
    database = json.loads(config.get("djscale:database", "{}"))
    if database.get("stack"):
        project, stack = database["stack"].split("/")[1:]
        database["stack"] = f"organization/{project}/{stack}"
        config = {**config, "djscale:database": json.dumps(database)}
    return config, secret_keys


def test_a_missing_referenced_stack_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("DJSCALE_HOME", str(tmp_path))
    config, secret_keys = _on_a_local_backend(*cli_stack_config(
        ROOT / "tests/fixtures/stack_dbref.yaml", SECRETS))
    with pytest.raises(engine.DeployError, match='unknown stack "organization/djscale/db-prod"'):
        engine.inspect(config, ROOT, secret_keys=secret_keys, state=tmp_path / "empty")


def test_inspect_lists_resources_options_and_refusals(tmp_path):
    program = write_program(tmp_path / "p", '''
        import pulumi
        from pulumi_command import remote
        first = remote.Command("first", create="true", connection=remote.ConnectionArgs(host="h"),
                               opts=pulumi.ResourceOptions(protect=True))
        pulumi.CustomResource("docker:index/container:Container", "c", {"image": "x"},
                              opts=pulumi.ResourceOptions(depends_on=[first]))
    ''')
    registered = {r.name: r for r in engine.inspect({}, program)}
    assert registered["c"].problems == [
        "resource type docker:index/container:Container ('c') is not implemented"]
    assert registered["first"].problems == []
    assert set(registered["first"].options) >= {"protect", "parent"}
    assert "dependencies" in registered["c"].options


def test_deletes_are_scheduled_as_pulumi_schedules_them():
    """graph.py against ScheduleDeletes/DependenciesOf: a dependency on a component covers
    its children before the dependent; parents outlive children; the rest in parallel."""
    from tests.testbed.engine.graph import DependencyGraph, schedule_deletes

    def res(name, parent="stack", deps=(), custom=True):
        return {"urn": name, "name": name, "parent": parent if name != "stack" else "",
                "dependencies": list(deps), "custom": custom}
    resources = [res("stack", custom=False), res("comp", custom=False),
                 res("x", parent="comp"), res("y", deps=["comp"]), res("z")]
    chains = schedule_deletes(resources, DependencyGraph(resources))
    assert [sorted(r["name"] for r in chain) for chain in chains] == [
        ["y"], ["x"], ["comp", "z"], ["stack"]]
