"""Hosts as network namespaces, for running the firewall scripts and rules for real: ufw in
a private namespace (`UfwSandbox`), namespaces joined by veth links (`Namespaces`), and
probes from a chosen source address. The machine's own network and firewall are never
touched (../shared/ENVIRONMENT.md: "Hosts as network namespaces")."""
from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Optional

from components.render.files import render_run_script_command

# The deployer as the step's SSH session shows it: inside 192.0.2.7/32 of make_config().
ADMIN_SSH_CLIENT = "192.0.2.7 51000 22"
# sudo as the step runs it (`sudo -n bash -c ...`): the environment reset, root already.
SUDO_STAND_IN = """#!/bin/sh
[ "$1" = -n ] && shift
exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"
"""


def in_netns(netns: str, *cmd: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", netns, *cmd], capture_output=True,
                          text=True, **kw)


class UfwSandbox:
    """A host's ufw in a private network namespace with private /etc/ufw, /etc/default and
    /run (a mount namespace per command): the machine's own firewall is never touched."""

    def __init__(self, root: Path, netns: str):
        self.root, self.netns = root, netns
        self.etc = root / "etc-ufw"
        shutil.copytree("/etc/ufw", self.etc)
        for rules in Path("/usr/share/ufw/iptables").glob("*.rules"):  # pristine copies
            shutil.copy(rules, self.etc / rules.name)
        shutil.copy("/usr/share/ufw/ufw.conf", self.etc / "ufw.conf")
        self.default = root / "etc-default"  # a directory: the script edits ufw's in place
        shutil.copytree("/etc/default", self.default, symlinks=True)
        (self.default / "ufw").write_text(Path("/etc/default/ufw").read_text())
        self.bin = root / "bin"
        self.bin.mkdir()
        (self.bin / "sudo").write_text(SUDO_STAND_IN)
        (self.bin / "sudo").chmod(0o755)

    def run(self, command: str, stdin: str = "") -> subprocess.CompletedProcess:
        mounts = (f"mount --make-rprivate / && mount --bind {self.etc} /etc/ufw && "
                  f"mount --bind {self.default} /etc/default && "
                  f"mount -t tmpfs djscale-run /run && ")
        return in_netns(self.netns, "unshare", "-m", "bash", "-c", mounts + command,
                        input=stdin)

    def step(self, script: str, ssh_client: Optional[str] = ADMIN_SSH_CLIENT,
             login_shell: str = "sh") -> subprocess.CompletedProcess:
        """The firewall step as a deploy runs it: its command line (`sudo -n bash -c
        <script> djscale "$SSH_CLIENT"`) run by the SSH user's login shell, with SSH_CLIENT
        in the environment as sshd sets it (None: unset), sudo resetting the environment."""
        line = render_run_script_command(script, ssh_client=True)
        env = "" if ssh_client is None else f"SSH_CLIENT={shlex.quote(ssh_client)} "
        return self.run(f"unset SSH_CLIENT; PATH={self.bin}:$PATH {env}"
                        f"{login_shell} -c {shlex.quote(line)}")

    def files(self) -> tuple[str, ...]:
        """Everything ufw keeps on disk: rule files, after.rules, ufw.conf, /etc/default/ufw."""
        return tuple((self.etc / name).read_text() for name in (
            "user.rules", "user6.rules", "after.rules", "ufw.conf")) + (
            (self.default / "ufw").read_text(),)

    def tables(self) -> str:
        """The running IPv4 and IPv6 rules (without counters)."""
        return (in_netns(self.netns, "iptables", "-S").stdout +
                in_netns(self.netns, "ip6tables", "-S").stdout)


def user_input_accepts(netns: str, tool: str = "iptables") -> list[str]:
    rules = in_netns(netns, tool, "-S", "ufw-user-input" if tool == "iptables"
                     else "ufw6-user-input").stdout.splitlines()
    return [r for r in rules if r.startswith("-A")]


