"""Deleting from a state, and the two operations that need no program: destroy, refresh.

The delete phase is Pulumi's (pulumi/pulumi v3.259.0):

* which: step_generator.go GenerateDeletes, over the base checkpoint: an old copy of a
  replacement (`delete`) is deleted without a protect check (NewDeleteReplacementStep,
  replacing: true); a live resource the run did not register is deleted (NewDeleteStep),
  or only dropped when a delete-before-replace already deleted it (pendingReplacement:
  NewRemovePendingReplaceStep). Old copies left by a failed run are in the base, so they
  are deleted here, at the END of the next successful update, not at its start (pending
  deletes stopped running first in v3.46.0: commit a3128e50be, TestPendingDeleteOrder).
* when: deployment_executor.go Execute -> performPostSteps, only after the program ended
  and every step succeeded; a failed update keeps them all in the state.
* order: ScheduleDeletes' antichains (graph.py), one after the other, the steps of one in
  parallel.
* failures: step.go DeleteStep.Apply refuses a protected resource with
  `deleteProtectedError`, which the step executor always continues past
  (step_executor.go cancelDueToError), so every protected one is reported and the other
  deletes go on, except the protected one's transitive dependencies (performPostSteps'
  erroredDeps). Any other failure cancels: running deletes finish, no new one starts.
* what: the provider's Delete with the recorded state only (DeleteStep.Apply passes
  s.old.Inputs/Outputs); nothing for components, external reads (StackReference) and
  retainOnDelete.

`pulumi destroy` runs no program (pkg/engine/destroy.go: a null source), so every resource
of the state goes through the same phase. `pulumi refresh` calls each custom resource's
Read: pulumi-command has none (pulumi-go-provider v1.3.0 infer/resource.go Read: "Default
read implementation ... return them as is"), RandomPassword's does nothing, and a
StackReference reads the other stack again (builtins.go Read).
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .base import PARALLEL, Action, DeployError, ProtectedDelete
from .graph import DependencyGraph, schedule_deletes
from .handlers import HANDLERS
from .stack_reference import TYPE as STACK_REFERENCE, StackReference
from .state import Snapshot

log = logging.getLogger("djscale.testbed.engine")


@dataclass
class DeleteStep:
    record: dict
    replacing: bool = False  # an old copy of a replacement: protect is not checked
    remove_only: bool = False  # already deleted by a delete-before-replace


def delete_steps(snapshot: Snapshot, operated: set[str]) -> list[DeleteStep]:
    """GenerateDeletes over the base: old copies, and live records not `operated` on."""
    steps = []
    for record in snapshot.base:
        if snapshot.retired(record):
            continue
        if record.get("delete"):
            steps.append(DeleteStep(record, replacing=True))
        elif record["urn"] not in operated:
            steps.append(DeleteStep(record, remove_only=bool(record.get("pendingReplacement"))))
    return steps


def run_deletes(snapshot: Snapshot, steps: list[DeleteStep], actions: list[Action]) -> None:
    """Schedule and execute `steps`; raise DeployError listing every failure."""
    if not steps:
        return
    graph = DependencyGraph(snapshot.base)
    by_record = {id(s.record): s for s in steps}
    chains = schedule_deletes([s.record for s in steps], graph)
    spared: set[int] = set()  # dependencies of a protected resource that was refused
    cancelled = threading.Event()
    errors: list[DeployError] = []
    lock = threading.Lock()

    def perform(step: DeleteStep) -> None:
        if cancelled.is_set():
            return
        started = time.monotonic()
        record = step.record
        try:
            if not step.replacing and record.get("protect"):
                raise ProtectedDelete(record["urn"])
            if (record.get("custom") and not step.remove_only and not record.get("external")
                    and not record.get("retainOnDelete")):
                HANDLERS[record["type"]].delete(record)
        except ProtectedDelete as exc:
            with lock:
                errors.append(exc)
                spared.update(graph.transitive_dependencies_of(record))
            return
        except Exception as exc:
            with lock:
                errors.append(exc if isinstance(exc, DeployError) else DeployError(
                    f"delete of {record['type']} {record['name']!r} failed: {exc}"))
            cancelled.set()
            return
        snapshot.retire(record)
        if record.get("custom") and not record.get("external"):
            with lock:
                actions.append(Action("delete", record["type"], record["name"],
                                      time.monotonic() - started))
            log.info("delete %s %s", record["type"], record["name"])

    with ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="delete") as pool:
        for chain in chains:
            if cancelled.is_set():
                break
            todo = [by_record[id(r)] for r in chain if id(r) not in spared]
            list(pool.map(perform, todo))
    if errors:
        raise DeployError("\n\n".join(str(e) for e in errors))


def destroy(path: Path) -> list[Action]:
    """`pulumi destroy` of the stack whose state is `path`, from the state alone."""
    snapshot = _existing(path)
    actions: list[Action] = []
    run_deletes(snapshot, delete_steps(snapshot, operated=set()), actions)
    return actions


def refresh(path: Path, project: str) -> list[Action]:
    """`pulumi refresh` of the stack whose state is `path`: each custom resource as its
    provider's Read returns it (see the module docstring)."""
    snapshot = _existing(path)
    actions: list[Action] = []
    for record in snapshot.resources():
        if not record.get("custom"):
            continue
        started = time.monotonic()
        before = dict(record)
        if record["type"] == STACK_REFERENCE:
            read = {**record, "outputs": StackReference.resolve(
                record["inputs"]["name"], path.parent, project)}
        else:
            read = HANDLERS[record["type"]].read(record)
        kind = "same" if read == before else "update"
        if kind == "update":
            snapshot.mark(record, **read)
        actions.append(Action(kind, record["type"], record["name"], time.monotonic() - started))
    snapshot.save()
    return actions


def _existing(path: Path) -> Snapshot:
    if not path.exists():  # the CLI: "no stack named ... found"
        raise DeployError(f"no stack state at {path}")
    return Snapshot(path)
