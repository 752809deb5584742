"""Pin every host's SSH host key: scan the stack's hosts, print the ssh.hostKeys to paste.

    python -m components.hostkeys --stack dev
    python -m components.hostkeys --stack-file path/to/Pulumi.dev.yaml [--identity KEYFILE]

Reads `Pulumi.<stack>.yaml` (never decrypting anything; no Pulumi needed), scans every host
(database, app servers, proxy) and the bastion at its address and SSH port with
`ssh-keyscan -t ed25519,ecdsa` (ed25519 when the host has one, else ecdsa; never RSA or DSA,
which the config refuses to pin), and prints:

* each key's SHA256 fingerprint (`ssh-keygen -lf`), to compare with the one the server
  itself shows: `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` (or ..._ecdsa_key.pub),
  run on the server through a channel you already trust (its console, a provider's web
  shell), not through this unverified scan;
* the stack file's `djscale:ssh:` block with `hostKeys` filled in, to replace the block.

With `ssh.bastion`, the bastion is scanned directly and every host through it, the way
pulumi-command reaches them (its proxied connections dial the hosts from the bastion): the
command logs in to the bastion as `ssh.bastion.user`, checking the key it has just scanned,
and runs `ssh-keyscan` there. The login uses `--identity`, else `ssh.privateKeyPath`, else
your SSH agent and default keys (the `sshPrivateKey` secret is not readable without Pulumi);
`~/.ssh/config` is not read. The bastion needs `ssh-keyscan` (package openssh-client).

Exit status: 0 when every host answered; 1 when one did not (each is named on stderr; the
keys that were found are printed, and a pin the stack already has for a silent host is
kept); 2 when the stack file is missing, its config is invalid or a tool is missing.
Nothing here imports pulumi.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import yaml

from components.config import ConfigError, SshTarget, StackConfig, parse_config, read_stack_file
from components.config.reader import decode_json
from components.config.rules import host_key_problem
from components.config.stack_file import NAMESPACE, assume_secrets

PROJECT_DIR = Path(__file__).resolve().parents[1]
# What to pin, best first. RSA and DSA are never scanned: the config refuses those pins
# (components/config/rules.py, host_key_problem).
KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521")
SERVER_KEY_FILES = {"ssh-ed25519": "/etc/ssh/ssh_host_ed25519_key.pub"}
ECDSA_KEY_FILE = "/etc/ssh/ssh_host_ecdsa_key.pub"


@dataclass(frozen=True)
class Scan:
    """What one machine answered: its key (None: no usable key, or no answer) and why not."""

    target: SshTarget
    key: Optional[str] = None  # "ssh-ed25519 AAAA..."
    fingerprint: str = ""  # "SHA256:..."
    error: str = ""
    via: Optional[SshTarget] = None  # the bastion it was scanned through


# --------------------------------------------------------------------------- commands as data

def keyscan_command(target: SshTarget, timeout: int) -> list[str]:
    return ["ssh-keyscan", "-T", str(timeout), "-p", str(target.port), "-t", "ed25519,ecdsa",
            "--", target.address]


def known_hosts_line(target: SshTarget, key: str) -> str:
    name = target.address if target.port == 22 else f"[{target.address}]:{target.port}"
    return f"{name} {key}\n"


def bastion_command(bastion: SshTarget, user: str, bastion_key: str, known_hosts: Path,
                    identity: Optional[str], timeout: int, remote: Sequence[str]) -> list[str]:
    """`ssh` to the bastion that accepts only `bastion_key` (written to `known_hosts`) and
    runs `remote` there; the user's ssh config is not read, so nothing but these options
    decides where it goes."""
    command = ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes",
               "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts}",
               "-o", "GlobalKnownHostsFile=/dev/null",
               "-o", f"HostKeyAlgorithms={bastion_key.split()[0]}",
               "-o", f"ConnectTimeout={timeout}", "-p", str(bastion.port), "-l", user]
    if identity:
        command += ["-i", identity, "-o", "IdentitiesOnly=yes"]
    return [*command, "--", bastion.address, shlex.join(remote)]


# --------------------------------------------------------------------------- scanning

def best_key(keyscan_output: str) -> Optional[str]:
    """The key to pin from ssh-keyscan's lines (`host type base64`): ed25519, else ecdsa."""
    found: dict[str, str] = {}
    for line in keyscan_output.splitlines():
        fields = line.split()
        if len(fields) >= 3 and not fields[0].startswith("#") and fields[1] in KEY_TYPES:
            found.setdefault(fields[1], f"{fields[1]} {fields[2]}")
    return next((found[kind] for kind in KEY_TYPES if kind in found), None)


