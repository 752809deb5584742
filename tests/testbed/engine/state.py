"""The stand-in's state file: one stack's checkpoint, shaped like Pulumi's.

`{"version": 2, "resources": [...]}`: every resource in a valid topological order (the
checkpoint's own invariant, which the delete scheduling relies on), each a record:

    urn, type, name, custom, id, inputs, outputs, parent, dependencies,
    propertyDependencies, protect, retainOnDelete, replaceOnChanges, external,
    delete               an old copy left by a create-before-delete replacement
    pendingReplacement   deleted by a delete-before-replace whose create has not succeeded

The root `pulumi:pulumi:Stack` record's outputs are the stack's exports in wire form: a
secret is a {SIG: SECRET_SIG, "value": ...} marker, as the SDK sent it. Secrets are kept
in clear (Pulumi encrypts them), hence mode 600.

During an update the file is rewritten after every operation as Pulumi's snapshot manager
merges it (pulumi/pulumi pkg/backend/snapshot.go): the records this run produced, in the
order they completed, then every base record not superseded, in base order. So a failed
run leaves exactly what it did, plus the old copies still to delete.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Iterable, Optional

STACK_TYPE = "pulumi:pulumi:Stack"
VERSION = 2


class Snapshot:
    def __init__(self, path: Optional[Path]):
        self.path = path
        self.lock = threading.RLock()
        self.base: list[dict] = load(path) if path is not None else []
        self.news: list[dict] = []
        self._retired: set[int] = set()
        self._live = {r["urn"]: r for r in self.base if not r.get("delete")}

    # -- reading -------------------------------------------------------------------------
    def old(self, urn: str) -> Optional[dict]:
        """The live base record of `urn` (not an old copy pending delete)."""
        with self.lock:
            return self._live.get(urn)

    def retired(self, record: dict) -> bool:
        return id(record) in self._retired

    def resources(self) -> list[dict]:
        with self.lock:
            return self.news + [r for r in self.base if id(r) not in self._retired]

    # -- changes -------------------------------------------------------------------------
    def add(self, record: dict) -> None:
        with self.lock:
            self.news.append(record)
            self.save()

    def retire(self, record: dict) -> None:
        """`record` (a base record) is no longer in the state: superseded or deleted."""
        with self.lock:
            self._retired.add(id(record))
            if self._live.get(record["urn"]) is record:
                del self._live[record["urn"]]
            self.save()

    def mark(self, record: dict, **flags) -> None:
        with self.lock:
            record.update(flags)
            if record.get("delete") and self._live.get(record["urn"]) is record:
                del self._live[record["urn"]]
            self.save()

    def save(self) -> None:
        if self.path is None:
            return
        with self.lock:
            write(self.path, self.resources())


def stack_path(state_dir: Path, project: str, stack: str) -> Path:
    """Where a stack's state lives: one file per stack in one directory."""
    return Path(state_dir) / f"{project}-{stack}.engine-state.json"


def load(path: Path) -> list[dict]:
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    if data.get("version") != VERSION:
        raise ValueError(f"{path}: not a version {VERSION} state file of the stand-in engine "
                         "(remove it together with what it deployed)")
    return data["resources"]


def write(path: Path, resources: Iterable[dict]) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"version": VERSION, "resources": list(resources)}, f, indent=1,
                  sort_keys=True)
    os.replace(partial, path)


def stack_outputs(resources: list[dict]) -> dict:
    """The exports recorded on the root Stack (wire form); {} when it has none (a stack
    never updated or destroyed), as SnapshotStackOutputs returns."""
    for record in resources:
        if record["type"] == STACK_TYPE and not record.get("delete"):
            return record.get("outputs") or {}
    return {}
