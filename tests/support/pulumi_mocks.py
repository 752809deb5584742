"""Run the whole djscale program under Pulumi's mock runtime and record the resource graph.

`Mocks.new_resource` alone does not see parents, dependencies or secret options, so
`RecordingMonitor` keeps the full RegisterResource request of every resource: type, name,
parent, dependencies, property dependencies, additionalSecretOutputs, protect, provider and
the inputs in their wire form (secret markers and unknowns kept, so tests can assert
secretness). `run_program(...)` resets the runtime, sets the stack config, runs
`__main__.py` with `runpy` and returns a `Graph` with the recorded resources and the
stack's exports.

`DjscaleMocks` stands in for the providers: each resource's state is its inputs plus the
outputs the program reads (Command stdout/stderr, Image repoDigest, RandomPassword result
as a secret, StackReference outputs). With `preview=True` it returns the inputs only, so
every provider-computed output is unknown, as in `pulumi preview` of a first deploy.
"""
from __future__ import annotations

import hashlib
import json
import os
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import pulumi
import yaml
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "djscale"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
SIG = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


# --- wire-form helpers -------------------------------------------------------------------

def secret_marker(value: Any) -> dict:
    return {SIG: SECRET_SIG, "value": value}


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SIG) == SECRET_SIG


def has_secret(value: Any) -> bool:
    """True when a secret marker appears anywhere inside `value`."""
    if is_secret(value):
        return True
    if isinstance(value, dict):
        return any(has_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(has_secret(v) for v in value)
    return False


def plain(value: Any) -> Any:
    """`value` with every secret marker removed."""
    if is_secret(value):
        return plain(value.get("value"))
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def is_unknown(value: Any) -> bool:
    return plain(value) == UNKNOWN


# --- the recording -----------------------------------------------------------------------

@dataclass
class Registration:
    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    provider: str
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    additional_secret_outputs: list[str]
    protect: bool
    delete_before_replace: bool
    raw_inputs: dict  # wire form: secret markers and unknowns kept

    def input(self, key: str, default: Any = None) -> Any:
        return self.raw_inputs.get(key, default)

    def plain_input(self, key: str, default: Any = None) -> Any:
        return plain(self.raw_inputs.get(key, default))


class RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: pulumi_mocks.Mocks):
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        self.stack_outputs: dict = {}

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.registrations.append(Registration(
                type=request.type,
                name=request.name,
                urn=response.urn,
                parent=request.parent,
                custom=request.custom,
                provider=request.provider,
                dependencies=list(request.dependencies),
                property_dependencies={
                    k: list(v.urns) for k, v in request.propertyDependencies.items()},
                additional_secret_outputs=list(request.additionalSecretOutputs),
                protect=bool(request.protect),
                delete_before_replace=bool(request.deleteBeforeReplace),
                raw_inputs=json_format.MessageToDict(request.object),
            ))
        return response

    def ReadResource(self, request):
        response = super().ReadResource(request)
        self.registrations.append(Registration(
            type=request.type, name=request.name, urn=response.urn, parent=request.parent,
            custom=True, provider=request.provider, dependencies=list(request.dependencies),
            property_dependencies={}, additional_secret_outputs=list(
                request.additionalSecretOutputs),
            protect=False, delete_before_replace=False,
            raw_inputs=json_format.MessageToDict(request.properties),
        ))
        return response