def fingerprint(key: str) -> str:
    """SHA256 fingerprint as `ssh-keygen -lf` prints it (the server's own command)."""
    out = subprocess.run(["ssh-keygen", "-l", "-f", "-"], input=key + "\n", text=True,
                         capture_output=True, check=True).stdout
    return out.split()[1]


def _scan(target: SshTarget, command: list[str], timeout: int,
          via: Optional[SshTarget] = None) -> Scan:
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout * 3 + 10)
    except subprocess.TimeoutExpired:
        return Scan(target, error="timed out", via=via)
    key = best_key(proc.stdout)
    if key is None:
        return Scan(target, error=_why_no_key(proc.stderr, timeout), via=via)
    problem = host_key_problem(key)
    if problem:  # never print a pin the config would refuse
        return Scan(target, error=problem, via=via)
    return Scan(target, key, fingerprint(key), via=via)


def _why_no_key(stderr: str, timeout: int) -> str:
    """ssh-keyscan prints a `# host:port SSH-2.0-...` line for a server that answered and
    nothing for one that did not; ssh (to the bastion) says what went wrong itself."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if any(line.startswith("#") for line in lines):
        return "it answered, but offers no ed25519 or ecdsa host key"
    said = "; ".join(lines)
    return said or f"no answer within {timeout}s (down, filtered, or not an SSH server)"


def scan_stack(cfg: StackConfig, *, identity: Optional[str] = None,
               timeout: int = 10) -> list[Scan]:
    """Every machine of the stack scanned (in ssh_targets order): directly, or, with a
    bastion, the bastion directly and the hosts through it."""
    targets = cfg.ssh_targets()
    bastion = next((t for t in targets if t.name == "bastion"), None)
    hosts = [t for t in targets if t is not bastion]
    if bastion is None:
        return _parallel([(t, keyscan_command(t, timeout), None) for t in hosts], timeout)
    bastion_scan = _scan(bastion, keyscan_command(bastion, timeout), timeout)
    if bastion_scan.key is None:
        return [*(Scan(t, error=f"not scanned: the bastion {bastion.address} did not answer",
                       via=bastion) for t in hosts), bastion_scan]
    identity = identity or cfg.ssh.private_key_path
    with tempfile.TemporaryDirectory(prefix="djscale-hostkeys-") as tmp:
        known = Path(tmp) / "known_hosts"
        known.write_text(known_hosts_line(bastion, bastion_scan.key))
        jobs = [(t, bastion_command(bastion, cfg.ssh.bastion.user, bastion_scan.key, known,
                                    identity, timeout, keyscan_command(t, timeout)), bastion)
                for t in hosts]
        return [*_parallel(jobs, timeout), bastion_scan]


def _parallel(jobs: list[tuple[SshTarget, list[str], Optional[SshTarget]]],
              timeout: int) -> list[Scan]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(_scan, target, command, timeout, via)
                   for target, command, via in jobs]
        return [future.result() for future in futures]


# --------------------------------------------------------------------------- what it prints

def ssh_block(raw_ssh: Any, cfg: StackConfig, scans: list[Scan]) -> str:
    """The stack file's `djscale:ssh:` entry (indented as under `config:`) with every
    scanned key pinned; pins of machines that did not answer are kept as they were."""
    raw_ssh = decode_json(raw_ssh, dict)
    ssh = dict(raw_ssh) if isinstance(raw_ssh, dict) else {}
    pins = {address: key for address, key in cfg.ssh.host_keys}
    for scan in scans:
        if scan.key is not None:
            pins = {a: k for a, k in pins.items() if a.lower() != scan.target.address.lower()}
            pins[scan.target.address] = scan.key
    ssh["hostKeys"] = dict(sorted(pins.items()))
    if all(scan.key is not None for scan in scans):
        ssh.pop("insecureSkipHostKeyCheck", None)  # nothing is left unchecked
    text = yaml.safe_dump({f"{NAMESPACE}:ssh": ssh}, sort_keys=False, default_flow_style=False,
                          width=1 << 16, allow_unicode=True)
    return "".join(f"  {line}\n" for line in text.splitlines())


def listing(cfg: StackConfig, scans: list[Scan]) -> list[str]:
    """One line per machine: name, address:port, key type and fingerprint, and whether it
    matches what the stack pins now."""
    width = max(len(scan.target.name) for scan in scans)
    lines = []
    for scan in scans:
        where = f"{scan.target.address}:{scan.target.port}"
        if scan.key is None:
            lines.append(f"{scan.target.name:<{width}}  {where}  NO KEY: {scan.error}")
            continue
        kind = scan.key.split()[0]
        pinned = cfg.ssh.host_key_for(scan.target.address)
        status = ("" if pinned is None else "  (as pinned)" if pinned == scan.key
                  else "  CHANGED: the stack pins another key")
        via = f"  (through {scan.via.name})" if scan.via else ""
        lines.append(f"{scan.target.name:<{width}}  {where}  {kind}  {scan.fingerprint}"
                     f"{status}{via}")
    return lines


def report(stack_file: Path, raw: dict, cfg: StackConfig, scans: list[Scan]) -> str:
    """What the command prints: the fingerprints to compare, then the block to paste (none
    when no machine answered)."""
    kinds = {scan.key.split()[0] for scan in scans if scan.key}
    files = [SERVER_KEY_FILES.get(kind, ECDSA_KEY_FILE) for kind in KEY_TYPES if kind in kinds]
    out = [f"# SSH host keys of the hosts of {stack_file.name}, scanned by "
           "`python -m components.hostkeys`."]
    if not kinds:
        return "\n".join([*out, *(f"#   {line}" for line in listing(cfg, scans))]) + "\n"
    out += ["# Before you paste: compare each fingerprint with the one the server itself shows,",
            "# run on the server through a channel you already trust (its console):"]
    out += [f"#   ssh-keygen -lf {path}" for path in dict.fromkeys(files)]
    out += ["#", *(f"#   {line}" for line in listing(cfg, scans)), "#",
            f"# Then replace the `{NAMESPACE}:ssh:` block of {stack_file.name} (under `config:`) "
            "with:"]
    if any(scan.key is None for scan in scans):
        out.append("# (a machine without a key here keeps the pin it had, if it had one)")
    return "\n".join(out) + "\n" + ssh_block(raw.get("ssh"), cfg, scans)


# --------------------------------------------------------------------------- main

def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.hostkeys",
                                     description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--stack", help="stack name: reads Pulumi.<stack>.yaml")
    source.add_argument("--stack-file", type=Path, help="path of a Pulumi.<stack>.yaml")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR,
                        help="where Pulumi.<stack>.yaml lives (default: the djscale project)")
    parser.add_argument("--identity", help="private key for the bastion login "
                                           "(default: ssh.privateKeyPath, else your SSH agent)")
    parser.add_argument("--timeout", type=int, default=10, help="seconds per connection")
    args = parser.parse_args(argv)

    for tool in ("ssh-keyscan", "ssh-keygen", "ssh"):
        if shutil.which(tool) is None:
            print(f"{tool} not found: install openssh-client", file=sys.stderr)
            return 2
    stack_file = args.stack_file or args.project_dir / f"Pulumi.{args.stack}.yaml"
    if not stack_file.is_file():
        print(f"no stack file {stack_file}", file=sys.stderr)
        return 2
    raw, present = read_stack_file(stack_file)
    try:  # the hosts need no pin yet: pinning them is what this is for
        cfg = parse_config(raw, assume_secrets(raw, present)[0], check_files=False,
                           require_host_keys=False)
    except ConfigError as error:
        print(f"{stack_file}: {error}", file=sys.stderr)
        return 2

    scans = scan_stack(cfg, identity=args.identity, timeout=args.timeout)
    print(report(stack_file, raw, cfg, scans), end="")
    for scan in scans:
        where = f"{scan.target.name} ({scan.target.address}:{scan.target.port})"
        if scan.key is None:
            print(f"{where}: no host key: {scan.error}", file=sys.stderr)
        elif cfg.ssh.host_key_for(scan.target.address) not in (None, scan.key):
            print(f"{where}: WARNING: its key is not the one {stack_file.name} pins. Paste the "
                  "new one only if the server was reinstalled and its fingerprint matches the "
                  "server's own: otherwise someone may be answering in its place.",
                  file=sys.stderr)
    return 0 if all(scan.key is not None for scan in scans) else 1


if __name__ == "__main__":
    sys.exit(main())
