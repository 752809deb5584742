"""components/config/docs.py: Pulumi.yaml's config block and the README table come from the
key declarations, and what they say is what the parser does."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from components.config import ConfigError, SECRET_KEYS, SECRETS, TOP_LEVEL_KEYS, parse_config
from components import docs as generated_docs
from components.config import docs
from components.config.keys import declared_keys
from components.config.schema import StackConfig
from tests.config.test_parse import BOTH_SECRETS, valid

ROOT = Path(__file__).resolve().parents[2]


def project_config() -> dict:
    return yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]


def test_committed_files_are_generated_from_the_declarations_and_plans():
    assert generated_docs.main(["--check", "--project-dir", str(ROOT)]) == 0


@pytest.mark.parametrize("name, old, new", [
    ("README.md", "| `nginx.maxFails` |", "| `nginx.maxFail` |"),  # config table
    ("README.md", "| `db-pg-hba` |", "| `db-hba` |"),  # plan table
    ("Pulumi.yaml", "Proxy tuning.", "Proxy tunings."),
])
def test_check_fails_on_a_stale_file_and_write_fixes_it(tmp_path, name, old, new):
    for each in ("README.md", "Pulumi.yaml", "Pulumi.dev.yaml"):
        (tmp_path / each).write_text((ROOT / each).read_text())
    target = tmp_path / name
    assert old in target.read_text()
    target.write_text(target.read_text().replace(old, new))
    assert generated_docs.main(["--check", "--project-dir", str(tmp_path)]) == 1
    assert generated_docs.main(["--write", "--project-dir", str(tmp_path)]) == 0
    assert generated_docs.main(["--check", "--project-dir", str(tmp_path)]) == 0


def _every_key_path(cls, prefix=""):
    for _, key in declared_keys(cls):
        path = f"{prefix}{key.name}"
        kind = key.kind
        item = getattr(kind, "item", None)
        inner = getattr(kind, "cls", None) or getattr(item, "cls", None)
        if inner is None or getattr(kind, "optional", False) or item is not None:
            yield path
        if inner is not None:
            yield from _every_key_path(inner, f"{path}[]." if item is not None else f"{path}.")


def test_readme_table_has_a_row_for_every_key_at_every_depth():
    table = docs.readme_table()
    for path in _every_key_path(StackConfig):
        assert f"| `{path}` |" in table, path
    for secret in SECRETS:
        kind = "secret object" if secret.map else "secret string"
        assert f"| `{secret.name}` | {kind} |" in table


def test_pulumi_yaml_declares_every_top_level_key():
    declared = project_config()
    assert list(declared) == docs.PROBLEM_ORDER
    assert set(declared) == set(TOP_LEVEL_KEYS) | set(SECRET_KEYS)
    for key, declaration in declared.items():
        assert declaration["description"], key
        assert set(declaration) <= {"type", "description", "default", "secret", "items"}, key
        # project config types are string, integer, boolean and array; objects stay untyped
        assert declaration.get("type", "string") in ("string", "integer", "boolean", "array")
    assert {key for key, d in declared.items() if d.get("secret")} == set(SECRET_KEYS)
    # required keys have no default: Pulumi then insists each stack sets them
    assert {key for key, d in declared.items() if "default" not in d} == {
        "domain", "acme", "database", "appServers", "proxy", "app", "staticStorage",
        "firewall", "staticStorageSecretKey"}


def test_pulumi_yaml_defaults_are_the_program_defaults():
    """Each default object of Pulumi.yaml parses as the key left out. (The stack's `ssh` is
    one of them, so the hosts are compared unpinned: a stack pins its own.)"""
    defaults = {key: d["default"] for key, d in project_config().items()
                if "default" in d and key not in SECRET_KEYS}
    backups_default = defaults.pop("backups")
    base = {key: value for key, value in valid().items() if key != "ssh"}
    assert parse_config(base | defaults, BOTH_SECRETS, check_files=False,
                        require_host_keys=False) == \
        parse_config(base, BOTH_SECRETS, check_files=False, require_host_keys=False)
    # backups' {} (conditional_default): left out or {}, the same problems while they are on
    assert backups_default == {}
    without = {key: value for key, value in base.items() if key != "backups"}
    for raw in (without, without | {"backups": {}}):
        with pytest.raises(ConfigError) as error:
            parse_config(raw, BOTH_SECRETS, check_files=False, require_host_keys=False)
        assert error.value.problems == [
            "backups.bucket: is required: the database is backed up unless backups.enabled "
            "is false",
            "backups.accessKeyId: is required: the database is backed up unless "
            "backups.enabled is false"]
