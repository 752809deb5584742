"""components/config/keys.py: reading declared keys with their kinds, with key paths."""
from __future__ import annotations

from dataclasses import dataclass

from components.config.keys import (REQUIRED, Derived, Flag, Integer, ListOf, Reading, Text,
                                    declared_keys, read_object, setting)
from components.config.reader import Problems


@dataclass(frozen=True)
class Sample:
    name: str = setting("name", Text(), REQUIRED, "A name.")
    count: int = setting("count", Integer(minimum=1), 1, "How many.")
    enabled: bool = setting("enabled", Flag(), False, "On or off.")
    tags: tuple = setting("tags", ListOf(Text()), (), "Tags.")
    owner: str = setting("owner", Text(), Derived("`name`"), "Who.")


def read(raw) -> tuple[Sample, list[str]]:
    problems = Problems()
    return read_object(Sample, "sample", raw, Reading(problems)), problems.items


def test_declared_keys_in_field_order():
    assert [key.name for _, key in declared_keys(Sample)] == [
        "name", "count", "enabled", "tags", "owner"]


def test_defaults_and_derived_defaults():
    sample, problems = read({"name": "x"})
    assert sample == Sample(name="x", count=1, enabled=False, tags=(), owner=None)
    assert problems == []


def test_problems_name_the_key_path_and_values_fall_back():
    sample, problems = read('{"count": "many", "enabled": "yes", "tags": ["a", 5], "extra": 1}')
    assert problems == [
        "sample.extra: unknown key",
        "sample.name: is required",
        "sample.count: expected an integer, got 'many'",
        "sample.enabled: expected true or false, got 'yes'",
        "sample.tags[1]: expected a string, got 5",
    ]
    assert (sample.count, sample.enabled, sample.tags) == (1, False, ("a",))


def test_string_forms_of_numbers_and_flags():
    sample, problems = read({"name": "x", "count": "3", "enabled": "true", "tags": '["a"]'})
    assert (sample.count, sample.enabled, sample.tags, problems) == (3, True, ("a",), [])


def test_minimum():
    _, problems = read({"name": "x", "count": 0})
    assert problems == ["sample.count: must be at least 1, got 0"]
