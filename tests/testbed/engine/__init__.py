"""A test-only stand-in for the Pulumi engine and providers: it runs the REAL `__main__.py`.

What it is
    The Pulumi CLI and its provider plugins cannot be installed here, so the test bed runs the
    real program under the Python SDK's mock runtime (`pulumi.runtime.mocks`, through the
    harness the mock tests use too: tests/support/pulumi_runtime.py) with a monitor that, for
    every registered custom resource, performs that resource's operation for real and returns
    real outputs (camelCase wire names, as the provider returns them):

    * `command:remote:Command` (command.py): `create`/`update`/`delete` over SSH (the system
      `ssh`, an `exec` request: the remote user's login shell runs it) with the resource's
      own `connection` (host, port, user, privateKey, hostKey VERIFIED, proxy), stdin piped.
    * `command:remote:CopyToRemote` (command.py): FileAsset, StringAsset, FileArchive (a path)
      over SFTP, with the provider's file/directory placement rules.
    * `pulumi:providers:docker` and its Image, Container, RemoteImage, Network, Volume
      (docker.py): the docker CLI at the provider's `ssh://` host, with its `sshOpts` (a
      wrapper `ssh` first on PATH, as the real provider hands them to ssh), legacy builder.
    * `random:index/randomPassword:RandomPassword` and `RandomString` (random_text.py).
    * Resource options: depends_on, parent, provider, protect, ignoreChanges (top-level),
      retainOnDelete, deleteBeforeReplace, replaceOnChanges, additionalSecretOutputs.

    Order: the SDK registers a resource only when its inputs and `depends_on` have resolved,
    and a URN resolves only when its operation here has returned, so dependencies are
    honoured (tests/testbed/test_engine.py proves it). A JSON state file (mode 600: it holds
    secret inputs) of every resource's inputs and outputs makes a second `deploy` a second
    `pulumi up` (runtime.py): unchanged inputs do nothing; a changed Command runs `update`
    (else `create`) again; a `triggers` change replaces it (create, then the old `delete` at
    the end; `delete_before_replace` deletes first); any change to a Container replaces it;
    an Image rebuilds when its inputs or its context's files change; a RandomPassword keeps
    its value; a resource gone from the program is deleted at the end. A failed run stops
    starting operations, lets running ones finish, and raises the first failure.

What it is not
    Not Pulumi. No preview, no refresh (state is never read back from the servers: remove the
    state with the servers), no import, no StackReference or other reads, no invokes, no
    transforms or hooks, no dependent replacement around a delete-before-replace, no
    provider-computed defaults in diffs. It refuses, with an error naming the resource, every
    resource type, input property (nested ones too) and resource option it does not
    implement: it fails rather than silently ignoring. Approximations: a Container
    healthcheck in exec form (`["CMD", ...]`) runs through `/bin/sh -c` (the docker CLI has
    no exec-form flag); `environment` and previous outputs reach the server as SSH `env`
    requests, which sshd drops unless `AcceptEnv` allows them (as with the real provider);
    CopyToRemote looks at the remote path with the login shell (`test -d`), not SFTP stat;
    RandomPassword has no `bcryptHash`; an Image's id is its name.

API: `deploy(config, project_dir, stack, state)` -> exports (secrets unwrapped); `run(...)`
also returns what was done to each resource; `inspect(config, project_dir)` runs the program
without executing anything and lists every custom resource with its input key paths and what
this stand-in would refuse.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Iterable, Optional

from .base import DeployError, Refused
from .runtime import (DEFAULT_SECRET_KEYS, PROJECT, Action, Engine, Registered,
                      run_program)

log = logging.getLogger("djscale.testbed.engine")

DEFAULT_STATE_DIR = Path(os.environ.get("DJSCALE_TEST_STATE",
                                       "/var/lib/djscale-test")) / "engine-state"
__all__ = ["deploy", "run", "inspect", "state_file", "Action", "Registered", "Refused",
           "DeployError"]


def state_file(state: Optional[Path], stack: str) -> Path:
    return Path(state or DEFAULT_STATE_DIR) / f"{PROJECT}-{stack}.engine-state.json"


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
    engine = Engine(state_file(state, stack), Path(project_dir))
    exports = run_program(engine, config, Path(project_dir), stack, secret_keys)
    engine.finish()
    counts: dict[str, int] = {}
    for action in engine.actions:
        counts[action.kind] = counts.get(action.kind, 0) + 1
    log.info("deploy of %s/%s: %s in %.1fs", PROJECT, stack, counts, time.monotonic() - started)
    return exports, engine.actions


def inspect(config: dict[str, str], project_dir: Path, stack: str = "testbed", *,
            secret_keys: Iterable[str] = DEFAULT_SECRET_KEYS) -> list[Registered]:
    """Run the program without executing anything: every custom resource it registers, with
    its input key paths and what this stand-in would refuse (`problems`)."""
    engine = Engine(None, Path(project_dir), dry=True)
    run_program(engine, config, Path(project_dir), stack, secret_keys)
    return engine.registered
