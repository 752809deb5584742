"""`Pulumi.yaml`'s config block and the README's configuration table, from the declarations
(written by `python -m components.docs --write`, checked by a test).

Pulumi's project config declares top-level keys only, and types only for strings, integers,
booleans and arrays of those: an object gets its description and, when none of its sub-keys
is required, `default: {}` (the program fills in the sub-keys' defaults), so adding a sub-key
does not change `Pulumi.yaml`. The README table has one row per key at every depth.
"""
from __future__ import annotations

import textwrap
from typing import Any, Iterator

import yaml

from .keys import REQUIRED, Conditional, Derived, Key, ListOf, Object, declared_keys
from .parse import PROBLEM_ORDER
from .schema import SECRETS, StackConfig

TABLE_BEGIN = ("<!-- BEGIN config table: generated from components/config/schema.py by "
               "`python -m components.docs --write` -->")
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
        elif entry.map:  # optional: nothing set is an empty map
            rows = [(f"`{name}`", "secret object", "`{}`", entry.doc)]
        else:
            required = "*required*" if entry.required is True else f"*{entry.required}*"
            rows = [(f"`{name}`", "secret string", required, entry.doc)]
        lines += [f"| {' | '.join(row)} |" for row in rows]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- Pulumi.yaml

def _has_required(cls: type) -> bool:
    """True when the object has a required sub-key at any depth (no default then)."""
    for _, key in declared_keys(cls):
        if isinstance(key.default, Conditional):
            return True
        if isinstance(key.kind, Object):
            if not key.kind.optional and _has_required(key.kind.cls):
                return True
        elif key.required:
            return True
    return False


def _declaration(entry: Any) -> dict[str, Any]:
    if not isinstance(entry, Key) and entry.map:  # a map of secrets: untyped, {} = none
        return {"description": entry.doc.replace("`", ""), "secret": True, "default": {}}
    if not isinstance(entry, Key):  # a Secret
        description = entry.doc
        if entry.required is not True:
            description += f" Required: {entry.required}; empty means not set."
        # see schema.Secret: only a required secret can be typed
        declaration = {"type": "string"} if entry.required is True else {}
        declaration |= {"description": description.replace("`", ""), "secret": True}
        if entry.required is not True:
            declaration["default"] = ""
        return declaration
    kind = entry.kind
    declaration: dict[str, Any] = {}
    if kind.pulumi_type:
        declaration["type"] = kind.pulumi_type
    description = entry.doc
    default: Any = None if entry.required else entry.value_default
    if isinstance(kind, Object) or (isinstance(kind, ListOf) and isinstance(kind.item, Object)):
        # sub-keys and their defaults are documented once, in the README table; an object
        # default of {} lets the program fill them in (a stack's object replaces it whole)
        description += f" Keys {entry.name}.*: see the README, Configuration reference."
    if isinstance(kind, Object):
        default = None if (_has_required(kind.cls) and not kind.conditional_default) else {}
    elif isinstance(kind, ListOf):
        # a list of plain values: its default as a list (a key without one is required)
        default = None if entry.required else list(entry.value_default or ())
    declaration["description"] = description.replace("`", "")
    if default is not None:
        declaration["default"] = default
    return declaration


def pulumi_config_block() -> str:
    block = {name: _declaration(entry) for name, entry in top_level()}
    text = yaml.safe_dump(block, sort_keys=False, allow_unicode=True, width=90, indent=2)
    return CONFIG_LINE + textwrap.indent(text, "  ")


def replace_config_block(project_file: str, block: str) -> str:
    start = project_file.index("\n" + CONFIG_LINE) + 1
    return project_file[:start] + block
