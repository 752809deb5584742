"""Reading a `Pulumi.<stack>.yaml` without Pulumi: for the inspect command and the tests.

Encrypted values count as present and are never decrypted.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Union

import yaml

from .schema import SECRET_KEYS, SECRETS

MAP_SECRETS = frozenset(secret.name for secret in SECRETS if secret.map)

NAMESPACE = "djscale"


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML reads YAML 1.1 (`off`, `yes` are booleans; dates become date objects); the
    Pulumi CLI reads stack files with gopkg.in/yaml.v3, YAML 1.2: only true/false are
    booleans and dates stay strings. Read them the CLI's way, so that inspect accepts exactly
    what `pulumi up` does (`proxyBuffering: off` is the string "off" for both)."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers
            if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"))


def read_stack_file(path: Union[str, Path]) -> tuple[dict[str, Any], frozenset[str]]:
    """(raw djscale mapping, secret keys present) of a `Pulumi.<stack>.yaml`.

    Keys of other namespaces are skipped; keys without a namespace belong to the project,
    as Pulumi reads them. A `{secure: ...}` value of a secret key counts as present; a secret
    key given in plain text stays in the mapping, where parse_config rejects it. In a map of
    secrets (`appSecrets`), each `{secure: ...}` entry counts as present by its path
    (`appSecrets.SENTRY_DSN`) and the plain ones stay in the mapping.
    """
    document = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_Yaml12Loader) or {}
    raw: dict[str, Any] = {}
    secrets: set[str] = set()
    for full_key, value in (document.get("config") or {}).items():
        namespace, _, key = full_key.rpartition(":")
        if namespace not in ("", NAMESPACE):
            continue
        if key in SECRET_KEYS and is_encrypted(value):
            secrets.add(key)  # a map of secrets set as one: its names are not known here
        elif key in MAP_SECRETS and isinstance(value, dict):
            secrets.update(f"{key}.{name}" for name, entry in value.items()
                           if is_encrypted(entry))
            plain = {name: entry for name, entry in value.items() if not is_encrypted(entry)}
            if plain:
                raw[key] = plain
        else:
            raw[key] = value
    return raw, frozenset(secrets)


def is_encrypted(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def assume_secrets(raw: dict[str, Any],
                   present: frozenset[str]) -> tuple[frozenset[str], list[str]]:
    """(secrets to parse with, the ones assumed) for a command that reads a stack file
    without Pulumi: secrets are never read there, so a missing one counts as set (the
    commands say so; `pulumi up` refuses until it is)."""
    ssh = raw.get("ssh") if isinstance(raw.get("ssh"), dict) else {}
    wanted = {"staticStorageSecretKey"}
    if not ssh.get("privateKeyPath"):
        wanted.add("sshPrivateKey")
    backups = raw.get("backups") if isinstance(raw.get("backups"), dict) else {}
    database = raw.get("database") if isinstance(raw.get("database"), dict) else {}
    if backups.get("enabled") is not False and not database.get("stack"):
        wanted.add("backupStorageSecretKey")
        if backups.get("encrypt") is True:
            wanted.add("backupEncryptionPassphrase")
    missing = sorted(wanted - present)
    return present | frozenset(missing), missing
