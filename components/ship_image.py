"""Ship the app image from the server that built it to another app server, through the
operator's machine: `docker save` there, `docker load` here, over SSH. One build per release,
the same image id on every server, no registry needed.

    python3 -m components.ship_image < request.json

Run by the deploy as a pulumi-command `local.Command` on the machine that runs `pulumi up`,
with the request on stdin (a secret: it holds the SSH key):

    {"image": "sha256:...", "source": CONNECTION, "target": CONNECTION, "key": "<private key>"}
    CONNECTION = {"host", "port", "user", "hostKey", "proxy": CONNECTION or null}

The key never touches the disk: a private `ssh-agent` (its socket in a 0700 temporary
directory) holds it for the two `ssh` processes and is stopped at the end. Host keys are the
pinned ones only (a temporary known_hosts; StrictHostKeyChecking=yes), ~/.ssh/config is not
read (-F /dev/null). A target that already holds the image is left alone. Needs the OpenSSH
client (ssh, ssh-agent, ssh-add) on the operator's machine. Only the standard library.
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional


class ShipError(RuntimeError):
    pass


def known_host(connection: dict) -> str:
    """The known_hosts line of `connection`'s pinned key ("" when it has none)."""
    name = connection["host"] if int(connection.get("port", 22)) == 22 else \
        f"[{connection['host']}]:{int(connection['port'])}"
    key = connection.get("hostKey")
    return f"{name} {key.strip()}\n" if key else ""


def ssh_command(connection: dict, known_hosts: Path, remote: str, *,
                connect_timeout: int = 15, tty: bool = False) -> list[str]:
    """`ssh` to `connection` running `remote`: pinned host keys only, no user config, the
    jump host (proxy) with the same rules; a dead connection is given up after three
    unanswered keepalives (45 s). `tty`: a terminal on the server (`-tt`), for interactive
    commands (components/ops)."""
    options = ["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=no",
               "-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
               "-o", f"ConnectTimeout={int(connect_timeout)}", "-o", "ServerAliveInterval=15",
               "-o", "StrictHostKeyChecking=yes" if connection.get("hostKey") else
               "StrictHostKeyChecking=no"]
    proxy = connection.get("proxy")
    if proxy:
        jump = ["ssh", *options, "-p", str(int(proxy.get("port", 22))), "-W", "%h:%p",
                f"{proxy['user']}@{proxy['host']}"]
        options += ["-o", "ProxyCommand=" + shlex.join(jump)]
    terminal = ["-tt"] if tty else []
    return ["ssh", *options, *terminal, "-p", str(int(connection.get("port", 22))),
            f"{connection['user']}@{connection['host']}", remote]


class Agent:
    """A private ssh-agent holding one key, stopped on exit."""

    def __init__(self, directory: Path, key: str):
        self.socket = directory / "agent.sock"
        started = subprocess.run(["ssh-agent", "-s", "-a", str(self.socket)],
                                 capture_output=True, text=True, check=True)
        self.pid = int(started.stdout.split("SSH_AGENT_PID=")[1].split(";")[0])
        self.env = dict(os.environ, SSH_AUTH_SOCK=str(self.socket))
        added = subprocess.run(["ssh-add", "-q", "-"], input=key if key.endswith("\n")
                               else key + "\n", env=self.env, capture_output=True, text=True)
        if added.returncode != 0:
            self.stop()
            raise ShipError(f"ssh-add refused the key: {added.stderr.strip()}")

    def stop(self) -> None:
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def _holds(target: dict, image: str, known: Path, env: dict) -> bool:
    check = subprocess.run(ssh_command(target, known, "sudo -n docker image inspect "
                                       f"{shlex.quote(image)} >/dev/null 2>&1"),
                           env=env, capture_output=True, text=True, timeout=120)
    if check.returncode == 255:
        raise ShipError(f"ssh {target['user']}@{target['host']}: {check.stderr.strip()}")
    return check.returncode == 0


def ship(request: dict) -> str:
    """Copy request["image"] from source to target unless the target holds it; a message."""
    image, source, target = request["image"], request["source"], request["target"]
    with tempfile.TemporaryDirectory(prefix="djscale-ship-") as tmp:
        directory = Path(tmp)
        os.chmod(directory, 0o700)
        known = directory / "known_hosts"
        known.write_text("".join(known_host(c) for c in (
            source, target, source.get("proxy") or {}, target.get("proxy") or {}) if c))
        agent = Agent(directory, request["key"])
        try:
            if _holds(target, image, known, agent.env):
                return f"{target['host']} already holds {image[:19]}"
            save = subprocess.Popen(
                ssh_command(source, known, f"sudo -n docker save {shlex.quote(image)}"),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=agent.env)
            load = subprocess.run(
                ssh_command(target, known, "sudo -n docker load --quiet"), stdin=save.stdout,
                capture_output=True, text=True, env=agent.env, timeout=3600)
            save.stdout.close()
            save_err = save.stderr.read().decode(errors="replace")
            if save.wait(timeout=60) != 0:
                raise ShipError(f"docker save on {source['host']} failed: {save_err.strip()}")
            if load.returncode != 0:
                raise ShipError(f"docker load on {target['host']} failed: "
                                f"{load.stderr.strip()}")
            if not _holds(target, image, known, agent.env):
                raise ShipError(f"{target['host']} does not hold {image} after the load")
            return f"shipped {image[:19]} from {source['host']} to {target['host']}"
        finally:
            agent.stop()


def main(stdin: Optional[str] = None) -> int:
    try:
        print(ship(json.loads(sys.stdin.read() if stdin is None else stdin)))
    except (ShipError, subprocess.SubprocessError, KeyError, ValueError) as error:
        print(f"djscale: shipping the app image failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
