"""The settings module imported for real, on the operator's machine, in a child process:
which environment variables it reads, and the settings the checks need (INSTALLED_APPS,
WSGI_APPLICATION, ROOT_URLCONF, MIDDLEWARE) as Python computes them.

Best effort: the project's own dependencies (Django first) must be importable by this
Python, and a settings module that needs the real database or network at import fails here.
Either way the checks fall back to reading the source. The child gets the environment the
app containers get, with placeholders for secrets (never their values: the check has none),
writes no bytecode into the project and is stopped after TIMEOUT seconds.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

TIMEOUT = 20
SETTINGS = ("INSTALLED_APPS", "WSGI_APPLICATION", "ROOT_URLCONF", "MIDDLEWARE")

# Runs in the child: os.environ replaced by a dict that records every name looked up
# (os.getenv reads os.environ too), then the settings module imported.
_CHILD = r"""
import importlib, json, os, sys
root, module, wanted = sys.argv[1], sys.argv[2], sys.argv[3:]
read = set()
class Recorder(dict):
    def _note(self, key):
        if isinstance(key, str):
            read.add(key)
    def __getitem__(self, key):
        self._note(key); return super().__getitem__(key)
    def get(self, key, default=None):
        self._note(key); return super().get(key, default)
    def __contains__(self, key):
        self._note(key); return super().__contains__(key)
    def setdefault(self, key, default=None):
        self._note(key); return super().setdefault(key, default)
    def pop(self, key, *default):
        self._note(key); return super().pop(key, *default)
    def copy(self):
        return dict(self)
os.environ = Recorder(os.environ)
os.chdir(root)
sys.path.insert(0, root)
out = {}
try:
    settings = importlib.import_module(module)
    values = {}
    for name in wanted:
        try:
            value = getattr(settings, name)
            json.dumps(value)
            values[name] = value
        except (AttributeError, TypeError, ValueError):
            pass
    out["settings"] = values
except BaseException as error:
    out["error"] = f"{type(error).__name__}: {error}".splitlines()[0][:300]
out["read"] = sorted(read)
sys.stdout.write("\n" + json.dumps(out))
"""


@dataclass(frozen=True)
class Imported:
    read: frozenset[str] = frozenset()
    settings: Mapping[str, object] = field(default_factory=dict)
    error: Optional[str] = None  # why the import failed (then `settings` is empty)


def import_settings(root: Path, module: str, environment: Mapping[str, str],
                    files: Mapping[str, str] = {}) -> Imported:
    """Import `module` with `environment`; `files`: variables whose value is a path the
    settings may check for (the database's CA file), given a scratch file instead."""
    with tempfile.TemporaryDirectory(prefix="djscale-check-") as scratch:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONDONTWRITEBYTECODE": "1",
               "LANG": "C.UTF-8", **environment, "DJANGO_SETTINGS_MODULE": module}
        for name, text in files.items():
            if name in env:
                path = Path(scratch) / Path(env[name]).name
                path.write_text(text)
                env[name] = str(path)
        try:
            result = subprocess.run(
                [sys.executable, "-B", "-c", _CHILD, str(root), module, *SETTINGS],
                env=env, capture_output=True, text=True, timeout=TIMEOUT,
                stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return Imported(error=f"did not finish within {TIMEOUT} s")
    try:
        out = json.loads(result.stdout.rsplit("\n", 1)[-1])
    except ValueError:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return Imported(error=f"the child process failed: {last}")
    return Imported(frozenset(out.get("read", ())), out.get("settings", {}), out.get("error"))
