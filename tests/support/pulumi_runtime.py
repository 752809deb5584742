"""The Pulumi mock-runtime harness shared by the mock tests (tests/support/pulumi_mocks.py:
records the resource graph) and the test-bed engine (tests/testbed/engine/: performs each
resource for real). Both subclass `MockMonitor` to see every RegisterResource request in full
(`Mocks.new_resource` sees no parent, dependency or option), keep it as a `Registration`, and
run the program with `run_under_mocks`.

Inputs stay in their wire form, as the monitor received them: secrets as {SIG: SECRET_SIG,
"value": ...} markers (a secret anywhere inside an input marks the whole top-level value),
unknowns as `UNKNOWN`, numbers as floats, assets and archives as signature dicts. `plain`
removes the secret markers; `plain_data` gives the JSON data a provider works on.
"""
from __future__ import annotations

import contextlib
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

UNKNOWN = rpc.UNKNOWN
SIG = rpc._special_sig_key
SECRET_SIG = rpc._special_secret_sig
ASSET_SIG = rpc._special_asset_sig
ARCHIVE_SIG = rpc._special_archive_sig


# --- values in wire form ------------------------------------------------------------------

def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SIG) == SECRET_SIG


def has_secret(value: Any) -> bool:
    """True when a secret marker appears anywhere inside `value`."""
    if is_secret(value):
        return True
    if isinstance(value, dict):
        return any(has_secret(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(has_secret(v) for v in value)
    return False


def secret(value: Any) -> dict:
    """`value` marked secret (once: a marked value is returned as it is)."""
    return value if is_secret(value) else {SIG: SECRET_SIG, "value": value}


def plain(value: Any) -> Any:
    """`value` with every secret marker removed; everything else as it is."""
    if is_secret(value):
        return plain(value.get("value"))
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def is_unknown(value: Any) -> bool:
    return plain(value) == UNKNOWN


def plain_data(value: Any) -> Any:
    """`plain`, as the JSON data a provider works on: integral floats as ints, tuples as lists,
    assets and archives as {"asset"/"archive": kind, "path"/"text": ...} dicts."""
    if is_secret(value):
        return plain_data(value["value"])
    if isinstance(value, dict) and value.get(SIG) in (ASSET_SIG, ARCHIVE_SIG):
        return _asset_data(value)
    if isinstance(value, dict):
        return {k: plain_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_data(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _asset_data(value: dict) -> dict:
    """An asset or archive in wire form; the kinds the test-bed engine does not implement
    become {"unsupported": the SDK class the program used}."""
    what = "asset" if value[SIG] == ASSET_SIG else "archive"
    if "path" in value:
        return {what: "file", "path": value["path"]}
    if what == "asset" and "text" in value:
        return {"asset": "string", "text": value["text"]}
    if "uri" in value:
        return {"unsupported": f"Remote{what.title()}"}
    return {"unsupported": "AssetArchive"}


# --- one registered resource --------------------------------------------------------------

@dataclass
class Registration:
    """One RegisterResource (or ReadResource) request, as the monitor received it."""

    urn: str
    type: str
    name: str
    custom: bool
    raw_inputs: dict  # wire form: secret markers, unknowns and asset signatures kept
    parent: str = ""
    provider: str = ""  # "<provider urn>::<id>" when explicit, else ""
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    additional_secret_outputs: list[str] = field(default_factory=list)
    protect: bool = False
    delete_before_replace: bool = False
    replace_on_changes: list[str] = field(default_factory=list)
    ignore_changes: list[str] = field(default_factory=list)
    retain_on_delete: bool = False

    @classmethod
    def from_register(cls, request, urn: str) -> "Registration":
        return cls(
            urn=urn, type=request.type, name=request.name, custom=bool(request.custom),
            raw_inputs=json_format.MessageToDict(request.object), parent=request.parent,
            provider=request.provider, dependencies=list(request.dependencies),
            property_dependencies={k: list(v.urns)
                                   for k, v in request.propertyDependencies.items()},
            additional_secret_outputs=list(request.additionalSecretOutputs),
            protect=bool(request.protect),
            delete_before_replace=bool(request.deleteBeforeReplace),
            replace_on_changes=list(request.replaceOnChanges),
            ignore_changes=list(request.ignoreChanges),
            retain_on_delete=bool(request.retainOnDelete))

    @classmethod
    def from_read(cls, request, urn: str) -> "Registration":
        """A read (`.get()`, StackReference): custom, its properties stand for its inputs."""
        return cls(
            urn=urn, type=request.type, name=request.name, custom=True,
            raw_inputs=json_format.MessageToDict(request.properties), parent=request.parent,
            provider=request.provider, dependencies=list(request.dependencies),
            additional_secret_outputs=list(request.additionalSecretOutputs))

    @property
    def provider_urn(self) -> str:
        return self.provider.rsplit("::", 1)[0] if self.provider else ""

    @property
    def inputs(self) -> dict:
        """All inputs as plain JSON data (`plain_data`)."""
        return plain_data(self.raw_inputs)

    def input(self, key: str, default: Any = None) -> Any:
        """One input in wire form."""
        return self.raw_inputs.get(key, default)

    def plain_input(self, key: str, default: Any = None) -> Any:
        """One input without its secret markers (`plain`)."""
        return plain(self.raw_inputs.get(key, default))


# --- running a program --------------------------------------------------------------------

def run_under_mocks(mocks: pulumi_mocks.Mocks, project_dir: Path, *, project: str, stack: str,
                    config: Mapping[str, Any], secret_keys: Iterable[str] = (),
                    preview: bool = False, monitor: Optional[pulumi_mocks.MockMonitor] = None,
                    program: Optional[Callable[[], Any]] = None,
                    exports_out: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Run `project_dir/__main__.py` (or `program`) once under `mocks` and `monitor`, as
    `pulumi up` (or `preview`) of `project`/`stack` would, in `project_dir`.

    `config`: "<namespace>:<key>" -> value (strings; other values are passed as `str`);
    the `secret_keys` present in it are secret. Returns the root Stack's exports as registered
    (values or Outputs: the caller resolves them). Raises whatever the program raised, after
    the runtime has settled; `exports_out` then still receives the exports registered so far.
    """
    # The SDK's settings are process-wide and outlive a run: a previous root Stack would keep
    # its exports, and set_mocks resets neither the pending RPCs nor the tracked outputs.
    settings.set_root_resource(None)
    set_all_config({k: str(v) for k, v in config.items()},
                   [k for k in secret_keys if k in config])
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=preview,
                             monitor=monitor)  # makes the new root Stack
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()
    project_dir = Path(project_dir).resolve()
    main = program or (lambda: runpy.run_path(str(project_dir / "__main__.py"),
                                              run_name="__main__"))
    try:
        with contextlib.chdir(project_dir):
            _sync_await(run_pulumi_func(main))
        return dict(settings.get_root_resource().outputs)
    finally:
        if exports_out is not None and settings.get_root_resource() is not None:
            exports_out.update(settings.get_root_resource().outputs)
        settings.set_root_resource(None)
