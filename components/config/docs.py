"""`Pulumi.yaml`'s config block and the README's configuration table, from the declarations.

    python -m components.config.docs --write    # rewrite both from components/config/schema.py
    python -m components.config.docs --check    # exit 1 when either differs (a test runs this)

Pulumi's project config declares top-level keys only, and types only for strings, integers,
booleans and arrays of those: objects get a description that lists their sub-keys and
defaults, and a `default` object when none of their sub-keys is required. The README table
has one row per key at every depth.
"""
from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import Any, Iterator

import yaml

from .keys import REQUIRED, Conditional, Derived, Key, ListOf, MapOf, Object, declared_keys
from .parse import PROBLEM_ORDER
from .schema import SECRETS, StackConfig

PROJECT_DIR = Path(__file__).resolve().parents[2]
TABLE_BEGIN = ("<!-- BEGIN config table: generated from components/config/schema.py by "
               "`python -m components.config.docs --write` -->")
TABLE_END = "<!-- END config table -->"
CONFIG_LINE = "config:\n"


def top_level() -> list[tuple[str, Any]]:
    """(name, Key or Secret) of every top-level key, in the documented order."""
    entries: dict[str, Any] = {key.name: key for _, key in declared_keys(StackConfig)}
    entries.update({secret.name: secret for secret in SECRETS})
    return [(name, entries[name]) for name in PROBLEM_ORDER]


# --------------------------------------------------------------------------- README table

def _default_text(key: Key) -> str:
    if key.default is REQUIRED:
        empty = isinstance(key.kind, ListOf) and key.kind.empty
        return "*required, ≥ 1*" if empty else "*required*"
    if isinstance(key.default, Conditional):
        return f"*{key.default.doc}*"
    if isinstance(key.default, Derived):
        return key.default.doc
    return key.kind.show_default(key.default)


def _rows(path: str, key: Key) -> Iterator[tuple[str, str, str, str]]:
    kind = key.kind
    if isinstance(kind, Object) and not kind.optional:
        for _, sub in declared_keys(kind.cls):
            yield from _rows(f"{path}.{sub.name}", sub)
        return
    yield f"`{path}`", kind.doc, _default_text(key), key.doc
    if isinstance(kind, ListOf) and isinstance(kind.item, Object):
        for _, sub in declared_keys(kind.item.cls):
            yield from _rows(f"{path}[].{sub.name}", sub)
    elif isinstance(kind, Object):
        for _, sub in declared_keys(kind.cls):
            yield from _rows(f"{path}.{sub.name}", sub)


def readme_table() -> str:
    lines = ["| Key | Type | Default | Description |", "|---|---|---|---|"]
    for name, entry in top_level():
        if isinstance(entry, Key):
            rows = _rows(name, entry)
        else:
            required = "*required*" if entry.required is True else f"*{entry.required}*"
            rows = [(f"`{name}`", "secret string", required, entry.doc)]
        lines += [f"| {' | '.join(row)} |" for row in rows]
    return "\n".join(lines) + "\n"


def replace_table(readme: str, table: str) -> str:
    begin, end = readme.index(TABLE_BEGIN), readme.index(TABLE_END)
    return readme[:begin] + TABLE_BEGIN + "\n" + table + readme[end:]


# --------------------------------------------------------------------------- Pulumi.yaml

def _scalar_defaults(cls: type) -> Any:
    """{key: default} of an object's scalar defaults, or None when a sub-key is required."""
    values = {}
    for _, key in declared_keys(cls):
        if key.required or isinstance(key.default, Conditional):
            return None
        if isinstance(key.kind, Object) and not key.kind.optional:
            if _scalar_defaults(key.kind.cls) is None:
                return None
        elif isinstance(key.default, (str, int, bool)):
            values[key.name] = key.default
    return values


def _summary(cls: type) -> str:
    parts = []
    for _, key in declared_keys(cls):
        if isinstance(key.kind, Object) and not key.kind.optional:
            parts.append(f"{key.name} {_summary(key.kind.cls)}")
        elif key.required:
            parts.append(key.name)
        elif isinstance(key.default, (Derived, Conditional)):
            parts.append(f"{key.name} ({key.default.doc.replace('`', '')})")
        elif isinstance(key.kind, Object):
            parts.append(f"{key.name} (not set, or {_summary(key.kind.cls)})")
        else:
            value = {} if isinstance(key.kind, MapOf) else key.value_default
            parts.append(f"{key.name} ({json.dumps(value, ensure_ascii=False)})")
    return "{" + ", ".join(parts) + "}"


def _declaration(entry: Any) -> dict[str, Any]:
    if not isinstance(entry, Key):  # a Secret
        description = entry.doc
        if entry.required is not True:
            description += f" Required: {entry.required}; empty means not set."
        declaration = {"type": "string", "description": description.replace("`", ""),
                       "secret": True}
        if entry.required is not True:
            declaration["default"] = ""
        return declaration
    kind = entry.kind
    declaration: dict[str, Any] = {}
    if kind.pulumi_type:
        declaration["type"] = kind.pulumi_type
    description = entry.doc
    if isinstance(kind, Object):
        description += f" Object {_summary(kind.cls)}."
        defaults = _scalar_defaults(kind.cls)
    elif isinstance(kind, ListOf) and isinstance(kind.item, Object):
        description += f" List of {_summary(kind.item.cls)}."
        defaults = None
    else:
        defaults = None if entry.required else entry.value_default
    declaration["description"] = description.replace("`", "")
    if defaults is not None:
        declaration["default"] = defaults
    return declaration


def pulumi_config_block() -> str:
    block = {name: _declaration(entry) for name, entry in top_level()}
    text = yaml.safe_dump(block, sort_keys=False, allow_unicode=True, width=90, indent=2)
    return CONFIG_LINE + textwrap.indent(text, "  ")


def replace_config_block(project_file: str, block: str) -> str:
    start = project_file.index("\n" + CONFIG_LINE) + 1
    return project_file[:start] + block


# --------------------------------------------------------------------------- CLI

def _targets(project_dir: Path) -> list[tuple[Path, str]]:
    readme, project = project_dir / "README.md", project_dir / "Pulumi.yaml"
    return [(readme, replace_table(readme.read_text(), readme_table())),
            (project, replace_config_block(project.read_text(), pulumi_config_block()))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.config.docs",
                                     description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite README.md and Pulumi.yaml")
    mode.add_argument("--check", action="store_true", help="exit 1 when they differ")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR)
    args = parser.parse_args(argv)
    stale = [path for path, text in _targets(args.project_dir) if path.read_text() != text]
    if args.write:
        for path, text in _targets(args.project_dir):
            path.write_text(text)
        return 0
    for path in stale:
        print(f"{path} is out of date: python -m components.config.docs --write",
              file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
