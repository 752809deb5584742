"""Shared pieces of the stand-in engine: errors, key paths, the Handler interface.

The registration record and the value helpers are the harness the mock tests use too
(tests/support/pulumi_runtime.py), re-exported here for the handlers. The engine's `plain`
is `plain_data` there: secrets unwrapped, integral floats as ints, assets as dicts.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from tests.support.pulumi_runtime import (  # noqa: F401 (re-exported for the handlers)
    Registration, is_secret, plain_data as plain, secret,
)


class Refused(Exception):
    """The program asks for something this stand-in does not implement."""


class DeployError(Exception):
    """A resource's real operation failed. `partial_id`: what it left on the server (the
    engine records it, so that the next run replaces it instead of colliding with it)."""

    partial_id: Optional[str] = None


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


def _top_level(path: str) -> bool:
    return path.replace("_", "").isalnum()


def tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def file_tree_hash(path: Path, ignore: Callable[[str], bool] = lambda rel: False) -> str:
    digest = hashlib.sha256()
    if path.is_file():
        digest.update(path.read_bytes())
        return digest.hexdigest()
    for p in sorted(path.rglob("*")):
        rel = p.relative_to(path).as_posix()
        if p.is_file() and not ignore(rel):
            digest.update(rel.encode() + b"\0" + p.read_bytes() + b"\0")
    return digest.hexdigest()


class Handler:
    """One resource type: which input key paths it implements and its real operations.

    create/update return (id, computed outputs); the engine echoes the inputs around them.
    """

    TYPE = ""
    KEYS: frozenset = frozenset()

    def check(self, inputs: dict) -> list[str]:
        """The input key paths this handler does not implement."""
        return [p for p in key_paths(inputs) if p not in self.KEYS]

    def diff_inputs(self, inputs: dict, ctx: "Context") -> dict:
        """The inputs as compared between runs (handlers add content hashes)."""
        return inputs

    def replaces(self, old: dict, new: dict, reg: Registration) -> bool:
        changed = {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
        return bool(changed & {p.split("[")[0].split(".")[0] for p in reg.replace_on_changes})

    def create(self, reg: Registration, inputs: dict, ctx: "Context") -> tuple[str, dict]:
        raise NotImplementedError

    def update(self, reg: Registration, old: dict, inputs: dict,
               ctx: "Context") -> tuple[str, dict]:
        return self.create(reg, inputs, ctx)

    def delete(self, record: dict, ctx: "Context") -> None:
        pass

    def fake_outputs(self, inputs: dict) -> dict:
        return {}


@dataclass
class Context:
    providers: dict  # provider URN -> plain inputs
    project_dir: Path

    def provider_for(self, reg: Registration) -> dict:
        if reg.provider_urn not in self.providers:
            raise Refused(f"{reg.type} {reg.name!r} has no explicit docker provider: the "
                          "default provider (local engine) is not implemented")
        return self.providers[reg.provider_urn]
