"""Stack configs for component tests, from the scenario fixtures."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from components.config import StackConfig, parse_config
from components.config import read_stack_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def stack_config(fixture: str = "stack_two_apps.yaml", **changes) -> StackConfig:
    raw, secrets = read_stack_file(FIXTURES / fixture)
    cfg = parse_config(raw, secrets, check_files=False)
    return dataclasses.replace(cfg, **changes)
