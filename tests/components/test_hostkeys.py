"""components/hostkeys.py: the command that pins every host's SSH host key.

The commands it runs and what it prints are asserted as text; then the real thing: real
OpenSSH servers (each with host keys generated here) on addresses of private network
namespaces, the command run there as an operator would, its printed ssh.hostKeys and
fingerprints compared with the keys the servers hold, and pasted into the stack file.
With a bastion, the hosts are reachable only from the bastion's network: the command gets
their keys through it or not at all.

The servers need an sshd binary (openssh-server: /usr/sbin/sshd, or DJSCALE_SSHD) and root
(network namespaces). Each sshd runs in its own mount namespace with a private /etc/passwd,
/etc/shadow (the bastion's login user) and /run (its privilege separation directory), so
nothing of the machine's changes.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import yaml

from components.config import SshTarget, parse_config, read_stack_file
from components.config.stack_file import assume_secrets
from components.hostkeys import (best_key, bastion_command, keyscan_command, known_hosts_line,
                                 report, Scan)
from tests.components.helpers import stack_config

ROOT = Path(__file__).resolve().parents[2]
ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID9iDKygqTjLJTGNlrrfSNS7J7u4Nej213ePYwi3Q0or"
ECDSA = ("ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBII88cYsgLxFk"
         "7lVRtlaOWBVmy8LpNITixaZ48lqLl0ITS49fJzos1hOr4q5yXsCmNkIpaPMbha356oQUHwuGMc=")
APP1 = SshTarget("app1", "appServers[0]", "203.0.113.21", 22)


# --- commands and output as text ---------------------------------------------------------

def test_keyscan_asks_for_ed25519_and_ecdsa_only():
    assert keyscan_command(SshTarget("app3", "appServers[2]", "10.0.2.23", 2223), 5) == [
        "ssh-keyscan", "-T", "5", "-p", "2223", "-t", "ed25519,ecdsa", "--", "10.0.2.23"]


def test_ed25519_is_preferred_then_ecdsa_never_rsa():
    scanned = ("# 10.0.0.1:22 SSH-2.0-OpenSSH_9.2p1\n"
               f"10.0.0.1 ssh-rsa AAAAB3NzaC1yc2E=\n10.0.0.1 {ECDSA}\n10.0.0.1 {ED25519}\n")
    assert best_key(scanned) == ED25519
    assert best_key(f"[10.0.0.1]:2222 {ECDSA}\n") == ECDSA
    assert best_key("10.0.0.1 ssh-rsa AAAAB3NzaC1yc2E=\n10.0.0.1 ssh-dss AAAAB3NzaC1kc3M=\n") \
        is None


def test_known_hosts_line_names_the_port_when_it_is_not_22():
    assert known_hosts_line(APP1, ED25519) == f"203.0.113.21 {ED25519}\n"
    assert known_hosts_line(SshTarget("bastion", "ssh.bastion", "jump.example.com", 2200),
                            ECDSA) == f"[jump.example.com]:2200 {ECDSA}\n"


def test_the_bastion_login_accepts_only_the_key_just_scanned(tmp_path):
    bastion = SshTarget("bastion", "ssh.bastion", "bastion.example.com", 2200)
    command = bastion_command(bastion, "jump", ECDSA, tmp_path / "known", "/keys/id", 5,
                              keyscan_command(APP1, 5))
    assert command == [
        "ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={tmp_path / 'known'}", "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "HostKeyAlgorithms=ecdsa-sha2-nistp256", "-o", "ConnectTimeout=5",
        "-p", "2200", "-l", "jump", "-i", "/keys/id", "-o", "IdentitiesOnly=yes",
        "--", "bastion.example.com",
        "ssh-keyscan -T 5 -p 22 -t ed25519,ecdsa -- 203.0.113.21"]


def test_report_lists_fingerprints_and_the_ssh_block_to_paste():
    cfg = stack_config("stack_two_apps.yaml")
    raw, _ = read_stack_file(ROOT / "tests" / "fixtures" / "stack_two_apps.yaml")
    old = cfg.ssh.host_key_for("203.0.113.22")
    scans = [Scan(t, ED25519 if t.name == "app2" else cfg.ssh.host_key_for(t.address),
                  "SHA256:" + t.name) if t.name != "proxy" else Scan(t, error="no answer")
             for t in cfg.ssh_targets()]
    text = report(Path("Pulumi.shop.yaml"), raw, cfg, scans)
    assert text.splitlines()[:13] == [
        "# SSH host keys of the hosts of Pulumi.shop.yaml, scanned by "
        "`python -m components.hostkeys`.",
        "# Before you paste: compare each fingerprint with the one the server itself shows,",
        "# run on the server through a channel you already trust (its console):",
        "#   ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub",
        "#",
        "#   db     203.0.113.10:2222  ssh-ed25519  SHA256:db  (as pinned)",
        "#   app1   203.0.113.21:2222  ssh-ed25519  SHA256:app1  (as pinned)",
        "#   app2   203.0.113.22:22  ssh-ed25519  SHA256:app2  CHANGED: the stack pins another "
        "key",
        "#   proxy  203.0.113.30:2222  NO KEY: no answer",
        "#",
        "# Then replace the `djscale:ssh:` block of Pulumi.shop.yaml (under `config:`) with:",
        "# (a machine without a key here keeps the pin it had, if it had one)",
        "  djscale:ssh:"]
    block = yaml.safe_load("\n".join(line for line in text.splitlines()
                                     if not line.startswith("#")))["djscale:ssh"]
    assert block == {"user": "ops", "port": 2222, "hostKeys": {
        "203.0.113.10": cfg.ssh.host_key_for("203.0.113.10"),
        "203.0.113.21": cfg.ssh.host_key_for("203.0.113.21"),
        "203.0.113.22": ED25519,  # the scanned key replaces the old pin
        "203.0.113.30": cfg.ssh.host_key_for("203.0.113.30")}}  # kept: no answer
    assert old != ED25519


def test_the_command_does_not_import_pulumi():
    probe = ("import sys, components.hostkeys; "
             "sys.exit(1 if any(m == 'pulumi' or m.startswith('pulumi.') for m in sys.modules) "
             "else 0)")
    assert subprocess.run([sys.executable, "-c", probe], cwd=ROOT).returncode == 0


def test_a_missing_stack_file_is_named(tmp_path):
    result = _pin_command(["--stack", "nope", "--project-dir", str(tmp_path)])
    assert (result.returncode, result.stderr) == (2, f"no stack file {tmp_path}/Pulumi.nope.yaml\n")


# --- real OpenSSH servers ------------------------------------------------------------------

SSHD = os.environ.get("DJSCALE_SSHD", "/usr/sbin/sshd")


def _pin_command(args, netns=None, timeout=120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    command = [sys.executable, "-m", "components.hostkeys", *args]
    if netns:
        command = ["ip", "netns", "exec", netns, *command]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def sshd():
    if not os.path.isfile(SSHD):
        pytest.fail(f"no sshd at {SSHD}: apt-get install openssh-server (or set DJSCALE_SSHD)")
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    return SSHD


class Site:
    """Network namespaces with addresses, and sshd processes listening on them."""

    def __init__(self, sshd_path: str):
        # readable by the bastion's login user (tmp_path is 0700): its authorized keys
        self.dir = Path(tempfile.mkdtemp(prefix="djscale-hostkeys-"))
        self.dir.chmod(0o755)
        self.sshd = sshd_path
        self.tag = uuid.uuid4().hex[:6]
        self.namespaces: list[str] = []
        self.servers: list[subprocess.Popen] = []
        self.logs: dict[str, Path] = {}
        self._accounts()

    def netns(self, name: str, *addresses: str) -> str:
        netns = f"djs-hk-{name}-{self.tag}"
        subprocess.run(["ip", "netns", "add", netns], check=True)
        self.namespaces.append(netns)
        _ip(netns, "link", "set", "lo", "up")
        for address in addresses:
            _ip(netns, "addr", "add", f"{address}/32", "dev", "lo")
        return netns

    def link(self, left: str, left_address: str, right: str, right_address: str) -> None:
        """A cable between two namespaces (one /24); nothing else is routed."""
        subprocess.run(["ip", "link", "add", "hk0", "netns", left, "type", "veth", "peer",
                        "name", "hk1", "netns", right], check=True)
        for netns, name, address in ((left, "hk0", left_address), (right, "hk1", right_address)):
            _ip(netns, "addr", "add", f"{address}/24", "dev", name)
            _ip(netns, "link", "set", name, "up")

    def host_key(self, name: str, kind: str) -> Path:
        path = self.dir / f"{name}_{kind}"
        bits = {"rsa": ["-b", "2048"], "ecdsa": ["-b", "256"]}.get(kind, [])
        subprocess.run(["ssh-keygen", "-q", "-t", kind, *bits, "-N", "", "-C", "",
                        "-f", str(path)], check=True)
        return path

    def serve(self, netns: str, name: str, address: str, port: int = 22,
              kinds: tuple[str, ...] = ("ed25519",), authorized: str = "") -> dict[str, str]:
        """Start sshd for `name` at address:port with new host keys; returns them by type
        ("ssh-ed25519 AAAA...")."""
        keys = {kind: self.host_key(name, kind) for kind in kinds}
        authorized_file = self.dir / f"{name}_authorized_keys"
        authorized_file.write_text(authorized)
        conf = self.dir / f"{name}_sshd_config"
        conf.write_text("".join(f"HostKey {key}\n" for key in keys.values()) + (
            f"ListenAddress {address}:{port}\nPidFile none\nUsePAM no\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            f"AllowUsers jump\nAuthorizedKeysFile {authorized_file}\nStrictModes no\n"
            "LogLevel VERBOSE\n"))
        log = self.logs[name] = self.dir / f"{name}_sshd.log"
        # a private mount namespace: the accounts below, and /run/sshd on a private /run
        script = ('mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/shadow && '
                  'mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -m 0755 /run/sshd && '
                  'exec "$3" -D -e -f "$4"')
        with log.open("w") as out:
            self.servers.append(subprocess.Popen(
                ["ip", "netns", "exec", netns, "unshare", "-m", "--propagation", "private",
                 "sh", "-c", script, "sh", str(self.passwd), str(self.shadow), self.sshd,
                 str(conf)], stdout=out, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 20
        while f"Server listening on {address} port {port}" not in log.read_text():
            assert self.servers[-1].poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        public = [Path(f"{path}.pub").read_text().split()[:2] for path in keys.values()]
        return {kind: f"{kind} {blob}" for kind, blob in public}

    def _accounts(self) -> None:
        """/etc/passwd and /etc/shadow as the sshds see them: the machine's, plus sshd's
        privilege separation user if the machine has none, plus `jump` (the bastion user)."""
        home = self.dir / "jump-home"
        home.mkdir()
        passwd = Path("/etc/passwd").read_text()
        extra = f"jump:x:64998:64998::{home}:/bin/sh\n"
        if not re.search(r"^sshd:", passwd, re.M):
            extra += "sshd:x:64999:65534::/run/sshd:/usr/sbin/nologin\n"
        self.passwd = self.dir / "passwd"
        self.passwd.write_text(passwd + extra)
        self.shadow = self.dir / "shadow"
        self.shadow.write_text(Path("/etc/shadow").read_text() + "jump:*:19000:0:99999:7:::\n")
        self.shadow.chmod(0o600)

    def close(self) -> None:
        for server in self.servers:
            server.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(timeout=10)
            if server.poll() is None:
                server.kill()
                server.wait()
        for netns in self.namespaces:
            subprocess.run(["ip", "netns", "del", netns], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def _ip(netns: str, *args: str) -> None:
    subprocess.run(["ip", "-n", netns, *args], check=True)


@pytest.fixture
def site(sshd):
    site = Site(sshd)
    try:
        yield site
    finally:
        site.close()


def write_stack(path: Path, hosts: dict[str, str], ssh: dict) -> Path:
    """A stack file with the database, app1, app2 and proxy at `hosts` (no pins)."""
    config = {
        "djscale:domain": "shop.example.com",
        "djscale:sshPrivateKey": {"secure": "v1:placeholder"},
        "djscale:staticStorageSecretKey": {"secure": "v1:placeholder"},
        "djscale:acme": {"email": "ops@example.com"},
        "djscale:ssh": ssh,
        "djscale:database": {"address": hosts["db"], "privateAddress": "10.0.0.10"},
        "djscale:appServers": [
            {"name": "app1", "address": hosts["app1"], "privateAddress": "10.0.0.21"},
            {"name": "app2", "address": hosts["app2"], "privateAddress": "10.0.0.22",
             "sshPort": 2222}],
        "djscale:proxy": {"address": hosts["proxy"], "privateAddress": "10.0.0.30"},
        "djscale:app": {"superuser": {"email": "admin@example.com"}},
        "djscale:staticStorage": {"bucket": "shop-static", "accessKeyId": "AKIAEXAMPLE"},
        "djscale:firewall": {"adminCidrs": ["198.51.100.0/24"]},
        "djscale:backups": {"enabled": False},
    }
    if "privateKeyPath" in ssh:
        del config["djscale:sshPrivateKey"]
    path.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    return path


def printed_block(stdout: str) -> dict:
    return yaml.safe_load("\n".join(line for line in stdout.splitlines()
                                    if not line.startswith("#")))["djscale:ssh"]


def printed_fingerprints(stdout: str) -> dict[str, str]:
    """name -> SHA256:... from the listing lines."""
    found = {}
    for line in stdout.splitlines():
        match = re.match(r"#   (\S+)\s+\S+:\d+\s+\S+\s+(SHA256:\S+)", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def server_fingerprint(key: str) -> str:
    """What `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` prints on the server."""
    return subprocess.run(["ssh-keygen", "-l", "-f", "-"], input=key + "\n", text=True,
                          capture_output=True, check=True).stdout.split()[1]


def paste(stack_file: Path, block: dict) -> dict:
    """The stack file with its djscale:ssh replaced by the printed block: parsed, pinned."""
    raw, present = read_stack_file(stack_file)
    raw["ssh"] = block
    return parse_config(raw, assume_secrets(raw, present)[0], check_files=False)


HOSTS = {"db": "10.77.0.10", "app1": "10.77.0.21", "app2": "10.77.0.22", "proxy": "10.77.0.30"}


def test_every_host_is_scanned_and_the_printed_pins_are_the_servers_keys(site, tmp_path):
    netns = site.netns("one", *HOSTS.values())
    served = {
        "db": site.serve(netns, "db", HOSTS["db"]),
        "app1": site.serve(netns, "app1", HOSTS["app1"], kinds=("rsa", "ecdsa", "ed25519")),
        "app2": site.serve(netns, "app2", HOSTS["app2"], 2222, kinds=("rsa", "ecdsa")),
        "proxy": site.serve(netns, "proxy", HOSTS["proxy"]),
    }
    expected = {  # ed25519 when the server has one, else ecdsa; never rsa
        "db": served["db"]["ssh-ed25519"], "app1": served["app1"]["ssh-ed25519"],
        "app2": served["app2"]["ecdsa-sha2-nistp256"], "proxy": served["proxy"]["ssh-ed25519"]}
    stack = write_stack(tmp_path / "Pulumi.site.yaml", HOSTS, {"user": "deploy"})

    result = _pin_command(["--stack-file", str(stack), "--timeout", "5"], netns)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    block = printed_block(result.stdout)
    assert block == {"user": "deploy",
                     "hostKeys": {HOSTS[name]: key for name, key in sorted(
                         expected.items(), key=lambda item: HOSTS[item[0]])}}
    assert printed_fingerprints(result.stdout) == {
        name: server_fingerprint(key) for name, key in expected.items()}
    assert "#   ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub" in result.stdout
    assert "#   ssh-keygen -lf /etc/ssh/ssh_host_ecdsa_key.pub" in result.stdout

    cfg = paste(stack, block)  # the stack now parses with every host pinned
    assert {t.name: cfg.ssh.host_key_for(t.address) for t in cfg.ssh_targets()} == expected

    # scanned again with the pins in place: the same keys, said to be as pinned
    write_stack(stack, HOSTS, block)
    again = _pin_command(["--stack-file", str(stack), "--timeout", "5"], netns)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("(as pinned)") == 4 and printed_block(again.stdout) == block


def test_a_host_that_does_not_answer_or_offers_only_rsa_is_named(site, tmp_path):
    netns = site.netns("two", *HOSTS.values())
    site.serve(netns, "db", HOSTS["db"], kinds=("rsa",))  # nothing pinnable
    app1 = site.serve(netns, "app1", HOSTS["app1"])
    app2 = site.serve(netns, "app2", HOSTS["app2"], 2222)
    # no server for the proxy
    stack = write_stack(tmp_path / "Pulumi.site.yaml", HOSTS, {"user": "deploy"})

    result = _pin_command(["--stack-file", str(stack), "--timeout", "2"], netns)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "db (10.77.0.10:22): no host key: it answered, but offers no ed25519 or ecdsa host key",
        "proxy (10.77.0.30:22): no host key: no answer within 2s (down, filtered, or not an "
        "SSH server)"]
    assert printed_block(result.stdout)["hostKeys"] == {
        HOSTS["app1"]: app1["ssh-ed25519"], HOSTS["app2"]: app2["ssh-ed25519"]}


def test_hosts_behind_a_bastion_are_scanned_through_it(site, tmp_path):
    """The operator reaches only the bastion; the hosts are on the bastion's side. The
    command scans the bastion, logs in to it checking that key, and scans from there."""
    client_key = tmp_path / "deploy_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(client_key)],
                   check=True)
    operator = site.netns("op")
    inside = site.netns("in", *HOSTS.values())
    site.link(operator, "10.77.1.1", inside, "10.77.1.5")
    bastion = site.serve(inside, "bastion", "10.77.1.5",
                         authorized=Path(f"{client_key}.pub").read_text())
    served = {name: site.serve(inside, name, address, 2222 if name == "app2" else 22)
              for name, address in HOSTS.items()}
    stack = write_stack(tmp_path / "Pulumi.site.yaml", HOSTS, {
        "user": "deploy", "privateKeyPath": str(client_key),
        "bastion": {"address": "10.77.1.5", "user": "jump"}})

    direct = subprocess.run(["ip", "netns", "exec", operator, "ssh-keyscan", "-T", "2",
                             HOSTS["app1"]], capture_output=True, text=True)
    assert direct.stdout == ""  # not reachable from the operator's side
    result = _pin_command(["--stack-file", str(stack), "--timeout", "5"], operator)
    assert result.returncode == 0, result.stderr
    block = printed_block(result.stdout)
    assert block["hostKeys"] == {
        "10.77.1.5": bastion["ssh-ed25519"],
        **{address: served[name]["ssh-ed25519"] for name, address in HOSTS.items()}}
    assert block["bastion"] == {"address": "10.77.1.5", "user": "jump"}
    assert result.stdout.count("(through bastion)") == 4
    assert printed_fingerprints(result.stdout)["bastion"] == \
        server_fingerprint(bastion["ssh-ed25519"])
    assert site.logs["bastion"].read_text().count("Accepted publickey for jump") == 4
    paste(stack, block)


def test_a_bastion_that_refuses_the_login_is_named_for_each_host(site, tmp_path):
    client_key = tmp_path / "deploy_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(client_key)],
                   check=True)
    operator = site.netns("op")
    inside = site.netns("in", *HOSTS.values())
    site.link(operator, "10.77.1.1", inside, "10.77.1.5")
    site.serve(inside, "bastion", "10.77.1.5", authorized="")  # our key is not authorized
    stack = write_stack(tmp_path / "Pulumi.site.yaml", HOSTS, {
        "user": "deploy", "privateKeyPath": str(client_key),
        "bastion": {"address": "10.77.1.5", "user": "jump"}})
    result = _pin_command(["--stack-file", str(stack), "--timeout", "5"], operator)
    assert result.returncode == 1
    assert [line.split(": no host key: ")[0] for line in result.stderr.splitlines()] == [
        "db (10.77.0.10:22)", "app1 (10.77.0.21:22)", "app2 (10.77.0.22:2222)",
        "proxy (10.77.0.30:22)"]
    assert all("Permission denied (publickey)" in line for line in result.stderr.splitlines())
    assert list(printed_block(result.stdout)["hostKeys"]) == ["10.77.1.5"]
