"""The engine proper: state file, the per-resource create/update/replace/delete decision,
the mock monitor that hands it every registration, and running a program once (through the
runner shared with the mock tests, tests/support/pulumi_runtime.py)."""
from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

import pulumi
from pulumi.runtime import mocks, rpc, settings
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.sync_await import _sync_await

from tests.support.pulumi_runtime import run_under_mocks

from .base import (Context, DeployError, Handler, Refused, Registration, _top_level,
                   key_paths, plain, secret)
from .command import CopyToRemote, RemoteCommand
from .docker import Container, DockerProvider, Image, Network, RemoteImage, Volume
from .random_text import RandomText

log = logging.getLogger("djscale.testbed.engine")

PROJECT = "djscale"
DEFAULT_SECRET_KEYS = ("djscale:sshPrivateKey", "djscale:staticStorageSecretKey")

HANDLERS: dict[str, Handler] = {h.TYPE: h for h in [
    RemoteCommand(), CopyToRemote(), DockerProvider(), Image(), RemoteImage(), Container(),
    Network(), Volume(), RandomText("random:index/randomPassword:RandomPassword"),
    RandomText("random:index/randomString:RandomString")]}


class State:
    """The JSON state file (mode 600: it holds secret inputs in clear), one record per URN."""

    def __init__(self, path: Optional[Path]):
        self.path = path
        self.lock = threading.RLock()
        self.records: dict[str, dict] = {}
        if path is not None and path.exists():
            self.records = json.loads(path.read_text())

    def get(self, urn: str) -> Optional[dict]:
        with self.lock:
            return self.records.get(urn)

    def put(self, record: dict) -> None:
        with self.lock:
            self.records[record["urn"]] = record
            self._save()

    def remove(self, urn: str) -> None:
        with self.lock:
            self.records.pop(urn, None)
            self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self.records, f, indent=1, sort_keys=True)
        os.replace(partial, self.path)


@dataclass
class Registered:
    """What `inspect` saw of one custom resource."""

    type: str
    name: str
    urn: str
    keys: list[str]
    problems: list[str]


@dataclass
class Action:
    kind: str  # create | update | replace | same | delete
    type: str
    name: str
    seconds: float


