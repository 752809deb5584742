"""The one place where text for servers is produced from templates.

Two kinds of templates live in assets/templates/:

* config files (nginx.conf, pg_hba.conf, ...): `render_template` fills them with values the
  renderer has already validated for that file's syntax;
* shell scripts (*.sh.j2): `render_script` shell-quotes every value before the template sees
  it. This is the single quoting boundary: a script template never quotes by itself, and a
  value cannot reach a script unquoted.

Templates only place values (loops and conditionals, no logic), use StrictUndefined so a
missing value fails loudly, and start with the "managed by djscale" header.
"""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Mapping

import jinja2

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "assets" / "templates"
MANAGED_HEADER = "managed by djscale, do not edit"

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,
)


def render_template(template: str, **values: Any) -> str:
    """Render a config-file template; values go in verbatim (the caller validated them)."""
    return _env.get_template(template).render(header=MANAGED_HEADER, **values)


def shell_quote(value: Any) -> Any:
    """Quote a value for a POSIX shell word.

    str/int -> one quoted word; list/tuple -> list of quoted words; bool and None stay as
    they are so templates can branch on them ({% if tls %}), never print them.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return shlex.quote(str(value))
    if isinstance(value, str):
        return shlex.quote(value)
    if isinstance(value, (list, tuple)):
        return [shell_quote(v) for v in value]
    if isinstance(value, Mapping):
        return {k: shell_quote(v) for k, v in value.items()}
    raise TypeError(f"cannot pass {type(value).__name__} to a shell template")


def render_script(template: str, **values: Any) -> str:
    """Render a shell-script template with every value shell-quoted (the quoting boundary)."""
    quoted = {key: shell_quote(value) for key, value in values.items()}
    return _env.get_template(template).render(header=MANAGED_HEADER, **quoted)
