"""`python -m components.check_app`: the stack file in, one line per problem out."""
from __future__ import annotations

from pathlib import Path

import pytest

import components.check_app as check_app
from components.check_app import __main__ as cli
from tests.check_app.test_check_app import project

ROOT = Path(__file__).resolve().parents[2]


def test_the_dev_stacks_project_keeps_the_contract(capsys):
    assert cli.main(["--stack", "dev", "--project-dir", str(ROOT)]) == 0
    out = capsys.readouterr().out
    assert out == ("assets/app: keeps djscale's contract (manage.py, settings, WSGI app, "
                   "gunicorn's port 8000, environment, /healthz, migrations)\n")


def test_problems_one_per_line_and_exit_1(capsys, monkeypatch, tmp_path):
    broken = project(tmp_path, "no_health")
    monkeypatch.setattr(check_app, "app_source", lambda cfg: (broken, "site"))
    monkeypatch.setattr(cli, "app_source", lambda cfg: (broken, "site"))
    assert cli.main(["--stack", "dev", "--project-dir", str(ROOT), "--no-import"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("site/shop/urls.py: nothing answers GET "
                                                   "/healthz")


def test_a_missing_stack_file_or_an_invalid_config_exits_2(capsys, tmp_path):
    assert cli.main(["--stack", "nope", "--project-dir", str(tmp_path)]) == 2
    stack = tmp_path / "Pulumi.bad.yaml"
    stack.write_text("config:\n  djscale:domain: not a domain\n")
    assert cli.main(["--stack-file", str(stack)]) == 2
    assert "domain: 'not a domain' is not a fully qualified domain name" in \
        capsys.readouterr().err
