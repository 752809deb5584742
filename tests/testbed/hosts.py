"""The bed's hosts: systemd containers that behave like small Debian 12 or 13 servers (the
bed's suite, see images.py).

Run options from shared/ENVIRONMENT.md ("Hosts as systemd containers"): `--privileged` fails
on this machine kind (the bounding set lacks CAP_SYS_RESOURCE), so every other capability,
unconfined seccomp/apparmor/system paths, all devices, the host cgroup namespace and tmpfs
/run. App and proxy hosts keep /var/lib/docker on a machine directory (overlay2 needs a real
filesystem under the nested engine).
"""
from __future__ import annotations

import json
import shlex
import subprocess
import time
from pathlib import Path

from tests.support.dockerd import DockerEngine

from . import layout

LABEL = "djscale.testbed=1"

HOST_RUN_OPTIONS = [
    "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--security-opt", "systempaths=unconfined",
    "--device-cgroup-rule", "a *:* rwm", "--cgroupns=host",
    "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs", "/run", "--tmpfs", "/run/lock",
    "--tmpfs", "/tmp:rw,exec,nosuid,nodev",  # a real server's /tmp runs scripts
    "--stop-signal", "SIGRTMIN+3",
]


def has_nested_docker(role: str) -> bool:
    return role.startswith(("proxy", "app"))  # proxy2: test_92's second stack's proxy


def run_host(engine: DockerEngine, image: str, role: str, address: str) -> str:
    """Start one host container; returns its name."""
    name = layout.container_name(role)
    args = ["run", "-d", "--name", name, "--hostname", role, "--label", LABEL,
            "--network", layout.NETWORK, "--ip", address, *HOST_RUN_OPTIONS]
    if has_nested_docker(role):
        docker_dir = layout.host_docker_dir(role)
        docker_dir.mkdir(parents=True, exist_ok=True)
        args += ["-v", f"{docker_dir}:/var/lib/docker"]
    engine.docker(*args, image)
    return name


def run_service(engine: DockerEngine, image: str, role: str, extra: list[str] = ()) -> str:
    """Start a plain (non-systemd) bed service container from the services image."""
    from .images import SERVICE_COMMANDS

    name = layout.container_name(role)
    engine.docker("run", "-d", "--name", name, "--hostname", role, "--label", LABEL,
                  "--network", layout.NETWORK, "--ip", layout.SERVICE_ADDRESSES[role],
                  *extra, image, *SERVICE_COMMANDS[role])
    return name


def exec_sh(engine: DockerEngine, name: str, script: str, check: bool = True,
            input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a shell script as root inside a bed container (docker exec, not SSH)."""
    args = ["exec"] + (["-i"] if input is not None else []) + [name, "bash", "-c", script]
    proc = engine.docker(*args, check=False, input=input, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"[{name}] {script[:200]!r} failed ({proc.returncode}):\n"
                           f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc


def wait_until(what: str, probe, timeout: float, interval: float = 0.5):
    """Call `probe()` until it returns a truthy value; raise naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = probe()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001  (the last error goes into the message)
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"{what}: not ready after {timeout:.0f}s" + (f" ({last})" if last else ""))


