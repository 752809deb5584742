"""The one place that reads `pulumi.Config`: stack config in, validated objects out.

`load_stack()` turns the stack's `djscale:` config into the plain mapping `parse_config`
takes, validates it (raising ConfigError before any resource exists) and returns the secrets
as `pulumi.Output`s, never as plain values. `read_stack_file()` reads a `Pulumi.<stack>.yaml`
without Pulumi (for the inspect command and tests): encrypted values count as present and are
never decrypted.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import pulumi
import yaml
from pulumi.runtime import config as runtime_config

from components.config import SECRET_KEYS, TOP_LEVEL_KEYS, StackConfig, parse_config

NAMESPACE = "djscale"


@dataclass(frozen=True)
class StackSecrets:
    ssh_private_key: Optional[pulumi.Output[str]]  # None: ssh.privateKeyPath is used
    static_storage_secret_key: pulumi.Output[str]


def load_stack(config: Optional[pulumi.Config] = None) -> tuple[StackConfig, StackSecrets]:
    config = config or pulumi.Config(NAMESPACE)
    raw: dict[str, Any] = {}
    for key in _config_keys(config.name):
        if key in SECRET_KEYS:
            continue
        raw[key] = _read(config, key)
    secrets_present = frozenset(key for key in SECRET_KEYS if config.get(key))
    stack = parse_config(raw, secrets_present)
    secrets = StackSecrets(
        ssh_private_key=(config.get_secret("sshPrivateKey")
                         if "sshPrivateKey" in secrets_present else None),
        static_storage_secret_key=config.require_secret("staticStorageSecretKey"),
    )
    return stack, secrets


def _read(config: pulumi.Config, key: str) -> Any:
    if key == "domain":
        return config.get(key)
    try:
        return config.get_object(key)
    except pulumi.ConfigTypeError:
        return config.get(key)  # not JSON: parse_config names the key and what it expected


def _config_keys(namespace: str) -> list[str]:
    """Every key set in this namespace: declared keys first, then unknown ones (typos)."""
    prefix = f"{namespace}:"
    present = [*runtime_config.CONFIG.get(), *runtime_config.get_config_env()]
    unknown = sorted({key[len(prefix):] for key in present if key.startswith(prefix)}
                     - set(TOP_LEVEL_KEYS) - set(SECRET_KEYS))
    declared = [key for key in TOP_LEVEL_KEYS
                if runtime_config.get_config(prefix + key) is not None]
    return declared + unknown


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
        if key in SECRET_KEYS and _is_encrypted(value):
            secrets.add(key)
        else:
            raw[key] = value
    return raw, frozenset(secrets)


def _is_encrypted(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def stack_file_as_pulumi_config(path: Union[str, Path],
                                secret_values: Optional[dict[str, str]] = None) -> dict[str, str]:
    """The `{"djscale:key": "string"}` map `pulumi.runtime.set_all_config` takes, for mocks.

    Objects become JSON, as the engine passes them; `secret_values` supplies plain values for
    the secret keys (the file holds none).
    """
    raw, _ = read_stack_file(path)
    result = {f"{NAMESPACE}:{key}": value if isinstance(value, str) else json.dumps(value)
              for key, value in raw.items()}
    for key, value in (secret_values or {}).items():
        result[f"{NAMESPACE}:{key}"] = value
    return result