def _fake_digest(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


class DjscaleMocks(pulumi_mocks.Mocks):
    """Provider stand-ins. `stack_references` maps a stack name to (outputs, secret names)."""

    def __init__(self, preview: bool = False,
                 stack_references: Optional[dict[str, tuple[dict, list[str]]]] = None):
        self.preview = preview
        self.stack_references = stack_references or {}

    def new_resource(self, args: pulumi_mocks.MockResourceArgs):
        inputs = dict(args.inputs)
        rid = f"{args.name}-id"
        if args.typ == "pulumi:pulumi:StackReference":
            outputs, secret_names = self.stack_references[inputs["name"]]
            return inputs["name"], {"name": inputs["name"], "outputs": outputs,
                                    "secretOutputNames": secret_names}
        if self.preview:
            return (None if args.custom else rid), inputs
        if args.typ == "random:index/randomPassword:RandomPassword":
            inputs["result"] = secret_marker(f"pw-{args.name}")
            inputs["bcryptHash"] = secret_marker("$2a$10$mock")
        elif args.typ == "command:remote:Command":
            inputs.update(stdout="", stderr="")
        elif args.typ == "docker:index/image:Image":
            inputs["repoDigest"] = _fake_digest(inputs.get("imageName", args.name))
        elif args.typ == "docker:index/remoteImage:RemoteImage":
            inputs["imageId"] = _fake_digest(inputs["name"])
            inputs["repoDigest"] = inputs["name"] + "@" + _fake_digest(inputs["name"])
        elif args.typ == "docker:index/container:Container":
            inputs.setdefault("name", args.name)
        return rid, inputs

    def call(self, args: pulumi_mocks.MockCallArgs):
        return {}


@dataclass
class Graph:
    registrations: list[Registration]
    exports: dict[str, tuple[Any, bool, bool]]  # name -> (value, is_known, is_secret)
    by_urn: dict[str, Registration] = field(init=False)

    def __post_init__(self):
        self.by_urn = {r.urn: r for r in self.registrations}

    def of_type(self, typ: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == typ]

    def named(self, name: str) -> Registration:
        (found,) = [r for r in self.registrations if r.name == name]
        return found

    def find(self, name: str) -> Optional[Registration]:
        found = [r for r in self.registrations if r.name == name]
        return found[0] if found else None

    def type_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.registrations:
            counts[r.type] = counts.get(r.type, 0) + 1
        return counts

    def children(self, parent: Registration) -> list[Registration]:
        return [r for r in self.registrations if r.parent == parent.urn]

    def deps(self, r: Registration) -> set[str]:
        """Names of everything `r` depends on (options and property dependencies)."""
        urns = set(r.dependencies)
        for v in r.property_dependencies.values():
            urns.update(v)
        return {self.by_urn[u].name for u in urns if u in self.by_urn}

    def depends_transitively(self, r: Registration, name: str) -> bool:
        seen, todo = set(), [r]
        while todo:
            cur = todo.pop()
            for d in self.deps(cur):
                if d == name:
                    return True
                if d not in seen:
                    seen.add(d)
                    todo.append(self.named(d))
        return False


# --- config -----------------------------------------------------------------------------

def stack_file_config(path: Path) -> dict[str, Any]:
    """The `config:` block of a Pulumi.<stack>.yaml, keys as written ("djscale:domain")."""
    return dict(yaml.safe_load(Path(path).read_text())["config"])


def wire_config(config: dict[str, Any]) -> dict[str, str]:
    """What the engine hands the program: strings, objects as JSON, namespaced keys."""
    out = {}
    for key, value in config.items():
        key = key if ":" in key else f"{PROJECT}:{key}"
        if isinstance(value, dict) and "secure" in value:
            raise ValueError(f"{key}: encrypted values cannot be used in tests")
        out[key] = value if isinstance(value, str) else json.dumps(value)
    return out


# --- running ----------------------------------------------------------------------------

def run_program(config: dict[str, Any], *, stack: str = "dev", preview: bool = False,
                secret_keys: tuple[str, ...] = ("sshPrivateKey", "staticStorageSecretKey"),
                stack_references: Optional[dict] = None,
                program: Optional[Callable[[], Any]] = None) -> Graph:
    """Run `__main__.py` (or `program`) with `config` and return the recorded graph.

    Raises whatever the program raised, after the runtime has settled; the partial graph
    is then available as `run_program.last_monitor.registrations`.
    """
    mocks = DjscaleMocks(preview=preview, stack_references=stack_references)
    monitor = RecordingMonitor(mocks)
    run_program.last_monitor = monitor
    pulumi_settings.ROOT.set(None)  # a fresh root Stack: exports must not leak between runs
    wired = wire_config(config)
    set_all_config(wired, [f"{PROJECT}:{k}" for k in secret_keys if f"{PROJECT}:{k}" in wired])
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview,
                             monitor=monitor)
    pulumi_settings.SETTINGS.rpc_manager.clear()
    pulumi_settings.SETTINGS.outputs.clear()

    def main():
        cwd = os.getcwd()
        os.chdir(ROOT)
        try:
            if program is not None:
                program()
            else:
                runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
        finally:
            os.chdir(cwd)

    _sync_await(run_pulumi_func(main))
    stack_resource = pulumi_settings.get_root_resource()
    exports = {}
    for name, value in stack_resource.outputs.items():
        out = pulumi.Output.from_input(value)
        exports[name] = (_sync_await(out.future()), _sync_await(out.is_known()),
                         _sync_await(out.is_secret()))
    return Graph(monitor.registrations, exports)
