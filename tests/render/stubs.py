"""Stand-in commands for running rendered scripts in a sandbox: each records its arguments
(one line per call) and answers as told through environment variables."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

STUB = """#!/bin/bash
printf '%s\\n' "{name} $*" >> "$STUB_LOG"
{body}
"""


def make_stubs(bin_dir: Path, bodies: dict[str, str]) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, body in bodies.items():
        path = bin_dir / name
        path.write_text(STUB.format(name=name, body=body))
        path.chmod(0o755)


def run_sandboxed(script: str, bin_dir: Path, log: Path, *args: str, env: dict = None,
                  private_mounts: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run `script` with the stubs first on PATH, in a mount namespace where each of
    `private_mounts` is an empty tmpfs (so the script's fixed paths touch nothing real)."""
    mounts = "".join(f"mount -t tmpfs djscale-test {p} && " for p in private_mounts)
    environment = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", STUB_LOG=str(log),
                       **(env or {}))
    return subprocess.run(
        ["unshare", "-m", "bash", "-c",
         f"mount --make-rprivate / && {mounts}exec bash -c \"$0\" djscale \"$@\"", script, *args],
        env=environment, capture_output=True, text=True)


def calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []
