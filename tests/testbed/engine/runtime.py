"""Running a program once against the Engine: the mock monitor that hands it every
registration and read in full, and the runner shared with the mock tests
(tests/support/pulumi_runtime.py)."""
from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Optional

from google.protobuf import json_format
from pulumi.runtime import mocks, rpc, settings
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.sync_await import _sync_await

from tests.support.pulumi_runtime import run_under_mocks

from .base import PARALLEL, Refused, Registration, plain
from .state import STACK_TYPE
from .update import Engine

log = logging.getLogger("djscale.testbed.engine")

PROJECT = "djscale"
DEFAULT_SECRET_KEYS = ("djscale:sshPrivateKey", "djscale:staticStorageSecretKey",
                       "djscale:backupStorageSecretKey")

# RegisterResource/ReadResource fields that are protocol, or options the Engine implements
# faithfully. Any other field the program sets is refused ("option <field>").
PROTOCOL = frozenset({
    "type", "name", "parent", "custom", "object", "properties", "id", "dependencies",
    "propertyDependencies", "version", "acceptSecrets", "acceptResources",
    "supportsPartialValues", "supportsResultReporting", "pluginDownloadURL",
    "pluginChecksums", "packageRef", "sourcePosition", "stackTrace", "parentStackTraceHandle",
    "accepts_byte_string", "deleteBeforeReplaceDefined", "aliases", "hooks"})
OPTIONS = frozenset({"protect", "deleteBeforeReplace", "ignoreChanges", "replaceOnChanges",
                     "retainOnDelete", "additionalSecretOutputs"})


def _options(request, read: bool = False) -> tuple[list[str], list[str]]:
    """(the resource options it sets, those refused)."""
    fields = {f.name for f, _ in request.ListFields()}
    used = sorted(fields & OPTIONS | ({"dependencies"} if request.dependencies else set())
                  | ({"parent"} if request.parent else set()))
    refused = sorted(fields - PROTOCOL - (set() if read else OPTIONS))
    for alias in getattr(request, "aliases", ()):  # the SDKs add type-only aliases (old
        spec = alias.spec                         # type tokens): never in our state
        same_place = spec.name in ("", request.name) and not (
            spec.stack or spec.project or spec.noParent) and spec.parentUrn in (
            "", request.parent)
        if alias.urn or not same_place:
            refused.append("aliases")
            break
    if "hooks" in fields and request.hooks.ListFields():
        refused.append("hooks")
    return used, refused


class EngineMonitor(mocks.MockMonitor):
    """The mock monitor, with each RegisterResource and ReadResource handed to the Engine in
    full (the plain Mocks interface does not see URNs, dependencies or resource options)."""

    def __init__(self, engine: Engine):
        super().__init__(_RefusingMocks())
        self.engine = engine

    def RegisterResource(self, request):
        urn = self.make_urn(request.parent, request.type, request.name)
        used, refused = _options(request)
        id_, state = self.engine.register(Registration.from_register(request, urn), used,
                                          refused)
        if request.type == STACK_TYPE:
            return resource_pb2.RegisterResourceResponse(urn=urn)
        obj = _serialize(state)
        self.resources[urn] = mocks.MockMonitor.ResourceRegistration(urn, id_, state)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=id_, object=obj)

    def ReadResource(self, request):
        urn = self.make_urn(request.parent, request.type, request.name)
        used, refused = _options(request, read=True)
        state = self.engine.read(Registration.from_read(request, urn), used, refused)
        self.resources[urn] = mocks.MockMonitor.ResourceRegistration(urn, request.id, state)
        return resource_pb2.ReadResourceResponse(urn=urn, properties=_serialize(state))


def _serialize(state: dict):
    # wire-form data: nothing to await. A loop of its own that is closed after, not one left
    # behind on this worker thread (at exit those are collected in any order and fail to
    # close: "Exception ignored in BaseEventLoop.__del__")
    return asyncio.run(rpc.serialize_properties(state, {}))


class _RefusingMocks(mocks.Mocks):
    def new_resource(self, args):
        raise Refused(f"unexpected mock registration of {args.typ}")

    def call(self, args):
        raise Refused(f"invoke {args.token} is not implemented by the test-bed engine")


_RUN_LOCK = threading.Lock()  # the SDK's runtime settings are process-wide


@contextlib.contextmanager
def _program_environment(project_dir: Path):
    """The import path as `pulumi up` gives the program; a fresh import of its modules."""
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
    """Run `project_dir/__main__.py` once against `engine`, then (not dry) its delete phase;
    record the stack's exports and return them (plain)."""
    project_dir = Path(project_dir)
    exports: dict = {}
    with _RUN_LOCK, _program_environment(project_dir), _own_executor():
        try:
            # inspect (dry) is a preview: what providers compute is unknown, as in Pulumi's
            run_under_mocks(_RefusingMocks(), project_dir, project=PROJECT, stack=stack,
                            config=config, secret_keys=secret_keys, preview=engine.dry,
                            monitor=EngineMonitor(engine), exports_out=exports)
            wire = _wire_exports(exports)
        except BaseException as exc:
            engine.wait_idle()
            # the SDK still sends the exports (run_in_stack's `finally`) when all resolved
            engine.record_exports(_wire_exports(exports, timeout=1), errored=True)
            _cancel_leftover_tasks()  # or they would register into the next run
            first = engine.first_error  # the cause, not whichever failure the SDK saw first
            if first is not None and first is not exc:
                raise first from exc
            raise
    if not engine.dry:
        try:
            engine.finish()
        except BaseException:
            engine.record_exports(wire, errored=True)
            raise
    engine.record_exports(wire, errored=False)
    return plain(wire)


def _wire_exports(exports: dict, timeout: Optional[float] = None) -> Optional[dict]:
    """The exports as RegisterResourceOutputs carries them: wire form, secrets marked
    (None when they cannot all be resolved within `timeout`)."""
    try:
        struct = _sync_await(asyncio.wait_for(rpc.serialize_properties(exports, {}), timeout))
    except Exception:  # noqa: BLE001 (an export failed with the run, or never resolves)
        if timeout is None:
            raise
        return None
    return json_format.MessageToDict(struct)


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
