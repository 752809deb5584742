"""How a config key is declared once: name, kind (type + rule), default and description.

A key is declared on the field of the frozen dataclass that holds its value
(components/config/schema.py):

    connect_timeout: str = setting("connectTimeout", NGINX_TIME, "1s", "proxy_connect_timeout ...")

From that one declaration come the parser's known keys and typed reading (`read_section`),
the defaults, `Pulumi.yaml`'s config block and the README's configuration table
(components/config/docs.py). Rules that involve more than one key live in
components/config/parse.py.

A kind converts one raw value found at a key path (as Pulumi delivers it: strings for
numbers and booleans are accepted, objects and lists may come as JSON text) and records a
problem instead of raising; the value it returns then is a usable fallback, so one pass
finds every problem.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .reader import Problems, Section, child_path, decode_json
from .rules import show, text_problem


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED = _Required()  # no default: every stack must set the key


@dataclass(frozen=True)
class Derived:
    """The default follows from other keys (`doc` says from what); the field holds None."""

    doc: str


@dataclass(frozen=True)
class Conditional:
    """Required only in some stacks (`doc` says when); parse.py checks it, the field holds None."""

    doc: str


@dataclass(frozen=True)
class Key:
    name: str  # camelCase, as written in the stack config
    kind: "Kind"
    default: Any  # REQUIRED, Derived, Conditional or the value itself
    doc: str
    missing: str = "is required"  # problem text when a required key is absent

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def value_default(self) -> Any:
        """What the field holds when the key is absent."""
        if self.default is REQUIRED or isinstance(self.default, (Derived, Conditional)):
            return None
        return self.default


def setting(name: str, kind: "Kind", default: Any, doc: str, *,
            missing: str = "is required") -> Any:
    """A dataclass field that is the config key `name` (see the module docstring)."""
    key = Key(name, kind, default, " ".join(doc.split()), missing)
    meta = {"key": key}
    if isinstance(kind, Object) and not kind.optional:
        try:  # a section is always there, with its sub-keys' defaults
            kind.cls()
            return field(default_factory=kind.cls, metadata=meta)
        except TypeError:  # it has required sub-keys
            return field(kw_only=True, metadata=meta)
    if default is REQUIRED:  # keyword-only: it may follow fields with defaults
        return field(kw_only=True, metadata=meta)
    return field(default=key.value_default, metadata=meta)


def declared_keys(cls: type) -> list[tuple[str, Key]]:
    """(field name, Key) of every config key declared on the dataclass `cls`, in order."""
    return [(f.name, f.metadata["key"]) for f in dataclasses.fields(cls) if "key" in f.metadata]


# --------------------------------------------------------------------------- reading

@dataclass
class Reading:
    """What one parse carries along: the problems, and how sections become objects.

    `builders` maps a dataclass to a function (values, section, reading) -> object, for the
    sections whose keys depend on each other (parse.py registers them); other sections are
    built as `cls(**values)`.
    """

    problems: Problems
    builders: dict = field(default_factory=dict)
    secrets_present: frozenset = frozenset()
    check_files: bool = True
    require_host_keys: bool = True

    def build(self, cls: type, values: dict, section: Section) -> Any:
        builder = self.builders.get(cls)
        return builder(values, section, self) if builder else cls(**values)


def read_section(section: Section, cls: type, reading: Reading) -> dict[str, Any]:
    """{field name: value} for every key `cls` declares, read from `section`."""
    values = {}
    for attr, key in declared_keys(cls):
        raw = section.data.get(key.name)
        path = section.at(key.name)
        if raw is None:
            if key.required and not isinstance(key.kind, Object):
                reading.problems.add(path, key.missing)
            values[attr] = key.kind.absent(key, path, reading)
        else:
            values[attr] = key.kind.convert(raw, path, key.value_default, reading)
    return values


def read_object(cls: type, path: str, raw: Any, reading: Reading) -> Any:
    """The dataclass `cls` read from the raw object at `path` (unknown keys reported)."""
    section = Section(reading.problems, path, raw, [k.name for _, k in declared_keys(cls)])
    return reading.build(cls, read_section(section, cls, reading), section)


# --------------------------------------------------------------------------- kinds

class Kind:
    doc = "string"  # the type column of the README table
    pulumi_type: Optional[str] = None  # a Pulumi.yaml `type` for a top-level key of this kind

    def convert(self, raw: Any, path: str, fallback: Any, reading: Reading) -> Any:
        raise NotImplementedError

    def absent(self, key: Key, path: str, reading: Reading) -> Any:
        return key.value_default

    def show_default(self, value: Any) -> str:
        if value == "":
            return '`""`'
        return "`null`" if value is None else f"`{value}`"


class Text(Kind):
    """A non-empty string, checked by `rule`, then `normalize`d.

    Every string is taken exactly as written: one with a control character or with
    whitespace at either end is refused, never stripped (rules.text_problem), so the rules
    and the renderers behind them never see one.
    `numbers=True`: a bare number is taken as its text (`postgresVersion: 16`, nginx `30`).
    `empty=True`: "" is a value too (an environment variable set to nothing).
    """

    pulumi_type = "string"

    def __init__(self, rule: Optional[Callable[[str], Optional[str]]] = None, *,
                 doc: str = "string", numbers: bool = False,
                 normalize: Optional[Callable[[str], str]] = None, empty: bool = False):
        self.rule, self.doc, self.numbers, self.normalize = rule, doc, numbers, normalize
        self.empty = empty

    def convert(self, raw, path, fallback, reading):
        if self.numbers and _is_number(raw) and float(raw).is_integer():
            raw = str(int(raw))
        if not isinstance(raw, str):
            reading.problems.add(path, f"expected a string, got {show(raw)}")
            return fallback
        if raw == "" and self.empty:
            return raw
        if not raw.strip():
            reading.problems.add(path, "must not be empty")
            return fallback
        problem = text_problem(raw) or (self.rule(raw) if self.rule else None)
        if problem:
            reading.problems.add(path, problem)
            return fallback
        return self.normalize(raw) if self.normalize else raw


class Integer(Kind):
    pulumi_type = "integer"

    def __init__(self, minimum: Optional[int] = None, maximum: Optional[int] = None):
        self.minimum, self.maximum = minimum, maximum
        bounds = [f"≥ {minimum}"] if minimum is not None else []
        bounds += [f"≤ {maximum}"] if maximum is not None else []
        self.doc = " ".join(["integer", *bounds])

    def convert(self, raw, path, fallback, reading):
        if isinstance(raw, str) and re.fullmatch(r"-?[0-9]+", raw):
            raw = int(raw)
        if not _is_number(raw) or not float(raw).is_integer():
            reading.problems.add(path, f"expected an integer, got {show(raw)}")
            return fallback
        value = int(raw)
        if self.minimum is not None and value < self.minimum:
            reading.problems.add(path, f"must be at least {self.minimum}, got {value}")
            return fallback
        if self.maximum is not None and value > self.maximum:
            reading.problems.add(path, f"must be at most {self.maximum}, got {value}")
            return fallback
        return value


class Port(Integer):
    doc = "integer (port)"

    def __init__(self):
        super().__init__()
        self.doc = "integer (port)"

    def convert(self, raw, path, fallback, reading):
        value = super().convert(raw, path, fallback, reading)
        if value is not None and value is not fallback and not 1 <= value <= 65535:
            reading.problems.add(path, f"{value} is not a port number (1-65535)")
            return fallback
        return value


class Flag(Kind):
    doc = "boolean"
    pulumi_type = "boolean"

    def convert(self, raw, path, fallback, reading):
        if isinstance(raw, str) and raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        if not isinstance(raw, bool):
            reading.problems.add(path, f"expected true or false, got {show(raw)}")
            return fallback
        return raw

    def show_default(self, value):
        return f"`{str(value).lower()}`"


class Items(tuple):
    """A list's valid values; `indexes[i]` is the position of value i in the config list."""

    indexes: tuple[int, ...] = ()


