"""Stack files as the Pulumi CLI hands them to the program (test-only helpers)."""
from __future__ import annotations

from pathlib import Path
from typing import Union

from tests.support.cli_config import cli_config

ROOT = Path(__file__).resolve().parents[2]


def cli_stack_config(stack_file: Union[str, Path], secrets: dict[str, str],
                     project_file: Path = ROOT / "Pulumi.yaml") -> tuple[dict[str, str], list[str]]:
    """(config, secret keys) `pulumi up` sends the program: the project's defaults, the stack
    file's values and the given secrets (tests/support/cli_config.py)."""
    return cli_config(project_file, Path(stack_file), secrets)
