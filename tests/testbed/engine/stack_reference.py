"""`pulumi:pulumi:StackReference`: another stack's exports, as the engine's builtin provider
reads them (pulumi/pulumi pkg/resource/deploy/builtins.go, builtinProvider.Read and
readStackReference; the backend: pkg/backend/backend.go, backendClient.GetStackOutputs).

The Python SDK registers it with ReadResource (sdk/python/lib/pulumi/stack_reference.py:
a CustomResource with `id=stack_name`, input `name`), so it is a read: recorded as an
external resource, never deleted (DeleteStep.Apply: "Deleting an External resource is a
no-op"), read again by every update and by `refresh`.

Stack names, as the SDK passes them, are parsed the way the diy backend does (`pulumi login
--local` or a `file://` URL: a state directory, which is what the stand-in's is; pkg/backend/diy/
store.go, projectReferenceStore.ParseReference): "stack", "org/stack" or "org/project/stack",
the project being this program's unless named, and the organization always "organization",
its only one: any other fails with "organization name must be 'organization'" (Pulumi Cloud
names other organizations; a local backend cannot resolve them). The stand-in keeps one stack
per state file in one directory: `<state dir>/<project>-<stack>.engine-state.json`.
"""
from __future__ import annotations

from pathlib import Path

from . import state as state_file
from .base import DeployError, Handler, Refused, is_secret

TYPE = "pulumi:pulumi:StackReference"


DIY_ORGANIZATION = "organization"  # the diy backend's one organization (store.go)


def referenced_path(state_dir: Path, name: str, current_project: str) -> Path:
    parts = name.split("/")
    if not all(parts) or len(parts) > 3:
        raise DeployError(f"invalid stack name {name!r}: expected org/project/stack")
    if len(parts) > 1 and parts[0] != DIY_ORGANIZATION:
        raise DeployError(f"organization name must be '{DIY_ORGANIZATION}' (stack reference "
                          f"{name!r}: the stand-in engine's state directory is a diy backend)")
    project = parts[1] if len(parts) == 3 else current_project
    return state_file.stack_path(state_dir, project, parts[-1])


def _has_secret(value) -> bool:
    if is_secret(value):
        return True
    if isinstance(value, dict):
        return any(_has_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_secret(v) for v in value)
    return False


class StackReference(Handler):
    TYPE = TYPE
    KEYS = frozenset({"name"})

    def check(self, inputs):
        # builtins.go Read: `unknown property "x"` for anything but `name`
        return [f'unknown property "{k}"' for k in inputs if k != "name"]

    @staticmethod
    def resolve(name: str, state_dir: Path, current_project: str) -> dict:
        """The outputs Read returns: name, outputs (wire form, secrets marked) and the
        sorted names of the outputs that hold a secret."""
        path = referenced_path(state_dir, name, current_project)
        if not path.exists():  # backend.go GetStackOutputs: `unknown stack %q`
            raise DeployError(f'unknown stack "{name}" (the stand-in engine looked for '
                              f"{path})")
        outputs = state_file.stack_outputs(state_file.load(path))
        return {"name": name, "outputs": outputs,
                "secretOutputNames": sorted(k for k, v in outputs.items() if _has_secret(v))}

    def create(self, reg, inputs, ctx):
        raise Refused(f"{TYPE} {reg.name!r} must be read (ReadResource), not registered")
