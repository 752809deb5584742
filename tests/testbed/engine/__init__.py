"""A test-only stand-in for the Pulumi engine and providers: it runs the REAL `__main__.py`.

What it is
    The Pulumi CLI and its provider plugins cannot be installed here, so the test bed runs the
    real program under the Python SDK's mock runtime (`pulumi.runtime.mocks`, through the
    harness the mock tests use too: tests/support/pulumi_runtime.py) with a monitor that
    performs each registered resource's operation for real and returns real outputs (wire
    names, as the provider returns them). It implements exactly what the program uses:

    * `command:remote:Command`, `command:remote:CopyToRemote` (command.py), as pulumi-command
      v1.2.1 does them: commands over SSH with the resource's own `connection` (pinned host
      key verified, only its own type admitted: for an `ssh-rsa` pin the SHA-1 `ssh-rsa`
      algorithm, connection.go SSHConfig; proxy; SSH_AUTH_SOCK dialled when set), copies
      over SFTP, copied again on an update only when the source or `remotePath` changed
      (copyController.go, CopyToRemote.Update: not for a new connection). A failed
      command's error carries the command and all its output (commandOutputs.go, run).
    * `random:index/randomPassword:RandomPassword` (random_text.py).
    * `pulumi:pulumi:StackReference` (stack_reference.py): another stack's recorded exports.
    * The Stack and component resources: recorded (they order deletes), nothing performed.
    * Options: parent, dependsOn (with the property dependencies), protect,
      deleteBeforeReplace, replaceOnChanges and ignoreChanges (whole top-level inputs),
      retainOnDelete, additionalSecretOutputs.

    A JSON state file per stack (state.py; mode 600: it holds secrets in clear) makes a
    second `deploy` a second `pulumi up`. What Pulumi does and the stand-in copies, each with
    the source it follows (pulumi/pulumi v3.259.0 unless said otherwise):

    * Order: the SDK registers a resource only once its inputs and dependsOn resolved, and a
      registration returns only when its operation is done, so dependencies are honoured.
    * Per resource (update.py): create / same / update / replace (create-before-delete, or
      delete-before-replace) as step_generator.go decides; a failed create or update leaves
      no new state (pulumi-go-provider v1.3.0 infer/resource.go: no partial state without
      ResourceInitFailedError); a protected resource is never replaced (the update stops
      there, step_generator.go generateStepsFromDiff).
    * A failure stops the update: running operations finish, none starts (step_executor.go).
    * Deletes (deletes.py): old copies of replacements and resources that left the program,
      at the end of a successful update only, in ScheduleDeletes' reverse dependency order
      (graph.py); old copies left by a failed update stay in the state and are deleted at
      the end of the next successful one; a protected resource is refused when its turn
      comes, the others go on except what it depends on (DeleteStep.Apply,
      deleteProtectedError); a delete runs with the resource's recorded state only.
    * Exports: recorded on the Stack after each update (the new ones; after a failure the
      old ones with any new ones laid over them: step_executor.go
      executeRegisterResourceOutputs), secrets marked; a StackReference returns them as
      `outputs` with `secretOutputNames` (builtins.go readStackReference), so secret ones
      stay secret in the referencing program; an unknown stack fails with
      `unknown stack "<name>"` (backend.go GetStackOutputs); `require_output` of a missing
      export fails in the program with the SDK's KeyError.
    * `destroy` deletes everything in the state that way, without the program; `refresh`
      does what each provider's Read does (nothing for Command, CopyToRemote and
      RandomPassword; a StackReference reads again).

Where it differs from Pulumi, and why that is safe for this program
    (tests/testbed/test_engine.py, and the guards named below, fail when the program starts
    to depend on one of these)
    * Only the types and options above; anything else is refused with an error naming the
      resource (no preview, import, invokes, transforms, hooks, aliases, explicit providers,
      customTimeouts, deletedWith, nested ignoreChanges/replaceOnChanges). Refused
      Command input `environment`: the provider fails a command whose variable sshd refuses,
      OpenSSH's SetEnv cannot tell.
    * No dependent replacement around a delete-before-replace (step_generator.go
      calculateDependentReplacements): refused, at inspect and at replace time, when a
      resource's replace key takes a value from a delete-before-replace resource.
    * No provider resources in the state (Pulumi records default providers); deletes order
      the same, since a provider would only be one more root every resource depends on.
    * Secrets are kept in clear in the state file (Pulumi encrypts them); components'
      outputs are not recorded (nothing reads them back).
    * The system OpenSSH client instead of Go's x/crypto/ssh: a host key or login failure
      fails at once (the provider retries every failed dial up to dialErrorLimit); previous
      outputs (PULUMI_COMMAND_STDOUT/STDERR) that OpenSSH's SetEnv cannot carry are not sent
      (sshd drops them anyway unless AcceptEnv admits them; the program sends none:
      `addPreviousOutputInEnv: false` on every command, guarded by tests/test_program.py::
      test_no_command_gets_its_previous_output_in_its_environment); a failure's output lists
      stdout then stderr, not interleaved as the provider's `stdouterrbuf` has them.
    * No output while a step runs: the provider sends each line as a status message as it
      comes, for the streams `logging` admits (pulumi-command v1.2.1
      provider/pkg/provider/util/util.go LogOutput, from remote/ and local/commandOutputs.go
      run); the stand-in accepts `logging` and logs one line per step when it ends. Safe:
      the program reads only outputs and errors, never the live display, and that the steps
      touching secrets are `logging: none` is asserted on the graph (tests/test_program.py::
      test_secret_bearing_inputs_are_secret_and_their_steps_log_nothing).
    * CopyToRemote looks at the remote path with the login shell (`test -d`/`-e`), not SFTP
      stat; OpenSSH's sftp creates files as pkg/sftp does only because the copies it sends
      have mode 0666 (see command.py).
    * RandomPassword has no `bcryptHash` output (the program reads none:
      test_engine.py::test_the_program_reads_no_output_the_engine_lacks).
    * Stack names as the diy backend (`pulumi login --local`) parses them: the organization
      is "organization" or the reference fails (stack_reference.py); Pulumi Cloud's
      organizations are not modelled. `<project>-<stack>.engine-state.json` in the state
      directory.

API: `deploy(config, project_dir, stack, state)` -> exports (secrets unwrapped); `run(...)`
also returns what was done to each resource; `inspect(config, project_dir)` runs the program
without executing anything and lists every custom resource and read with its input key
paths, options and what this stand-in would refuse; `destroy(stack, state)` and
`refresh(stack, state)` work from the state alone; `resources(stack, state)` reads a
stack's state records.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Iterable, Optional

from . import deletes
from . import state as state_files
from .base import Action, DeployError, ProtectedDelete, Refused
from .runtime import DEFAULT_SECRET_KEYS, OPTIONS, PROJECT, run_program
from .handlers import HANDLERS
from .update import Engine, Registered

log = logging.getLogger("djscale.testbed.engine")

DEFAULT_STATE_DIR = Path(os.environ.get("DJSCALE_TEST_STATE",
                                       "/var/lib/djscale-test")) / "engine-state"
IMPLEMENTED_TYPES = frozenset(HANDLERS)
IMPLEMENTED_OPTIONS = OPTIONS | {"parent", "dependencies"}
__all__ = ["deploy", "run", "inspect", "destroy", "refresh", "resources", "state_file",
           "Action", "Registered", "Refused", "DeployError", "ProtectedDelete",
           "IMPLEMENTED_TYPES", "IMPLEMENTED_OPTIONS"]


def state_file(state: Optional[Path], stack: str) -> Path:
    return state_files.stack_path(Path(state or DEFAULT_STATE_DIR), PROJECT, stack)


def deploy(config: dict[str, str], project_dir: Path, stack: str = "testbed",
           state: Optional[Path] = None, *,
           secret_keys: Iterable[str] = DEFAULT_SECRET_KEYS) -> dict:
    """`pulumi up` of the program in `project_dir` with `config` ("djscale:<key>" -> string,
    secrets in clear); returns the stack exports with secrets unwrapped. State lives in
    `state`/djscale-<stack>.engine-state.json (mode 600), so a second call is a second up."""
    return run(config, project_dir, stack, state, secret_keys=secret_keys)[0]


def run(config: dict[str, str], project_dir: Path, stack: str = "testbed",
        state: Optional[Path] = None, *,
        secret_keys: Iterable[str] = DEFAULT_SECRET_KEYS) -> tuple[dict, list[Action]]:
    """`deploy`, also returning what was done to each resource (create/update/.../same)."""
    started = time.monotonic()
    state_dir = Path(state or DEFAULT_STATE_DIR)
    engine = Engine(state_file(state_dir, stack), Path(project_dir), PROJECT, state_dir)
    exports = run_program(engine, config, Path(project_dir), stack, secret_keys)
    _log_counts("deploy", stack, engine.actions, started)
    return exports, engine.actions


def inspect(config: dict[str, str], project_dir: Path, stack: str = "testbed", *,
            secret_keys: Iterable[str] = DEFAULT_SECRET_KEYS,
            state: Optional[Path] = None) -> list[Registered]:
    """Run the program without executing anything: every custom resource and read, with
    its input key paths, options and what this stand-in would refuse (`problems`). Stack
    references are read for real, from `state`'s directory, as `pulumi preview` reads them."""
    engine = Engine(None, Path(project_dir), PROJECT, Path(state or DEFAULT_STATE_DIR),
                    dry=True)
    run_program(engine, config, Path(project_dir), stack, secret_keys)
    return engine.registered


def destroy(stack: str = "testbed", state: Optional[Path] = None) -> list[Action]:
    """`pulumi destroy`: every resource of the stack's state deleted, dependents first,
    from the state alone (deletes.py). Protected ones are refused (DeployError at the end)."""
    started = time.monotonic()
    actions = deletes.destroy(state_file(state, stack))
    _log_counts("destroy", stack, actions, started)
    return actions


def refresh(stack: str = "testbed", state: Optional[Path] = None) -> list[Action]:
    """`pulumi refresh`: the state as the providers' Read return it (deletes.py)."""
    return deletes.refresh(state_file(state, stack), PROJECT)


def resources(stack: str = "testbed", state: Optional[Path] = None) -> list[dict]:
    """The records of the stack's state, in its order (state.py)."""
    return state_files.load(state_file(state, stack))


def _log_counts(what: str, stack: str, actions: list[Action], started: float) -> None:
    counts: dict[str, int] = {}
    for action in actions:
        counts[action.kind] = counts.get(action.kind, 0) + 1
    log.info("%s of %s/%s: %s in %.1fs", what, PROJECT, stack, counts,
             time.monotonic() - started)
