"""Reading a stack's raw config with key paths: problems are collected, never raised.

`Problems` holds every problem found, each starting with its key path. `Section` is one
config object at a key path: it reports unknown keys (with a did-you-mean) and hands out raw
values; the kinds in components/config/keys.py turn those into typed values.
"""
from __future__ import annotations

import difflib
import json
from typing import Any, Iterable

from .rules import show


class ConfigError(ValueError):
    """All problems with a stack's config, one per line, each naming its key path."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__(
            "invalid djscale stack config:\n" + "\n".join(f"  - {p}" for p in self.problems)
        )


class Problems:
    """Every problem found, each starting with its key path, in the order found."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}")

    def __bool__(self) -> bool:
        return bool(self.items)

    def sorted_by(self, top_level_order: list[str]) -> list[str]:
        """The problems grouped by top-level key in `top_level_order` (stable inside)."""
        rank = {key: i for i, key in enumerate(top_level_order)}

        def top(item: str) -> int:
            path = item.split(":", 1)[0]
            name = path.split(".", 1)[0].split("[", 1)[0]
            return rank.get(name, len(rank))
        return sorted(self.items, key=top)


def child_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def decode_json(value: Any, kind: type) -> Any:
    """Pulumi hands objects and lists to the program as JSON strings: accept both forms."""
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        if isinstance(decoded, kind):
            return decoded
    return value


class Section:
    """One config object at a key path; unknown keys are reported when it is made."""

    def __init__(self, problems: Problems, path: str, value: Any, known: Iterable[str]):
        self.problems = problems
        self.path = path
        self.data: dict = {}
        value = decode_json(value, dict)
        if value is None:
            return
        if not isinstance(value, dict):
            problems.add(path, f"expected an object, got {show(value)}")
            return
        self.data = value
        known = list(known)
        for key in sorted(value, key=str):
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]}?)" if close else ""
                problems.add(self.at(str(key)), f"unknown key{hint}")

    def at(self, key: str) -> str:
        return child_path(self.path, key)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def problem(self, key: str, message: str) -> None:
        self.problems.add(self.at(key), message)
