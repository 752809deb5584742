"""Shared pieces of the stand-in engine: errors, plain values, the Handler interface."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import pulumi
from pulumi.runtime import rpc


_SIG, _SECRET = rpc._special_sig_key, rpc._special_secret_sig


class Refused(Exception):
    """The program asks for something this stand-in does not implement."""


class DeployError(Exception):
    """A resource's real operation failed. `partial_id`: what it left on the server (the
    engine records it, so that the next run replaces it instead of colliding with it)."""

    partial_id: Optional[str] = None


# --------------------------------------------------------------------------- values

def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(_SIG) == _SECRET


def secret(value: Any) -> dict:
    return value if is_secret(value) else {_SIG: _SECRET, "value": value}


def plain(value: Any) -> Any:
    """An input as plain JSON data: secrets unwrapped, integral floats as ints, assets as
    {"asset"/"archive": kind, ...} dicts."""
    if is_secret(value):
        return plain(value["value"])
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, pulumi.FileAsset):
        return {"asset": "file", "path": str(value.path)}
    if isinstance(value, pulumi.StringAsset):
        return {"asset": "string", "text": value.text}
    if isinstance(value, pulumi.FileArchive):
        return {"archive": "file", "path": str(value.path)}
    if isinstance(value, (pulumi.Asset, pulumi.Archive)):
        return {"unsupported": type(value).__name__}
    return value


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


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    custom: bool
    raw_inputs: dict  # as deserialized: secrets still wrapped, assets as objects
    provider_ref: str = ""
    delete_before_replace: bool = False
    replace_on_changes: list = field(default_factory=list)
    additional_secret_outputs: list = field(default_factory=list)
    dependencies: list = field(default_factory=list)
    protect: bool = False
    ignore_changes: list = field(default_factory=list)
    retain_on_delete: bool = False
    refused_options: list = field(default_factory=list)

    @property
    def inputs(self) -> dict:
        return plain(self.raw_inputs)


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
        urn = reg.provider_ref.rsplit("::", 1)[0] if reg.provider_ref else ""
        if urn not in self.providers:
            raise Refused(f"{reg.type} {reg.name!r} has no explicit docker provider: the "
                          "default provider (local engine) is not implemented")
        return self.providers[urn]
