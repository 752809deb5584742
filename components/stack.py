"""The one place that reads `pulumi.Config`: stack config in, validated objects out.

`load_stack()` turns the stack's `djscale:` config into the plain mapping `parse_config`
takes, validates it (raising ConfigError before any resource exists), warns when hosts are
deployed to without a pinned host key (ssh.insecureSkipHostKeyCheck) and returns the secrets
as `pulumi.Output`s, never as plain values. (A `Pulumi.<stack>.yaml` read without Pulumi:
components/config/stack_file.py.)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import pulumi
from pulumi.runtime import config as runtime_config

from components.config import (SECRET_KEYS, SECRETS, TOP_LEVEL_KEYS, StackConfig,
                               parse_config, unchecked_host_keys_warning)
from components.config.stack_file import NAMESPACE


@dataclass(frozen=True)
class StackSecrets:
    ssh_private_key: Optional[pulumi.Output[str]]  # None: ssh.privateKeyPath is used
    static_storage_secret_key: pulumi.Output[str]
    # appSecrets: {name: value}, {} when none is set; the names are in StackConfig too
    app_secrets: pulumi.Output[dict]
    # None while backups are off / unencrypted
    backup_storage_secret_key: Optional[pulumi.Output[str]] = None
    backup_encryption_passphrase: Optional[pulumi.Output[str]] = None


def load_stack(config: Optional[pulumi.Config] = None) -> tuple[StackConfig, StackSecrets]:
    config = config or pulumi.Config(NAMESPACE)
    raw: dict[str, Any] = {}
    for key in _config_keys(config.name):
        if key not in SECRET_KEYS:
            raw[key] = _read(config, key)
    secrets_present, secret_values = set(), {}
    for secret in SECRETS:
        key = secret.name
        is_secret = runtime_config.is_config_secret(f"{config.name}:{key}")
        if secret.map:
            entries = _read(config, key)  # Pulumi.yaml's default {}: none set
            if not entries:
                continue
            if is_secret and isinstance(entries, dict):  # each one only checked, never kept
                secrets_present.update(f"{key}.{name}" for name in entries)
                secret_values.update({f"{key}.{name}": value
                                      for name, value in entries.items()})
            else:  # parse_config refuses each by name; the values go nowhere
                raw[key] = ({name: "<plain text>" for name in entries}
                            if isinstance(entries, dict) else "<not a map>")
            continue
        value = config.get(key)
        if not value:  # "" is Pulumi.yaml's default for an optional secret: not set
            continue
        if is_secret:
            secrets_present.add(key)
            secret_values[key] = value  # only checked (Secret.rule), never kept
        else:  # parse_config refuses it by name; its value goes nowhere
            raw[key] = "<plain text>"
    stack = parse_config(raw, frozenset(secrets_present), secret_values=secret_values)
    warning = unchecked_host_keys_warning(stack, pulumi.get_stack())
    if warning:  # shown by `pulumi preview` and `pulumi up` alike
        pulumi.log.warn(warning)
    secrets = StackSecrets(
        ssh_private_key=(config.get_secret("sshPrivateKey")
                         if "sshPrivateKey" in secrets_present else None),
        static_storage_secret_key=config.require_secret("staticStorageSecretKey"),
        app_secrets=(config.get_secret_object("appSecrets") if stack.app_secret_names
                     else pulumi.Output.secret({})),
        backup_storage_secret_key=(config.get_secret("backupStorageSecretKey")
                                   if stack.backups.enabled else None),
        backup_encryption_passphrase=(config.get_secret("backupEncryptionPassphrase")
                                      if stack.backups.enabled and stack.backups.encrypt
                                      else None),
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