class ListOf(Kind):
    """A list (or its JSON text) of `item` values; a tuple in the config object."""

    def __init__(self, item: Kind, *, doc: Optional[str] = None, empty: Optional[str] = None):
        self.item, self.empty = item, empty
        self.doc = doc or f"list of {item.doc}s"

    def convert(self, raw, path, fallback, reading):
        raw = decode_json(raw, list)
        if not isinstance(raw, list):
            reading.problems.add(path, f"expected a list, got {show(raw)}")
            return Items()
        if not raw and self.empty:
            reading.problems.add(path, self.empty)
        values, indexes = [], []
        for index, entry in enumerate(raw):
            item_path = f"{path}[{index}]"
            if entry is None:
                reading.problems.add(item_path, f"expected {self.item.one}, got null")
                value = self.item.convert({}, item_path, None, reading) if isinstance(
                    self.item, Object) else None
            else:
                value = self.item.convert(entry, item_path, None, reading)
            if value is not None:
                values.append(value)
                indexes.append(index)
        items = Items(values)
        items.indexes = tuple(indexes)
        return items

    def absent(self, key, path, reading):
        items = Items(key.value_default or ())  # the declared default (usually empty)
        items.indexes = tuple(range(len(items)))
        return items

    def show_default(self, value):
        return "`[]`" if not value else "`[" + ", ".join(f'"{v}"' for v in value) + "]`"


