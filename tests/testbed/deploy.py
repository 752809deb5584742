"""Deploy the real program onto the bed with the stand-in engine (tests/testbed/engine.py).

The engine keeps its state (what it created, like a Pulumi stack's state) under the bed's
state dir, so a second `deploy_bed()` is a second `pulumi up`, and `down` forgets it.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from . import bed, layout

ENGINE_STATE_DIR = layout.STATE_DIR / "engine-state"
BASE_TEMPLATE = "assets/app/mydb/templates/mydb/base.html"


def project_copy(parent: Path, name: str = "project", marker: str | None = None) -> Path:
    """A copy of the project (its source, not its tests) in `parent`/`name`, to deploy as
    another release. With `marker`, the site's base template ends with `<!-- marker -->`:
    a new image (its content hash changes), and every page says which release served it."""
    project = Path(parent) / name
    shutil.copytree(bed.PROJECT_DIR, project, ignore=shutil.ignore_patterns(
        ".git", "__pycache__", ".pytest_cache", "tests", "out", ".testbed"))
    if marker is not None:
        base = project / BASE_TEMPLATE
        base.write_text(base.read_text() + f"<!-- {marker} -->\n")
    return project


def deploy_bed(project_dir: Path = bed.PROJECT_DIR, stack: str = "testbed",
               with_actions: bool = False, changes: dict | None = None,
               secrets: dict | None = None, values: dict | None = None):
    """Run `__main__.py` of `project_dir` against the bed that is up. Returns the stack
    outputs (and the engine's actions when `with_actions`). `changes`: top-level config
    values (structured, namespace stripped) that replace the bed's own; `secrets`: more
    secret config values (`pulumi config set --secret`), e.g. appSecrets. `values`: a
    whole other config instead of the bed's stack (another stack on the bed's hosts); its
    secrets are then `secrets` alone."""
    from . import engine

    state = layout.BedState.load()
    if state is None:
        raise RuntimeError("the test bed is not up: python -m tests.testbed up")
    own = values is None
    values = {**(bed.stack_values(state) if own else values), **(changes or {})}
    config = {**bed.as_pulumi_config(values), **(bed.secret_config() if own else {}),
              **bed.as_pulumi_config(secrets or {})}
    secret_keys = (*engine.DEFAULT_SECRET_KEYS, *(f"djscale:{k}" for k in secrets or {}))
    ENGINE_STATE_DIR.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    outputs, actions = engine.run(config, Path(project_dir), stack, ENGINE_STATE_DIR,
                                  secret_keys=secret_keys)
    bed.log(f"deploy of {project_dir} done in {time.monotonic() - started:.0f}s")
    return (outputs, actions) if with_actions else outputs