class Engine:
    """Runs one `pulumi up` of a program: see the module docstring."""

    def __init__(self, state_path: Optional[Path], project_dir: Path, dry: bool = False):
        self.state = State(state_path)
        self.ctx = Context(providers={}, project_dir=Path(project_dir).resolve())
        self.dry = dry
        self.lock = threading.Lock()
        self.seen: set[str] = set()
        self.pending_deletes: list[dict] = []
        self.failed: Optional[str] = None
        self.actions: list[Action] = []
        self.registered: list[Registered] = []
        self.idle = threading.Condition()
        self.inflight = 0
        self.first_error: Optional[BaseException] = None
        self._seq = max([r.get("seq", 0) for r in self.state.records.values()], default=0)

    # -- one resource ----------------------------------------------------------------------
    def register(self, reg: Registration, refused_options: list[str]) -> tuple[str, dict]:
        """Perform (or, dry, only look at) one resource; `refused_options`: the resource
        options it sets that this stand-in does not implement."""
        if not reg.custom:  # component resources only group their children
            return "", {}
        handler = HANDLERS.get(reg.type)
        inputs = reg.inputs
        if reg.type == DockerProvider.TYPE:
            self.ctx.providers[reg.urn] = DockerProvider.normalize(inputs)
        option_problems = [f"option {o}" for o in refused_options] + [
            f"option ignoreChanges={p}" for p in reg.ignore_changes if not _top_level(p)]
        if self.dry:
            problems = (handler.check(inputs) if handler else ["(resource type)"]) + option_problems
            with self.lock:
                self.registered.append(Registered(reg.type, reg.name, reg.urn,
                                                  key_paths(inputs), problems))
            fake = handler.fake_outputs(inputs) if handler else {}
            return f"inspect-{reg.name}", self._response(reg, fake)
        try:
            if handler is None:
                raise Refused(f"resource type {reg.type} ({reg.name!r}) is not implemented "
                              "by the test-bed engine")
            problems = handler.check(inputs) + option_problems
            if problems:
                raise Refused(f"{reg.type} {reg.name!r}: not implemented by the test-bed "
                              f"engine: {', '.join(problems)}")
            with self.idle:
                if self.failed:
                    raise DeployError(f"{reg.name!r} not started: {self.failed} failed before")
                self.inflight += 1
            try:
                id_, outputs = self._apply(handler, reg, inputs)
            finally:
                with self.idle:
                    self.inflight -= 1
                    self.idle.notify_all()
        except Exception as exc:
            with self.idle:
                if self.failed is None:
                    self.failed, self.first_error = f"{reg.type} {reg.name!r}", exc
            raise
        return id_, self._response(reg, outputs)

    def wait_idle(self, timeout: float = 3600) -> None:
        """After a failure: let the operations already running finish, as Pulumi does."""
        with self.idle:
            self.failed = self.failed or "the program"
            self.idle.wait_for(lambda: self.inflight == 0, timeout)

    def _apply(self, handler: Handler, reg: Registration, inputs: dict) -> tuple[str, dict]:
        started = time.monotonic()
        with self.lock:
            self.seen.add(reg.urn)
        old = self.state.get(reg.urn)
        if old is not None and old["type"] != reg.type:
            self.pending_deletes.append(old)
            old = None
        if old is not None:  # ignoreChanges: the old value stands in for the new one
            for key in reg.ignore_changes:
                inputs.pop(key, None)
                if key in old["inputs"]:
                    inputs[key] = old["inputs"][key]
        diff = handler.diff_inputs(inputs, self.ctx)
        try:
            kind, id_, outputs = self._decide_and_do(handler, reg, inputs, diff, old)
        except DeployError as exc:
            if exc.partial_id is not None and (old is None or reg.delete_before_replace):
                self._record(reg, exc.partial_id, inputs, {"initializationFailed": True}, {})
            raise
        with self.lock:
            self.actions.append(Action(kind, reg.type, reg.name, time.monotonic() - started))
        self._record(reg, id_, inputs, diff, outputs,
                     seq=old.get("seq") if kind == "same" else None)
        if kind != "same":
            log.info("%s %s %s (%.1fs)", kind, reg.type, reg.name, time.monotonic() - started)
        return id_, outputs

    def _decide_and_do(self, handler: Handler, reg: Registration, inputs: dict, diff: dict,
                       old: Optional[dict]) -> tuple[str, str, dict]:
        if old is None:
            kind, (id_, outputs) = "create", handler.create(reg, inputs, self.ctx)
        elif old["diff_inputs"] == json.loads(json.dumps(diff)):
            kind, id_, outputs = "same", old["id"], old["outputs"]
        elif handler.replaces(old["inputs"], inputs, reg):
            kind = "replace"
            if old.get("protect") or reg.protect:
                raise DeployError(f"{reg.type} {reg.name!r} is protected: its changed inputs "
                                  "need a replacement, which Pulumi refuses for it")
            if reg.delete_before_replace:
                self._delete(handler, old)
                self.state.remove(reg.urn)
            else:  # create first, the old one goes at the end (Pulumi's default order)
                with self.lock:
                    self.pending_deletes.append(old)
            id_, outputs = handler.create(reg, inputs, self.ctx)
        else:
            kind, (id_, outputs) = "update", handler.update(reg, old, inputs, self.ctx)
        return kind, id_, outputs

    def _record(self, reg: Registration, id_: str, inputs: dict, diff: dict, outputs: dict,
                seq: Optional[int] = None) -> None:
        with self.lock:
            if seq is None:
                self._seq += 1
                seq = self._seq
        self.state.put({"urn": reg.urn, "type": reg.type, "name": reg.name, "id": id_,
                        "inputs": inputs, "diff_inputs": diff, "outputs": outputs,
                        "provider": self.ctx.providers.get(reg.provider_urn), "seq": seq,
                        "protect": reg.protect, "retainOnDelete": reg.retain_on_delete})

    def _delete(self, handler: Handler, record: dict) -> None:
        if not record.get("retainOnDelete"):
            handler.delete(record, self.ctx)

    @staticmethod
    def _response(reg: Registration, outputs: dict) -> dict:
        """Inputs echoed with the computed outputs, secrets where the resource says so."""
        state = {**reg.raw_inputs, **{k: v for k, v in outputs.items() if v is not None}}
        for key in reg.additional_secret_outputs:
            if key in state:
                state[key] = secret(state[key])
        return state

    # -- after the program -----------------------------------------------------------------
    def finish(self) -> None:
        """Delete what was replaced (create-before-delete) and what left the program."""
        gone = [r for urn, r in self.state.records.items() if urn not in self.seen]
        for record in sorted(self.pending_deletes + gone, key=lambda r: r.get("seq", 0),
                             reverse=True):
            started = time.monotonic()
            if record["urn"] not in self.seen and record.get("protect"):
                raise DeployError(f"{record['type']} {record['name']!r} left the program but "
                                  "is protected: Pulumi refuses to delete it")
            self._delete(HANDLERS[record["type"]], record)
            if record["urn"] not in self.seen:
                self.state.remove(record["urn"])
            self.actions.append(Action("delete", record["type"], record["name"],
                                       time.monotonic() - started))
            log.info("delete %s %s", record["type"], record["name"])
        self.pending_deletes.clear()


