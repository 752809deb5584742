"""Stack files as the engine hands them to the program (test-only helpers)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Union

from components.config import read_stack_file
from components.config.stack_file import NAMESPACE


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