class Names(Kind):
    """One name (a string) or several (a list of strings, maybe empty); a tuple of them,
    each checked by `rule`."""

    doc = "name, list of names or `[]`"

    def __init__(self, rule: Callable[[str], Optional[str]]):
        self.rule = rule

    def convert(self, raw, path, fallback, reading):
        raw = decode_json(raw, list)
        entries = [(path, raw)] if isinstance(raw, str) else \
            [(f"{path}[{index}]", name) for index, name in enumerate(raw)] \
            if isinstance(raw, list) else None
        if entries is None:
            reading.problems.add(path, f"expected a name or a list of names, got {show(raw)}")
            return fallback
        names = []
        for entry_path, name in entries:
            if not isinstance(name, str):
                reading.problems.add(entry_path, f"expected a string, got {show(name)}")
                continue
            problem = (text_problem(name) or self.rule(name)) if name.strip() else \
                "must not be empty"
            if problem:
                reading.problems.add(entry_path, problem)
            else:
                names.append(name)
        return tuple(names)

    def show_default(self, value):
        return "`[]`" if not value else ", ".join(f"`{name}`" for name in value)


class MapOf(Kind):
    """An object with free keys (each checked like any text, then by `key_rule`) and `value`
    values; a tuple of pairs in key order (whatever order the stack file or the CLI kept)."""

    def __init__(self, value: Kind, *, doc: str,
                 key_rule: Optional[Callable[[str], Optional[str]]] = None):
        self.value, self.doc, self.key_rule = value, doc, key_rule

    def convert(self, raw, path, fallback, reading):
        raw = decode_json(raw, dict)
        if not isinstance(raw, dict):
            reading.problems.add(path, f"expected an object, got {show(raw)}")
            return ()
        pairs = []
        for name, entry in raw.items():
            name = str(name)
            entry_path = f"{path}[{name!r}]"
            problem = text_problem(name) or (self.key_rule(name) if self.key_rule else None)
            if problem:
                reading.problems.add(entry_path, problem)
                continue
            value = self.value.convert(entry, entry_path, None, reading)
            if value is not None:
                pairs.append((name, value))
        return tuple(sorted(pairs))

    def absent(self, key, path, reading):
        return ()

    def show_default(self, value):
        return "`{}`" if not value else f"`{dict(value)}`"


class Object(Kind):
    """A nested object whose keys the dataclass `cls` declares."""

    one = "an object"

    def __init__(self, cls: type, *, doc: str = "object", optional: bool = False,
                 conditional_default: bool = False):
        """`conditional_default`: its required sub-keys are required only in some stacks
        (the parser says which), so Pulumi.yaml still gives it a default ({}): the CLI must
        not insist on it in every stack."""
        self.cls, self.doc, self.optional = cls, doc, optional
        self.conditional_default = conditional_default

    def convert(self, raw, path, fallback, reading):
        return read_object(self.cls, path, raw, reading)

    def absent(self, key, path, reading):
        """An absent object still gets its sub-keys' defaults (and their required problems),
        unless it is optional (ssh.bastion): then it is None."""
        if self.optional:
            return None
        return read_object(self.cls, path, None, reading)

    def show_default(self, value):
        return "not set" if self.optional else "object"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


Kind.one = "a value"
Text.one = "a string"


def key_path(*parts: str) -> str:
    path = ""
    for part in parts:
        path = child_path(path, part)
    return path
