"""Shared pieces of the stand-in engine: errors, key paths, the Handler interface.

The registration record and the value helpers are the harness the mock tests use too
(tests/support/pulumi_runtime.py), re-exported here for the handlers. The engine's `plain`
is `plain_data` there: secrets unwrapped, integral floats as ints, assets as dicts.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from tests.support.pulumi_runtime import (  # noqa: F401 (re-exported for the handlers)
    Registration, is_secret, plain_data as plain, secret,
)


# Resource operations at once: the CLI's default `--parallel`, 4 x GOMAXPROCS
# (pulumi/pulumi pkg/cmd/pulumi/operations/up.go, defaultParallel).
PARALLEL = 4 * (os.cpu_count() or 1)


class Refused(Exception):
    """The program (or a state) asks for something this stand-in does not implement."""


class DeployError(Exception):
    """A resource operation failed, or Pulumi would refuse it (e.g. a protected resource)."""


class ProtectedDelete(DeployError):
    """A delete of a protected resource: Pulumi's `deleteProtectedError`
    (pulumi/pulumi pkg/resource/deploy/step.go, DeleteStep.Apply), with its message."""

    def __init__(self, urn: str):
        super().__init__(
            f'resource "{urn}" cannot be deleted\nbecause it is protected. To unprotect the '
            "resource, either remove the `protect` flag from the resource in your Pulumi "
            "program and run `pulumi up`, or use the command:\n"
            f"`pulumi state unprotect '{urn}'`")
        self.urn = urn


def key_paths(value: Any, prefix: str = "") -> list[str]:
    """Every key path of a plain value: dict keys by name, list items as `[*]`."""
    out = []
    if isinstance(value, dict) and not ({"asset", "archive"} & value.keys()):
        for k, v in value.items():
            path = f"{prefix}.{k}" if prefix else k
            out.append(path)
            out += key_paths(v, path)
    elif isinstance(value, list):
        for v in value:
            out += key_paths(v, f"{prefix}[*]")
    return sorted(set(out))


def top_level(path: str) -> Optional[str]:
    """The input a property path names when it is a whole top-level input (`name` or
    `name[*]`, every element of a list), else None."""
    name = path.removesuffix("[*]")
    return name if name.replace("_", "").isalnum() else None


def tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def file_tree_hash(path: Path) -> str:
    """What Pulumi's archive hash depends on for a directory (or file) archive: each file's
    path and content, nothing else (pulumi/pulumi sdk/go/common/resource/archive/archive.go,
    EnsureHashWithWD -> archiveTar -> addNextFileToTar: a tar of name, mode 0600, size, data)."""
    digest = hashlib.sha256()
    if path.is_file():
        digest.update(path.read_bytes())
        return digest.hexdigest()
    for p in sorted(path.rglob("*")):
        if p.is_file():
            digest.update(p.relative_to(path).as_posix().encode() + b"\0" + p.read_bytes()
                          + b"\0")
    return digest.hexdigest()


@dataclass
class Context:
    project_dir: Path  # relative asset paths resolve here, as under `pulumi up`


class Handler:
    """One resource type: which input key paths it implements and its real operations.

    create/update return (id, computed outputs); the engine echoes the inputs around them.
    delete and read get only the recorded state, as a provider does (no program, no files).
    """

    TYPE = ""
    KEYS: frozenset = frozenset()

    def check(self, inputs: dict) -> list[str]:
        """The input key paths this handler does not implement."""
        return [p for p in key_paths(inputs) if p not in self.KEYS]

    def normalize(self, inputs: dict, ctx: Context) -> dict:
        """The inputs as recorded and compared between runs (assets get their hash)."""
        return inputs

    def replace_keys(self, replace_on_changes: list[str]) -> set[str]:
        """Top-level inputs whose change replaces the resource (the provider's own rules
        plus the resource's replaceOnChanges)."""
        return {top_level(p) for p in replace_on_changes} - {None}

    def create(self, reg: Registration, inputs: dict, ctx: Context) -> tuple[str, dict]:
        raise NotImplementedError

    def update(self, reg: Registration, old: dict, inputs: dict,
               ctx: Context) -> tuple[str, dict]:
        raise NotImplementedError

    def delete(self, record: dict) -> None:
        pass

    def read(self, record: dict) -> dict:
        """`pulumi refresh`: the record as the provider's Read returns it."""
        return record

    def fake_outputs(self, inputs: dict) -> dict:
        return {}


@dataclass
class Action:
    """What was done to one custom resource (create | update | replace | same | delete |
    read), as `pulumi up` lists it."""

    kind: str
    type: str
    name: str
    seconds: float
