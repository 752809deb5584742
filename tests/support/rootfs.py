"""Local base images for the tests: no registry is reachable, so we debootstrap them.

`ensure_base_image(engine, tag, packages, suite=...)` debootstraps a Debian suite (minbase;
bookworm unless told: `SUITES` lists the ones the test bed runs on) with the given packages,
makes the sandbox's intercepting CA trusted (TEST-ONLY images: the product never trusts it),
and `docker import`s the tree. The rootfs tarball is cached by a hash of its recipe (suite
included) under STATE_ROOT/rootfs as `<suite>-<hash>.tar`, so only the first run of a
recipe pays the ~35-90 s debootstrap. The image tag is `<suite>-<hash>`.
"""
from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Sequence

from .dockerd import STATE_ROOT, DockerEngine

MIRROR = "http://deb.debian.org/debian"
DEFAULT_SUITE = "bookworm"
SUITES = ("bookworm", "trixie")  # Debian 12, Debian 13
SANDBOX_CA_DIR = Path("/usr/local/share/ca-certificates")
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
RECIPE_VERSION = "1"  # bump to invalidate every cached rootfs


def check_suite(suite: str) -> str:
    if suite not in SUITES:
        raise ValueError(f"unknown Debian suite {suite!r}: one of {', '.join(SUITES)}")
    return suite


def _recipe_hash(packages: Sequence[str], setup_script: str, changes: Sequence[str],
                 suite: str) -> str:
    cas = sorted(p.read_bytes().hex() for p in SANDBOX_CA_DIR.glob("*.crt"))
    blob = "\n".join([RECIPE_VERSION, suite, *sorted(packages), setup_script, *changes, *cas])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _chroot(root: Path, script: str) -> None:
    subprocess.run(["chroot", str(root), "/bin/sh", "-euc", script], check=True,
                   capture_output=True, text=True)


def build_rootfs_tarball(packages: Sequence[str], setup_script: str = "",
                         changes: Sequence[str] = (), suite: str = DEFAULT_SUITE) -> Path:
    """Return a cached tarball of a `suite` rootfs with `packages` and the sandbox CA."""
    check_suite(suite)
    cache = STATE_ROOT / "rootfs"
    cache.mkdir(parents=True, exist_ok=True)
    key = _recipe_hash(packages, setup_script, changes, suite)
    tarball = cache / f"{suite}-{key}.tar"
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test runs share the cache
        if tarball.exists():
            return tarball
        packages = sorted({"ca-certificates", *packages})
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            root = Path(tmp) / "root"
            proc = subprocess.run(
                ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}",
                 suite, str(root), MIRROR], capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"debootstrap failed:\n{proc.stdout[-3000:]}\n{proc.stderr}")
            for ca in SANDBOX_CA_DIR.glob("*.crt"):  # test-only trust of the egress proxy
                shutil.copy(ca, root / "usr/local/share/ca-certificates" / ca.name)
            _chroot(root, "update-ca-certificates >/dev/null")
            if setup_script:
                _chroot(root, setup_script)
            _chroot(root, "apt-get clean; rm -rf /var/lib/apt/lists/*")
            partial = tarball.with_suffix(".partial")
            subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(partial), "."],
                           check=True)
            partial.rename(tarball)
    return tarball


def ensure_base_image(engine: DockerEngine, tag: str, packages: Sequence[str],
                      setup_script: str = "", changes: Sequence[str] = (),
                      suite: str = DEFAULT_SUITE) -> str:
    """Import (once) a test-only base image of Debian `suite` and return its tag.

    `changes` are extra `docker import --change` lines (ENV, CMD, ...). Every image gets
    PIP_CERT / REQUESTS_CA_BUNDLE / SSL_CERT_FILE pointing at the system bundle, which holds
    the sandbox CA, so pip and requests inside builds can reach PyPI through the proxy.
    """
    all_changes = [f"ENV PIP_CERT={CA_BUNDLE}", f"ENV REQUESTS_CA_BUNDLE={CA_BUNDLE}",
                   f"ENV SSL_CERT_FILE={CA_BUNDLE}", *changes]
    key = _recipe_hash(packages, setup_script, all_changes, check_suite(suite))
    full_tag = f"{tag.split(':')[0]}:{suite}-{key}"  # suite + recipe hash: a change rebuilds
    if engine.image_exists(full_tag):
        return full_tag
    tarball = build_rootfs_tarball(packages, setup_script, all_changes, suite)
    args = ["import"]
    for change in all_changes:
        args += ["--change", change]
    with open(tarball, "rb") as f:
        proc = subprocess.run(["docker", *args, "-", full_tag], stdin=f, env=engine.env(),
                              capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"docker import {full_tag} failed: {proc.stderr}")
    return full_tag
