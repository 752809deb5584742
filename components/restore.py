"""Restore a database backup with the site in maintenance mode, from the operator's machine.

    python3 -m components.restore --stack dev [latest|KEY] [--identity KEYFILE]
    python3 -m components.restore --stack-file path/to/Pulumi.dev.yaml --list

Reads `Pulumi.<stack>.yaml` (nothing is decrypted; no Pulumi needed) and, over SSH with the
pinned host keys only (as components/ship_image.py connects):
  1. on the proxy, `djscale-maintenance on` (unless it is on already): clients get the
     maintenance page, admin networks still reach the app;
  2. on the database host, `djscale-restore KEY` (the newest backup by default): into a new
     database, swapped in by renaming (components/render/backups.py, restore.sh.j2); its
     output is shown as it runs;
  3. on the proxy, `djscale-maintenance off`, whether the restore succeeded or not (a
     failed restore changed nothing), unless maintenance mode was on before step 1.
`--list` only lists the backups. The SSH key: `--identity`, else `ssh.privateKeyPath`, else
your SSH agent (the `sshPrivateKey` secret is not readable without Pulumi). Exit status:
the restore's; 2 for a stack this cannot restore. Nothing here imports pulumi.
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Optional

from components.config import ConfigError, StackConfig, parse_config, read_stack_file
from components.config.stack_file import assume_secrets
from components.plans.app_server import ssh_connection
from components.render.backups import RESTORE_PATH
from components.render.maintenance import MAINTENANCE_COMMAND_PATH
from components.ship_image import Agent, ShipError, known_host, ssh_command

PROJECT_DIR = Path(__file__).resolve().parents[1]
# run(host name, remote command, stream output) -> (exit status, stdout)
Runner = Callable[[str, str, bool], tuple[int, str]]


def maintenance_command(action: str) -> str:
    return f"sudo -n {MAINTENANCE_COMMAND_PATH} {action}"


def restore_command(choice: str) -> str:
    return f"sudo -n {RESTORE_PATH} {shlex.quote(choice)}"


def restore(run: Runner, choice: str, say: Callable[[str], None] = print) -> int:
    """The three steps, as commands for `run` (tested with a stand-in)."""
    if choice == "--list":
        return run("db", restore_command("--list"), True)[0]
    status, out = run("proxy", maintenance_command("status"), False)
    if status != 0:
        say(f"djscale: the proxy's maintenance switch did not answer (exit {status}); "
            "nothing was changed")
        return 1
    was_on = out.startswith("on")
    if was_on:
        say(f"djscale: maintenance mode is already {out.strip()}: it stays on afterwards")
    elif run("proxy", maintenance_command("on"), True)[0] != 0:
        say("djscale: maintenance mode could not be switched on; nothing was changed")
        return 1
    try:
        status = run("db", restore_command(choice), True)[0]
    finally:
        if not was_on and run("proxy", maintenance_command("off"), True)[0] != 0:
            say("djscale: maintenance mode is STILL ON: switch it off on the proxy with "
                f"`{maintenance_command('off')}`")
            status = status or 1
    say("djscale: restore " + ("done" if status == 0 else f"FAILED (exit {status})"))
    return status


def load(args: argparse.Namespace) -> StackConfig:
    path = Path(args.stack_file) if args.stack_file else PROJECT_DIR / f"Pulumi.{args.stack}.yaml"
    raw, present = read_stack_file(path)
    secrets, _ = assume_secrets(raw, present)
    cfg = parse_config(raw, secrets, check_files=False)
    if cfg.database.host is None or not cfg.backups.enabled:
        raise ConfigError(["backups: this stack backs up no database (backups.enabled is "
                           "false, or database.stack is set): restore where it is deployed"])
    return cfg


def ssh_runner(cfg: StackConfig, directory: Path, env: dict) -> Runner:
    hosts = {"db": ssh_connection(cfg, cfg.database.host), "proxy": ssh_connection(cfg, cfg.proxy)}
    known = directory / "known_hosts"
    known.write_text("".join(known_host(c) for h in hosts.values()
                             for c in (h, h.get("proxy") or {}) if c))

    def run(host: str, command: str, stream: bool) -> tuple[int, str]:
        argv = ssh_command(hosts[host], known, command)
        if stream:
            return subprocess.run(argv, env=env).returncode, ""
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        sys.stderr.write(done.stderr)
        return done.returncode, done.stdout
    return run


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m components.restore",
                                     description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack")
    where.add_argument("--stack-file")
    parser.add_argument("--identity", help="private key file (else ssh.privateKeyPath, "
                                           "else your SSH agent)")
    parser.add_argument("--list", action="store_true", help="list the backups only")
    parser.add_argument("backup", nargs="?", default="latest",
                        help="the backup's key, or latest (the default)")
    args = parser.parse_args(argv)
    try:
        cfg = load(args)
    except (ConfigError, OSError) as error:
        print(f"djscale: {error}", file=sys.stderr)
        return 2
    identity = args.identity or cfg.ssh.private_key_path
    with tempfile.TemporaryDirectory(prefix="djscale-restore-") as tmp:
        directory = Path(tmp)
        os.chmod(directory, 0o700)
        agent = None
        env = dict(os.environ)
        if identity:
            try:
                agent = Agent(directory, Path(identity).expanduser().read_text())
            except (ShipError, OSError) as error:
                print(f"djscale: {error}", file=sys.stderr)
                return 2
            env = agent.env
        try:
            return restore(ssh_runner(cfg, directory, env),
                           "--list" if args.list else args.backup)
        finally:
            if agent is not None:
                agent.stop()


if __name__ == "__main__":
    sys.exit(main())