# Resource options whose semantics this stand-in does not implement (protect, ignoreChanges
# on top-level inputs, retainOnDelete, deleteBeforeReplace, replaceOnChanges,
# additionalSecretOutputs, depends_on, parent and provider are implemented).
REFUSED_OPTIONS = frozenset({"importId", "customTimeouts", "aliases", "aliasSpecs",
                             "aliasURNs", "deletedWith", "replace_with", "replacement_trigger",
                             "transforms", "envVarMappings", "remote", "providers"})


class EngineMonitor(mocks.MockMonitor):
    """The mock monitor, with each RegisterResource handed to the Engine in full (the plain
    Mocks interface does not see URNs, dependencies or resource options)."""

    def __init__(self, engine: Engine):
        super().__init__(_RefusingMocks())
        self.engine = engine

    def RegisterResource(self, request):
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            return resource_pb2.RegisterResourceResponse(urn=urn)
        set_fields = {f.name for f, _ in request.ListFields()}
        refused = sorted(set_fields & REFUSED_OPTIONS - {"aliases"})
        for alias in request.aliases:  # the SDKs add type-only aliases (old type tokens):
            spec = alias.spec                # our state never holds those old types
            same_place = spec.name in ("", request.name) and not (
                spec.stack or spec.project or spec.noParent) and spec.parentUrn in (
                "", request.parent)
            if alias.urn or not same_place:
                refused.append("aliases")
                break
        if request.hooks.ListFields():
            refused.append("hooks")
        id_, state = self.engine.register(Registration.from_register(request, urn), refused)
        # wire-form data: nothing to await. A loop of its own that is closed after, not one
        # left behind on this worker thread (at exit those are collected in any order and
        # fail to close: "Exception ignored in BaseEventLoop.__del__")
        obj = asyncio.run(rpc.serialize_properties(state, {}))
        self.resources[urn] = mocks.MockMonitor.ResourceRegistration(urn, id_, state)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=id_, object=obj)

    def ReadResource(self, request):
        raise Refused(f"reading existing resources ({request.type} {request.name!r}, e.g. "
                      "StackReference or .get()) is not implemented by the test-bed engine")


