"""One `pulumi up`: what happens to each resource the program registers (or reads), then the
delete phase (deletes.py), then the stack's exports.

Per resource, as pulumi/pulumi v3.259.0 pkg/resource/deploy/step_generator.go
(generateSteps, generateStepsFromDiff) and step.go decide:

* no live record: create. A failed create leaves nothing (pulumi-go-provider v1.3.0
  infer/resource.go derivedResourceController.Create returns no partial state unless the
  provider returns ResourceInitFailedError, which pulumi-command and the bridged
  RandomPassword never do); the same for a failed update: the old record stays.
* inputs equal: same. A change to a replace key (the provider's own rules plus
  replaceOnChanges, which the pulumi-command SDK sets to `triggers[*]`): replace,
  create-before-delete by default: the old record is marked `delete` only once the new one
  exists (CreateStep.Apply: `s.old.Delete = true`) and is deleted in the delete phase;
  with deleteBeforeReplace the old one is deleted first and stays as `pendingReplacement`
  until the new one exists (DeleteStep.Apply), so a retry only creates. Any other change:
  update.
* a replacement of a resource protected in the state and in the program is refused before
  anything is done for it, and the update stops ("unable to replace resource ... as it is
  currently marked for protection"); resources handled before it stay as they are.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .base import (Action, Context, DeployError, Handler, Refused, Registration, key_paths,
                   secret, top_level)
from .deletes import delete_steps, run_deletes
from .handlers import HANDLERS
from .stack_reference import TYPE as STACK_REFERENCE, StackReference
from .state import STACK_TYPE, Snapshot

log = logging.getLogger("djscale.testbed.engine")


@dataclass
class Registered:
    """What `inspect` saw of one custom resource or read."""

    type: str
    name: str
    urn: str
    keys: list[str]
    problems: list[str]
    options: list[str] = field(default_factory=list)  # resource options it sets


class Engine:
    def __init__(self, state_path: Optional[Path], project_dir: Path, project: str,
                 state_dir: Path, dry: bool = False):
        self.snapshot = Snapshot(None if dry else state_path)
        self.ctx = Context(project_dir=Path(project_dir).resolve())
        self.project, self.state_dir, self.dry = project, Path(state_dir), dry
        self.lock = threading.Lock()
        self.operated: set[str] = set()
        self.actions: list[Action] = []
        self.registered: list[Registered] = []
        self.stack_record: Optional[dict] = None
        self.delete_before_replace: set[str] = set()  # URNs registered so (inspect's check)
        self.idle = threading.Condition()
        self.inflight = 0
        self.failed: Optional[str] = None
        self.first_error: Optional[BaseException] = None

    # -- registrations -----------------------------------------------------------------
    def register(self, reg: Registration, options: list[str], refused: list[str]) -> tuple:
        """Perform (or, dry, only look at) one registration; returns (id, outputs)."""
        if reg.type == STACK_TYPE or not reg.custom:
            return self._component(reg), reg.raw_inputs
        handler = HANDLERS.get(reg.type)
        problems = self._problems(handler, reg, refused)
        if self.dry:
            self._inspected(reg, problems, options)
            fake = handler.fake_outputs(reg.inputs) if handler else {}
            return f"inspect-{reg.name}", self._response(reg, fake)
        return self._guarded(reg, problems, lambda: self._apply(handler, reg))

    def read(self, reg: Registration, options: list[str], refused: list[str]) -> dict:
        """A ReadResource: only StackReference is implemented; read in inspect too."""
        handler = HANDLERS.get(reg.type) if reg.type == STACK_REFERENCE else None
        problems = self._problems(handler, reg, refused)
        if self.dry:
            self._inspected(reg, problems, options)
            return StackReference.resolve(reg.inputs["name"], self.state_dir, self.project)
        return self._guarded(reg, problems, lambda: self._read(reg))[1]

    def _problems(self, handler: Optional[Handler], reg: Registration,
                  refused: list[str]) -> list[str]:
        if handler is None:
            return [f"resource type {reg.type} ({reg.name!r}) is not implemented"]
        problems = handler.check(reg.inputs) + [f"option {o}" for o in refused] + [
            f"option {o}={p}" for o, paths in (("ignoreChanges", reg.ignore_changes),
                                               ("replaceOnChanges", reg.replace_on_changes))
            for p in paths if top_level(p) is None]
        replace_keys = handler.replace_keys(reg.replace_on_changes)
        for key, urns in reg.property_dependencies.items():
            for urn in set(urns) & self.delete_before_replace:
                if key in replace_keys:
                    problems.append(f"input {key} depends on {urn}, which is replaced "
                                    "delete-before-replace: dependent replacement is not "
                                    "implemented")
        if reg.delete_before_replace:
            with self.lock:
                self.delete_before_replace.add(reg.urn)
        return problems

    def _inspected(self, reg: Registration, problems: list[str], options: list[str]) -> None:
        with self.lock:
            self.registered.append(Registered(reg.type, reg.name, reg.urn,
                                              key_paths(reg.inputs), problems, options))

    def _guarded(self, reg: Registration, problems: list[str], operation) -> tuple:
        """Run one operation unless the update has already failed; a failure stops the
        update: running operations finish, no new one starts (step_executor.go)."""
        try:
            if problems:
                raise Refused(f"{reg.type} {reg.name!r}: not implemented by the test-bed "
                              f"engine: {', '.join(problems)}")
            with self.idle:
                if self.failed:
                    raise DeployError(f"{reg.name!r} not started: {self.failed} failed before")
                self.inflight += 1
            try:
                return operation()
            finally:
                with self.idle:
                    self.inflight -= 1
                    self.idle.notify_all()
        except Exception as exc:
            if isinstance(exc, DeployError) and f"{reg.name!r}" not in str(exc):
                # Pulumi names the resource whose step failed (its URN) in every such error
                named = DeployError(f"{reg.type} {reg.name!r}: {exc}")
                named.__cause__ = exc
                exc = named
            with self.idle:
                if self.failed is None:
                    self.failed, self.first_error = f"{reg.type} {reg.name!r}", exc
            raise exc

    def wait_idle(self, timeout: float = 3600) -> None:
        with self.idle:
            self.failed = self.failed or "the program"
            self.idle.wait_for(lambda: self.inflight == 0, timeout)

    # -- what each registration does ----------------------------------------------------
    def _component(self, reg: Registration) -> str:
        """The Stack and components: recorded (they order deletes), nothing to perform."""
        old = self.snapshot.old(reg.urn)
        record = self._record(reg, "", {}, {}, custom=False)
        if reg.type == STACK_TYPE:  # the exports stay until the run's are final
            record["outputs"] = (old or {}).get("outputs") or {}
            self.stack_record = record
        self._supersede(reg.urn, old, record)
        return ""

    def _read(self, reg: Registration) -> tuple[str, dict]:
        started = time.monotonic()
        outputs = StackReference.resolve(reg.inputs["name"], self.state_dir, self.project)
        record = self._record(reg, reg.inputs["name"], reg.inputs, outputs, external=True)
        self._supersede(reg.urn, self.snapshot.old(reg.urn), record)
        self._done("read", reg, started)
        return reg.inputs["name"], outputs

    def _apply(self, handler: Handler, reg: Registration) -> tuple[str, dict]:
        started = time.monotonic()
        with self.lock:
            self.operated.add(reg.urn)
        old = self.snapshot.old(reg.urn)
        inputs = reg.inputs
        if old is not None:  # ignoreChanges: the old value stands in for the new one
            for key in filter(None, map(top_level, reg.ignore_changes)):
                inputs.pop(key, None)
                if key in old["inputs"]:
                    inputs[key] = old["inputs"][key]
        inputs = json.loads(json.dumps(handler.normalize(inputs, self.ctx)))
        changed = set() if old is None else {
            k for k in old["inputs"].keys() | inputs.keys()
            if old["inputs"].get(k) != inputs.get(k)}
        if old is None:
            kind, (id_, outputs) = "create", handler.create(reg, inputs, self.ctx)
            self.snapshot.add(self._record(reg, id_, inputs, outputs))
        elif (old.get("pendingReplacement")
              or changed & handler.replace_keys(reg.replace_on_changes)):
            kind, id_, outputs = "replace", *self._replace(handler, reg, old, inputs, started)
        elif not changed:
            kind, id_, outputs = "same", old["id"], old["outputs"]
            self._supersede(reg.urn, old, self._record(reg, id_, inputs, outputs))
        else:
            kind, (id_, outputs) = "update", handler.update(reg, old, inputs, self.ctx)
            self._supersede(reg.urn, old, self._record(reg, id_, inputs, outputs))
        self._done(kind, reg, started)
        return id_, self._response(reg, outputs)

    def _replace(self, handler: Handler, reg: Registration, old: dict, inputs: dict,
                 started: float) -> tuple[str, dict]:
        if reg.protect and old.get("protect"):
            raise DeployError(
                f'unable to replace resource "{reg.urn}"\nas it is currently marked for '
                "protection. To unprotect the resource, remove the `protect` flag from the "
                "resource in your Pulumi program and run `pulumi up`")
        if reg.delete_before_replace and not old.get("pendingReplacement"):
            self._refuse_dependent_replacements(old)
            if not old.get("retainOnDelete"):
                handler.delete(old)
            self.snapshot.mark(old, pendingReplacement=True)
            self._done("delete", reg, started)
        id_, outputs = handler.create(reg, inputs, self.ctx)
        record = self._record(reg, id_, inputs, outputs)
        if old.get("pendingReplacement"):
            self._supersede(reg.urn, old, record)
        else:  # create-before-delete: the old one waits for the delete phase
            self.snapshot.mark(old, delete=True)
            self.snapshot.add(record)
        return id_, outputs

    def _refuse_dependent_replacements(self, old: dict) -> None:
        """Pulumi would first delete (and then recreate) every resource of the base state
        whose replace keys take a value from `old` (step_generator.go
        calculateDependentReplacements)."""
        for record in self.snapshot.base:
            handler = HANDLERS.get(record["type"])
            if record is old or record.get("delete") or record.get("external") or not (
                    record.get("custom") and handler):
                continue
            keys = {k for k, urns in (record.get("propertyDependencies") or {}).items()
                    if old["urn"] in urns}
            if keys & handler.replace_keys(record.get("replaceOnChanges") or []):
                raise Refused(f"replacing {old['name']!r} delete-before-replace would replace "
                              f"{record['name']!r} too (its {sorted(keys)}): dependent "
                              "replacement is not implemented by the test-bed engine")

    # -- helpers -----------------------------------------------------------------------
    def _supersede(self, urn: str, old: Optional[dict], record: dict) -> None:
        with self.lock:
            self.operated.add(urn)
        self.snapshot.add(record)
        if old is not None:
            self.snapshot.retire(old)

    def _done(self, kind: str, reg: Registration, started: float) -> None:
        seconds = time.monotonic() - started
        with self.lock:
            self.actions.append(Action(kind, reg.type, reg.name, seconds))
        if kind != "same":
            log.info("%s %s %s (%.1fs)", kind, reg.type, reg.name, seconds)

    @staticmethod
    def _record(reg: Registration, id_: str, inputs: dict, outputs: dict, *,
                custom: bool = True, external: bool = False) -> dict:
        return {"urn": reg.urn, "type": reg.type, "name": reg.name, "custom": custom,
                "id": id_, "inputs": inputs, "outputs": outputs, "parent": reg.parent,
                "dependencies": reg.dependencies,
                "propertyDependencies": reg.property_dependencies, "protect": reg.protect,
                "retainOnDelete": reg.retain_on_delete,
                "replaceOnChanges": reg.replace_on_changes, "external": external}

    @staticmethod
    def _response(reg: Registration, outputs: dict) -> dict:
        """Inputs echoed with the computed outputs, secrets where the resource says so."""
        state = {**reg.raw_inputs, **{k: v for k, v in outputs.items() if v is not None}}
        for key in reg.additional_secret_outputs:
            if key in state:
                state[key] = secret(state[key])
        return state

    # -- after the program -------------------------------------------------------------
    def finish(self) -> None:
        """The delete phase: old copies of replacements, resources that left the program."""
        run_deletes(self.snapshot, delete_steps(self.snapshot, self.operated), self.actions)

    def record_exports(self, exports: Optional[dict], errored: bool) -> None:
        """The stack's exports once the update is over (step_executor.go
        executeRegisterResourceOutputs, finalizingStackOutputs): the new ones after a
        success; after a failure, the old ones with any new ones laid over them."""
        if self.stack_record is None or exports is None:
            return
        outputs = {**self.stack_record["outputs"], **exports} if errored else exports
        self.snapshot.mark(self.stack_record, outputs=outputs)
