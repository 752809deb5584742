"""Reading a `Pulumi.<stack>.yaml` without Pulumi: for the inspect command and the tests.

Encrypted values count as present and are never decrypted.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Union

import yaml

from .schema import SECRET_KEYS

NAMESPACE = "djscale"


def read_stack_file(path: Union[str, Path]) -> tuple[dict[str, Any], frozenset[str]]:
    """(raw djscale mapping, secret keys present) of a `Pulumi.<stack>.yaml`.

    Keys of other namespaces are skipped; keys without a namespace belong to the project,
    as Pulumi reads them. A `{secure: ...}` value of a secret key counts as present; a secret
    key given in plain text stays in the mapping, where parse_config rejects it.
    """
    document = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    raw: dict[str, Any] = {}
    secrets: set[str] = set()
    for full_key, value in (document.get("config") or {}).items():
        namespace, _, key = full_key.rpartition(":")
        if namespace not in ("", NAMESPACE):
            continue
        if key in SECRET_KEYS and is_encrypted(value):
            secrets.add(key)
        else:
            raw[key] = value
    return raw, frozenset(secrets)


def is_encrypted(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}
