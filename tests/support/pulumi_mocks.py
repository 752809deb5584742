"""Run the whole djscale program under Pulumi's mock runtime and record the resource graph.

Built on the harness shared with the test-bed engine, `tests/support/pulumi_runtime.py`:
`RecordingMonitor` keeps a `Registration` (type, name, parent, dependencies, property
dependencies, resource options, inputs in their wire form with secret markers and unknowns
kept, so tests can assert secretness) of every resource. `run_program(...)` runs
`__main__.py` with the stack config through `run_under_mocks` and returns a `Graph` with the
recorded resources and the stack's exports.

`DjscaleMocks` stands in for the providers: each resource's state is its inputs plus the
outputs the program reads (Command stdout/stderr, Image repoDigest, RandomPassword result
as a secret, StackReference outputs). With `preview=True` it returns the inputs only, so
every provider-computed output is unknown, as in `pulumi preview` of a first deploy.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime.sync_await import _sync_await

# the shared record and wire-form helpers, also imported from here by the tests
from tests.support.pulumi_runtime import (  # noqa: F401
    UNKNOWN, Registration, has_secret, is_secret, is_unknown, plain, run_under_mocks,
    secret as secret_marker,
)

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "djscale"


class RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: pulumi_mocks.Mocks):
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.registrations.append(Registration.from_register(request, response.urn))
        return response

    def ReadResource(self, request):
        response = super().ReadResource(request)
        self.registrations.append(Registration.from_read(request, response.urn))
        return response


def _fake_digest(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


# what the database host's TLS step prints (its certificate), under the mocks
MOCK_CA_CERT = ("-----BEGIN CERTIFICATE-----\nMOCK-DATABASE-CERTIFICATE\n"
                "-----END CERTIFICATE-----\n")


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
            # a step that builds an image prints the image's id: a digest of its command here;
            # the database's TLS step prints its certificate; a release's start step prints
            # the port of the slot it started (the second one here)
            create = plain(inputs.get("create")) or ""
            slot = re.search(r"\bport_b=([0-9]+)", create) if "djscale.slot=" in create else None
            # (a pinned release's image step prints the id of the image it names)
            stdout = (_fake_digest(create) if "docker build" in create
                      or "(not built)" in create else
                      MOCK_CA_CERT if "openssl req" in create else
                      slot.group(1) if slot else "")
            inputs.update(stdout=stdout, stderr="")
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
                secret_keys: Sequence[str] = ("sshPrivateKey", "staticStorageSecretKey",
                                              "backupStorageSecretKey"),
                stack_references: Optional[dict] = None,
                program: Optional[Callable[[], Any]] = None) -> Graph:
    """Run `__main__.py` (or `program`) with `config` and return the recorded graph.

    Raises whatever the program raised, after the runtime has settled; the partial graph
    is then available as `run_program.last_monitor.registrations`.
    """
    mocks = DjscaleMocks(preview=preview, stack_references=stack_references)
    monitor = RecordingMonitor(mocks)
    run_program.last_monitor = monitor
    exports = run_under_mocks(mocks, ROOT, project=PROJECT, stack=stack, preview=preview,
                              monitor=monitor, config=wire_config(config),
                              secret_keys=[k if ":" in k else f"{PROJECT}:{k}"
                                           for k in secret_keys],
                              program=program)
    resolved = {}
    for name, value in exports.items():
        out = pulumi.Output.from_input(value)
        resolved[name] = (_sync_await(out.future()), _sync_await(out.is_known()),
                          _sync_await(out.is_secret()))
    return Graph(monitor.registrations, resolved)