class _RefusingMocks(mocks.Mocks):
    def new_resource(self, args):
        raise Refused(f"unexpected mock registration of {args.typ}")

    def call(self, args):
        raise Refused(f"invoke {args.token} is not implemented by the test-bed engine")


PARALLEL = 16  # resource operations at once (most of them wait on SSH)
_RUN_LOCK = threading.Lock()  # the SDK's runtime settings are process-wide


@contextlib.contextmanager
def _program_environment(project_dir: Path):
    """The import path as `pulumi up` gives the program; a fresh import of its modules."""
    import sys
    project_dir = project_dir.resolve()

    # the program's own top-level modules and packages (not the tests, this module among them)
    local = {p.stem for p in project_dir.iterdir()
             if p.suffix == ".py" or (p / "__init__.py").exists()} - {"tests", "__main__"}

    def take() -> dict:
        return {name: sys.modules.pop(name) for name in list(sys.modules)
                if name.split(".")[0] in local}
    saved = take()  # the run imports them afresh, as a new `pulumi up` process would
    sys.path.insert(0, str(project_dir))
    try:
        yield
    finally:
        sys.path.remove(str(project_dir))
        take()
        sys.modules.update(saved)  # whoever imported them before keeps the same classes


@contextlib.contextmanager
def _own_executor():
    """Our own pool for the SDK's blocking RegisterResource calls, shut down (waited for) at
    the end, so that no thread of this run is still busy when the next one starts."""
    executor = ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="engine")
    loop = asyncio.get_event_loop()
    loop.set_default_executor(executor)
    loop.set_exception_handler(_quiet_exception_handler)
    try:
        yield
    finally:
        executor.shutdown(wait=True)
        loop.set_default_executor(ThreadPoolExecutor())  # for whoever uses the loop next


def run_program(engine: Engine, config: dict[str, str], project_dir: Path, stack: str,
                secret_keys: Iterable[str] = DEFAULT_SECRET_KEYS) -> dict:
    """Run `project_dir/__main__.py` once against `engine`; return its exports (plain)."""
    project_dir = Path(project_dir)
    with _RUN_LOCK, _program_environment(project_dir), _own_executor():
        try:
            exports = run_under_mocks(_RefusingMocks(), project_dir, project=PROJECT,
                                      stack=stack, config=config, secret_keys=secret_keys,
                                      monitor=EngineMonitor(engine))
            exports = _sync_await(pulumi.Output.from_input(exports).future())
        except BaseException as exc:
            engine.wait_idle()
            _cancel_leftover_tasks()  # or they would register into the next run
            first = engine.first_error  # the cause, not whichever failure the SDK saw first
            if first is not None and first is not exc:
                raise first from exc
            raise
    return plain(exports)


def _quiet_exception_handler(loop, context) -> None:
    """After a failed run, futures nobody awaited report their exception when collected.
    asyncio's default handler formats a traceback then, and Python 3.11's traceback
    formatting calls ast.parse, which corrupts a parse already running on this thread if
    the collection happened inside it ("AST constructor recursion depth mismatch" in
    pytest). The failure itself was raised to the caller: note these at debug level."""
    exc = context.get("exception")
    log.debug("asyncio: %s%s", context.get("message"), f" ({exc!r})" if exc else "")


def _cancel_leftover_tasks() -> None:
    loop = asyncio.get_event_loop()
    with settings.SETTINGS.lock:
        leftovers = set(settings.SETTINGS.outputs)
        settings.SETTINGS.outputs.clear()
    leftovers |= {f for f in settings.SETTINGS.rpc_manager.rpcs if isinstance(f, asyncio.Future)}
    settings.SETTINGS.rpc_manager.clear()
    leftovers |= asyncio.all_tasks(loop)
    for task in leftovers:
        task.cancel()
    if leftovers:  # gather also retrieves every exception
        loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
    gc.collect()  # finalize the run's other futures now, not inside someone's ast.parse
