"""The templating boundary: every template is marked as managed, missing values fail, and
script values are always shell-quoted."""
from __future__ import annotations

import jinja2
import pytest

from components.render.templating import (MANAGED_HEADER, TEMPLATES_DIR, render_script,
                                          render_template, shell_quote)


def test_every_template_carries_the_managed_header():
    templates = sorted(p for p in TEMPLATES_DIR.glob("*.j2") if not p.name.startswith("_"))
    assert len(templates) >= 15
    for path in templates:
        head = "\n".join(path.read_text().splitlines()[:3])
        assert "{{ header }}" in head, f"{path.name} lacks the managed header"
    assert MANAGED_HEADER == "managed by djscale, do not edit"


def test_a_missing_value_fails_instead_of_rendering_empty():
    with pytest.raises(jinja2.UndefinedError):
        render_template("pg_hba.conf.j2")
    with pytest.raises(jinja2.UndefinedError):
        render_script("install-postgres.sh.j2")


def test_shell_quote_boundary():
    assert shell_quote("a b'c") == "'a b'\"'\"'c'"
    assert shell_quote(5432) == "5432"
    assert shell_quote(["x", "$(y)"]) == ["x", "'$(y)'"]
    assert shell_quote(None) is None and shell_quote(True) is True
    with pytest.raises(TypeError):
        shell_quote(1.5)


def test_script_values_cannot_escape_their_word():
    script = render_script("install-postgres.sh.j2", package="postgresql; rm -rf /",
                           version=None)
    assert "\npackage='postgresql; rm -rf /'\n" in script