def prepare_host(engine: DockerEngine, role: str, public_key: str, nameservers: list[str],
                 timeout: float = 90) -> str:
    """Wait for systemd and sshd, install the bed's key for the deploy user, set the resolver
    (and for Docker hosts the registry trust). Returns the host's ed25519 public host key."""
    name = layout.container_name(role)

    def booted():
        state = exec_sh(engine, name, "systemctl is-system-running || true",
                        timeout=15).stdout.strip()
        if state in ("running", "degraded"):
            return state
        return None

    state = wait_until(f"{role}: systemd boot", booted, timeout)
    if state == "degraded":
        failed = exec_sh(engine, name, "systemctl --failed --no-legend --plain").stdout
        raise RuntimeError(f"{role}: systemd is degraded, failed units:\n{failed}")
    user = layout.SSH_USER
    home = f"/home/{user}"
    exec_sh(engine, name,
            f"install -d -m 700 -o {user} -g {user} {home}/.ssh && "
            f"cat > {home}/.ssh/authorized_keys && "
            f"chown {user}:{user} {home}/.ssh/authorized_keys && "
            f"chmod 600 {home}/.ssh/authorized_keys", input=public_key + "\n")
    set_resolver(engine, role, nameservers)
    if has_nested_docker(role):
        registry = f"{layout.SERVICE_ADDRESSES['registry']}:{layout.REGISTRY_PORT}"
        # The host's engine puts its containers' cgroups inside the host's own (the machine's
        # cgroup tree is shared: --cgroupns=host), so they go away with the host.
        host_id = engine.docker("inspect", "-f", "{{.Id}}", name).stdout.strip()
        daemon = {"insecure-registries": [registry],
                  "cgroup-parent": f"/docker/{host_id}/docker"}
        exec_sh(engine, name, "mkdir -p /etc/docker && cat > /etc/docker/daemon.json",
                input=json.dumps(daemon, indent=2) + "\n")
    wait_until(f"{role}: sshd active",
               lambda: exec_sh(engine, name, "systemctl is-active ssh", check=False,
                               timeout=15).returncode == 0, 30)
    return exec_sh(engine, name, "cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub"
                   ).stdout.strip()


def set_resolver(engine: DockerEngine, role: str, nameservers: list[str]) -> None:
    """A real server's resolver, not Docker's embedded 127.0.0.11 (which nested containers
    cannot reach): the machine's upstream nameservers."""
    resolv = "".join(f"nameserver {ns}\n" for ns in nameservers)
    exec_sh(engine, layout.container_name(role), "cat > /etc/resolv.conf", input=resolv)


def reboot_host(engine: DockerEngine, role: str, stop_timeout: int = 120) -> tuple[float, float]:
    """A clean reboot: systemd shuts the host down (the stop signal, SIGRTMIN+3: every unit
    stopped), then it boots again, in a new network namespace. Docker writes its own
    /etc/resolv.conf into a container it starts; a server keeps its own, so the bed's is put
    back at once. Returns (seconds the shutdown took, epoch of the power-on)."""
    name = layout.container_name(role)
    started = time.time()
    engine.docker("stop", "-t", str(stop_timeout), name, timeout=stop_timeout + 60)
    shutdown = time.time() - started
    power_on = time.time()
    engine.docker("start", name)
    set_resolver(engine, role, machine_nameservers())
    return shutdown, power_on


def machine_nameservers() -> list[str]:
    servers = []
    for line in Path("/etc/resolv.conf").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver" and not parts[1].startswith("127."):
            servers.append(parts[1])
    return servers or ["10.255.255.53"]


# --- SSH from the machine (the admin source) -------------------------------------------------
def known_hosts_path() -> Path:
    return layout.STATE_DIR / "ssh" / "known_hosts"


def ssh_options() -> list[str]:
    return ["-i", str(layout.ssh_key_path()), "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={known_hosts_path()}",
            "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=5",
            "-o", "LogLevel=ERROR"]


def ssh(address: str, command: str, check: bool = True, timeout: float = 120,
        input: str | None = None) -> subprocess.CompletedProcess:
    """Run `command` on a bed host as the deploy user over real SSH from the machine."""
    proc = subprocess.run(["ssh", *ssh_options(), f"{layout.SSH_USER}@{address}", command],
                          capture_output=True, text=True, timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ssh {address} {command[:200]!r} failed ({proc.returncode}):\n"
                           f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc


def sudo_script(address: str, script: str, check: bool = True, timeout: float = 300):
    """Run a bash script as root on a bed host over SSH (sudo), script on stdin."""
    return ssh(address, "sudo bash -s", check=check, timeout=timeout, input=script)


def quote(value: str) -> str:
    return shlex.quote(value)
