"""A Docker engine that the tests start and stop themselves.

No engine runs on a fresh machine of ours and no registry is reachable, so the tests start
Debian's `dockerd` with private data/exec roots, its own socket and its own bridge
(`djstest0`, 10.213.0.0/24), and build every image locally (tests/support/rootfs.py).

dockerd changes the machine (ip_forward, the FORWARD policy, DOCKER* iptables chains): the
engine records what it found and puts it back on stop.

Set DJSCALE_DOCKER_HOST to reuse an engine that is already running; an engine already
answering on our default socket is reused too. A reused engine is never stopped by us.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

STATE_ROOT = Path(os.environ.get("DJSCALE_TEST_STATE", "/var/lib/djscale-test"))
BRIDGE = "djstest0"
BRIDGE_CIDR = "10.213.0.1/24"
ADDRESS_POOL = "10.214.0.0/16"  # user-defined networks (the test bed's) come from here
DOCKER_CHAINS = {
    "filter": ["DOCKER-USER", "DOCKER-ISOLATION-STAGE-1", "DOCKER-ISOLATION-STAGE-2", "DOCKER"],
    "nat": ["DOCKER"],
}


def _run(args, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("check", True)
    kw.setdefault("text", True)
    kw.setdefault("capture_output", True)
    return subprocess.run(args, **kw)


class DockerEngine:
    def __init__(self, root: Path = STATE_ROOT / "engine", host: str | None = None):
        self.root = Path(root)
        self.socket = self.root / "docker.sock"
        self.host = host or f"unix://{self.socket}"
        self.owned = host is None
        self._proc: subprocess.Popen | None = None
        # what dockerd changes on the machine, as found before start (see machine_state)
        self.saved_machine: dict[str, str] = {}

    # -- CLI ---------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["DOCKER_HOST"] = self.host
        env["DOCKER_BUILDKIT"] = "0"  # engine 20.10, no buildx in Debian 12
        return env

    def docker(self, *args: str, check: bool = True, input: str | bytes | None = None,
               timeout: float | None = 900, text: bool = True,
               capture: bool = True) -> subprocess.CompletedProcess:
        """Run the docker CLI against this engine. Raises with stderr on failure."""
        proc = subprocess.run(["docker", *args], env=self.env(), input=input, text=text,
                              capture_output=capture, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} failed ({proc.returncode}):\n"
                               f"{proc.stdout}\n{proc.stderr}")
        return proc

    def image_exists(self, tag: str) -> bool:
        return self.docker("image", "inspect", tag, check=False).returncode == 0

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 60) -> None:
        if not self.owned:
            self.docker("version")
            return
        if shutil.which("dockerd") is None:
            raise RuntimeError("dockerd not found: apt-get install docker.io")
        self.saved_machine = machine_state()
        self._ensure_bridge()
        for sub in ("data", "exec"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._stop_stale()
        config = {
            "bridge": BRIDGE,
            "default-address-pools": [{"base": ADDRESS_POOL, "size": 24}],
            "storage-driver": "overlay2",
            "log-driver": "json-file",
            "features": {"buildkit": False},
        }
        (self.root / "daemon.json").write_text(json.dumps(config, indent=2))
        log = open(self.root / "dockerd.log", "ab")
        self._proc = subprocess.Popen(
            ["dockerd", "--config-file", str(self.root / "daemon.json"),
             "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
             "--pidfile", str(self.root / "dockerd.pid"), "-H", self.host],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"dockerd exited: see {self.root / 'dockerd.log'}")
            if self.docker("version", check=False, timeout=10).returncode == 0:
                return
            time.sleep(0.5)
        raise RuntimeError(f"dockerd did not answer in {timeout}s: see {self.root}/dockerd.log")

    def stop(self) -> None:
        """Stop the engine and put the machine back as `saved_machine` says. Also stops an
        engine that another process of ours started at this root (found by its pidfile):
        set `saved_machine` to what that process recorded first."""
        if not self.owned:
            return
        if self._proc is None:
            self._stop_stale()
        else:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        self._restore_host_state()

    def _stop_stale(self) -> None:
        """A previous run killed hard may have left its dockerd behind: stop it."""
        pidfile = self.root / "dockerd.pid"
        if not pidfile.exists():
            return
        try:
            pid = int(pidfile.read_text().strip())
            os.kill(pid, 15)
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.2)
        except (ValueError, ProcessLookupError):
            pass
        pidfile.unlink(missing_ok=True)

    # -- what dockerd changes on the machine -------------------------------------------------
    def _ensure_bridge(self) -> None:
        if _run(["ip", "link", "show", BRIDGE], check=False).returncode != 0:
            _run(["ip", "link", "add", BRIDGE, "type", "bridge"])
            _run(["ip", "addr", "add", BRIDGE_CIDR, "dev", BRIDGE])
        _run(["ip", "link", "set", BRIDGE, "up"])

    def _restore_host_state(self) -> None:
        for table, chains in DOCKER_CHAINS.items():
            rules = _run(["iptables", "-t", table, "-S"]).stdout.splitlines()
            for rule in rules:  # delete the jumps into docker chains from built-in chains
                parts = rule.split()
                if parts[:1] == ["-A"] and parts[1] not in chains and any(
                        f"-j {c}" in rule for c in chains):
                    _run(["iptables", "-t", table, "-D", *parts[1:]], check=False)
            for chain in chains:
                _run(["iptables", "-t", table, "-F", chain], check=False)
            for chain in chains:
                _run(["iptables", "-t", table, "-X", chain], check=False)
        # rules dockerd wrote straight into FORWARD for its bridge (not via its chains)
        for rule in _run(["iptables", "-S", "FORWARD"]).stdout.splitlines():
            if rule.startswith("-A ") and BRIDGE in rule.split():
                _run(["iptables", "-D", *rule.split()[1:]], check=False)
        # dockerd's MASQUERADE rules for its subnets live in nat POSTROUTING
        for rule in _run(["iptables", "-t", "nat", "-S", "POSTROUTING"]).stdout.splitlines():
            if "MASQUERADE" in rule and ("10.213." in rule or "10.214." in rule):
                _run(["iptables", "-t", "nat", "-D", *rule.split()[1:]], check=False)
        saved = self.saved_machine
        if "forward_policy" in saved:
            _run(["iptables", "-P", "FORWARD", saved["forward_policy"]], check=False)
        if "ip_forward" in saved:
            Path("/proc/sys/net/ipv4/ip_forward").write_text(saved["ip_forward"] + "\n")
        _run(["ip", "link", "del", BRIDGE], check=False)
        # dockerd bind-mounts its data root onto itself (private propagation): undo it
        data = str(self.root / "data")
        if _run(["findmnt", "-n", data], check=False).returncode == 0:
            _run(["umount", data], check=False)


def machine_state() -> dict[str, str]:
    """What dockerd changes on the machine and `stop` puts back."""
    policy = _run(["iptables", "-S", "FORWARD"]).stdout.splitlines()[0]  # "-P FORWARD ACCEPT"
    return {"ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text().strip(),
            "forward_policy": policy.split()[-1]}


def engine_from_environment() -> DockerEngine:
    """The engine named by DJSCALE_DOCKER_HOST, else one already answering on our default
    socket (a developer's, or another test run's: shared, never stopped by us), else a new
    one that this process owns."""
    host = os.environ.get("DJSCALE_DOCKER_HOST")
    if host:
        return DockerEngine(host=host)
    default = DockerEngine()
    if default.socket.exists() and default.docker("version", check=False,
                                                  timeout=10).returncode == 0:
        return DockerEngine(host=default.host)
    return default
