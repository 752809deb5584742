"""Servers to SSH into, without Docker: real OpenSSH servers on addresses of private network
namespaces, each a "host" with its own files and stand-in commands.

Each sshd runs in its own mount namespace where `/etc`, `/var/lib`, `/var/log` and
`/usr/local/sbin` are directories of this host (under the site's temporary directory), so
a host's state files (`/var/lib/djscale/...`, `/etc/djscale/...`) are its own and nothing
of the machine changes. The login user `deploy` gets a shell that puts the stand-in
commands (`sudo`, `docker`, `systemctl`, ...) first on PATH; they run as that user. Needs
root (namespaces, mounts) and an sshd binary (openssh-server, or DJSCALE_SSHD).
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

SSHD = os.environ.get("DJSCALE_SSHD", "/usr/sbin/sshd")
USER, UID = "deploy", 64997
# what a host's /etc needs for sshd, a login and the commands the tests run
ETC_FILES = ("group", "nsswitch.conf", "ld.so.cache", "hosts", "localtime")


class SshSite:
    def __init__(self, stubs: dict[str, str]):
        """`stubs`: command name -> its script (bash or python, with its #! line)."""
        self.dir = Path(tempfile.mkdtemp(prefix="djscale-ssh-hosts-"))
        self.dir.chmod(0o755)
        self.tag = uuid.uuid4().hex[:6]
        self.namespaces: list[str] = []
        self.servers: list[subprocess.Popen] = []
        self.logs: dict[str, Path] = {}
        self.roots: dict[str, Path] = {}
        self.bin = self.dir / "bin"
        self.bin.mkdir()
        for name, script in stubs.items():
            (self.bin / name).write_text(script)
            (self.bin / name).chmod(0o755)
        self.shell = self.dir / "login-shell"
        self.shell.write_text(f'#!/bin/bash\nexport PATH={self.bin}:"$PATH"\nexec /bin/bash "$@"\n')
        self.shell.chmod(0o755)
        self.client_key = self.dir / "operator_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "",
                        "-f", str(self.client_key)], check=True)

    # -- network ----------------------------------------------------------------------
    def netns(self, name: str, *addresses: str) -> str:
        netns = f"djs-ops-{name}-{self.tag}"
        subprocess.run(["ip", "netns", "add", netns], check=True)
        self.namespaces.append(netns)
        _ip(netns, "link", "set", "lo", "up")
        for address in addresses:
            _ip(netns, "addr", "add", f"{address}/32", "dev", "lo")
        return netns

    def link(self, left: str, left_address: str, right: str, right_address: str) -> None:
        """A cable between two namespaces (one /24); nothing else is routed."""
        subprocess.run(["ip", "link", "add", "op0", "netns", left, "type", "veth", "peer",
                        "name", "op1", "netns", right], check=True)
        for netns, name, address in ((left, "op0", left_address),
                                     (right, "op1", right_address)):
            _ip(netns, "addr", "add", f"{address}/24", "dev", name)
            _ip(netns, "link", "set", name, "up")

    # -- hosts ------------------------------------------------------------------------
    def root(self, name: str) -> Path:
        """The host's own files: <root>/etc, var/lib, var/log, usr/local/sbin."""
        if name not in self.roots:
            root = self.roots[name] = self.dir / "hosts" / name
            for sub in ("etc", "var/lib", "var/log", "usr/local/sbin", "home"):
                (root / sub).mkdir(parents=True)
            for file in ETC_FILES:
                if os.path.exists(f"/etc/{file}"):
                    shutil.copy2(f"/etc/{file}", root / "etc" / file, follow_symlinks=True)
            # commands Debian reaches through /etc/alternatives (awk, ...)
            shutil.copytree("/etc/alternatives", root / "etc/alternatives", symlinks=True)
            passwd = Path("/etc/passwd").read_text()
            extra = f"{USER}:x:{UID}:{UID}::{root / 'home'}:{self.shell}\n"
            if not re.search(r"^sshd:", passwd, re.M):
                extra += "sshd:x:64999:65534::/run/sshd:/usr/sbin/nologin\n"
            (root / "etc/passwd").write_text(passwd + extra)
            shadow = root / "etc/shadow"
            shadow.write_text(Path("/etc/shadow").read_text() + f"{USER}:*:19000:0:99999:7:::\n")
            shadow.chmod(0o600)
        return self.roots[name]

    def make_tree_writable(self, name: str) -> None:
        """The stand-ins run as the login user: let them read and write the host's files."""
        for path in [self.root(name), *self.root(name).rglob("*")]:
            if path.name == "shadow" or path.is_symlink():
                continue
            path.chmod(0o777 if path.is_dir() else 0o666 | (path.stat().st_mode & 0o111))

    def serve(self, netns: str, name: str, address: str, port: int = 22) -> str:
        """sshd for host `name` at address:port with a new ed25519 host key; returns it
        ("ssh-ed25519 AAAA...")."""
        root = self.root(name)
        self.make_tree_writable(name)
        key = self.dir / f"{name}_host_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(key)],
                       check=True)
        authorized = self.dir / f"{name}_authorized_keys"
        authorized.write_text(Path(f"{self.client_key}.pub").read_text())
        conf = self.dir / f"{name}_sshd_config"
        conf.write_text(
            f"HostKey {key}\nListenAddress {address}:{port}\nPidFile none\nUsePAM no\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            f"AllowUsers {USER}\nAuthorizedKeysFile {authorized}\nStrictModes no\n"
            "LogLevel DEBUG1\nAllowTcpForwarding yes\n")
        log = self.logs[name] = self.dir / f"{name}_sshd.log"
        binds = [(root / "etc", "/etc"), (root / "var/lib", "/var/lib"),
                 (root / "var/log", "/var/log"), (root / "usr/local/sbin", "/usr/local/sbin")]
        script = " && ".join([*(f"mount --bind {src} {dst}" for src, dst in binds),
                              "mount -t tmpfs -o mode=0755 tmpfs /run", "mkdir -m 0755 /run/sshd",
                              f'exec {SSHD} -D -e -f "$0"'])
        with log.open("w") as out:
            self.servers.append(subprocess.Popen(
                ["ip", "netns", "exec", netns, "unshare", "-m", "--propagation", "private",
                 "sh", "-c", script, str(conf)], stdout=out, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 20
        while f"Server listening on {address} port {port}" not in log.read_text():
            assert self.servers[-1].poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        return " ".join(Path(f"{key}.pub").read_text().split()[:2])

    def close(self) -> None:
        for server in self.servers:
            server.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(timeout=10)
            if server.poll() is None:
                server.kill()
                server.wait()
        for netns in self.namespaces:
            # what the servers' sessions left running (a `logs --follow` whose client went
            # away writes nothing, so no SIGPIPE ends it): every process in the namespace
            pids = subprocess.run(["ip", "netns", "pids", netns], capture_output=True,
                                  text=True, check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", netns], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def _ip(netns: str, *args: str) -> None:
    subprocess.run(["ip", "-n", netns, *args], check=True)