def listener_code(port: int, address: str = "::") -> str:
    """A TCP listener that accepts and holds connections (IPv4 and IPv6 on "::")."""
    family = "AF_INET6" if ":" in address else "AF_INET"
    dual = ("s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0); "
            if family == "AF_INET6" else "")
    return (f"import socket, time; s = socket.socket(socket.{family}); {dual}"
            "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
            f"s.bind(({address!r}, {port})); s.listen(64)\n"
            "held = []\n"
            "while True: held.append(s.accept()[0])")


def wait_listening(netns: str, port: int) -> None:
    for _ in range(50):
        if in_netns(netns, "ss", "-Htln", f"sport = :{port}").stdout:
            return
        time.sleep(0.1)
    raise AssertionError(f"no listener on {port} in {netns}")


class Namespaces:
    """Network namespaces made for one test, and the processes started in them."""

    def __init__(self):
        self.prefix = f"djs{uuid.uuid4().hex[:6]}"
        self.names: list[str] = []
        self.processes: list[subprocess.Popen] = []

    def add(self, role: str) -> str:
        name = f"{self.prefix}-{role}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.names.append(name)
        in_netns(name, "ip", "link", "set", "lo", "up", check=True)
        return name

    def sh(self, ns: str, command: str) -> subprocess.CompletedProcess:
        return in_netns(ns, "sh", "-c", command)

    def setup(self, *steps: tuple[str, str]) -> None:
        """Run (namespace, shell command) pairs in order; any failure fails the test."""
        for ns, command in steps:
            result = self.sh(ns, command)
            assert result.returncode == 0, (command, result.stderr)

    def start(self, ns: str, *cmd: str, **popen) -> subprocess.Popen:
        """`cmd` in `ns`, stopped by close(); its output dropped unless `popen` says."""
        popen = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, **popen}
        process = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], **popen)
        self.processes.append(process)
        return process

    def listen(self, ns: str, port: int, address: str = "::") -> None:
        self.start(ns, sys.executable, "-c", listener_code(port, address))
        wait_listening(ns, port)

    def close(self) -> None:
        for proc in self.processes:
            proc.terminate()
            proc.wait(timeout=10)
        for name in self.names:
            subprocess.run(["ip", "netns", "del", name], check=False)


def link_with_silent_neighbours(ns: str, address: str, *silent: str) -> None:
    """`address`/24 on a veth link of `ns` whose frames for each of `silent` go to a MAC
    nobody has: dropped, never refused (a host that is gone)."""
    for cmd in (("ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1"),
                ("ip", "addr", "add", f"{address}/24", "dev", "d0"),
                ("ip", "link", "set", "d0", "up"), ("ip", "link", "set", "d1", "up"),
                *(("ip", "neigh", "add", neighbour, "lladdr", f"02:00:00:00:00:{i:02x}",
                   "dev", "d0", "nud", "permanent") for i, neighbour in
                  enumerate(silent, start=9))):
        in_netns(ns, *cmd, check=True)


def connects(namespaces: Namespaces, ns: str, source: str, target: str,
             timeout: int = 5) -> bool:
    """An HTTP exchange works; a dropped SYN fails after `timeout` seconds."""
    result = namespaces.sh(ns, f"curl -s -o /dev/null --interface {source} "
                               f"--connect-timeout {timeout} --max-time {timeout + 5} "
                               f"http://{target}/")
    return result.returncode == 0


def tcp_open(ns: str, source: Optional[str], address: str, port: int, timeout: float = 2,
             uid: Optional[int] = None) -> bool:
    """A TCP connect from `source` (an address of `ns`; None: the kernel's choice)
    completes within `timeout` seconds; `uid`: from a process of that user."""
    bind = f", source_address=({source!r}, 0)" if source else ""
    code = f"import socket; socket.create_connection(({address!r}, {port}), {timeout}{bind})"
    if uid is None:
        return in_netns(ns, sys.executable, "-c", code).returncode == 0
    # the system python: this interpreter may live where another user cannot read (/root)
    return in_netns(ns, "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                    "/usr/bin/python3", "-c", code).returncode == 0
