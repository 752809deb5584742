"""Stack configuration: every key declared once, parsed and validated once, at the edge.

    schema.py      the frozen dataclasses; each config key declared on its field
    keys.py        how a key is declared and read (kinds: text, integer, list, object...)
    rules.py       value rules, one function per rule
    parse.py       parse_config and the rules that involve several keys
    reader.py      key paths and problems
    docs.py        Pulumi.yaml's config block and the README table, from the declarations
    stack_file.py  a Pulumi.<stack>.yaml read without Pulumi

Nothing here imports pulumi: components/stack.py turns `pulumi.Config` into the plain
mapping `parse_config` takes; the inspect command reads the stack file directly.
"""
from .parse import TOP_LEVEL_KEYS, parse_config, unchecked_host_keys_warning
from .reader import ConfigError
from .schema import (SECRET_KEYS, SECRETS, AcmeConfig, AppConfig, AppServerConfig,
                     BackupsConfig, BastionConfig, DatabaseConfig, FirewallConfig, HostConfig, ImagesConfig,
                     MaintenanceConfig, NginxConfig, SshConfig, SshTarget, StackConfig,
                     StaticStorageConfig, SuperuserConfig)
from .stack_file import read_stack_file

__all__ = [
    "TOP_LEVEL_KEYS", "parse_config", "unchecked_host_keys_warning", "ConfigError",
    "SECRET_KEYS", "SECRETS", "AcmeConfig", "AppConfig", "AppServerConfig", "BackupsConfig",
    "BastionConfig",
    "DatabaseConfig", "FirewallConfig",
    "HostConfig", "ImagesConfig", "MaintenanceConfig", "NginxConfig", "SshConfig", "SshTarget",
    "StackConfig",
    "StaticStorageConfig", "SuperuserConfig", "read_stack_file",
]
