"""components/app_server.py: the pure parts (image tag, env parsing)."""
from __future__ import annotations

from pathlib import Path

from components.app_server import app_content_hash, parse_env_file


def _tree(root: Path) -> Path:
    (root / "djsite").mkdir(parents=True)
    (root / "manage.py").write_text("print('hi')\n")
    (root / "djsite" / "settings.py").write_text("DEBUG = False\n")
    (root / ".dockerignore").write_text("# comment\n*.sqlite3\nmedia/\n")
    return root


def test_content_hash_changes_with_any_file_the_build_sees(tmp_path):
    app = _tree(tmp_path / "app")
    before = app_content_hash(app)
    assert len(before) == 16
    assert app_content_hash(app) == before  # deterministic
    (app / "djsite" / "settings.py").write_text("DEBUG = True\n")
    assert app_content_hash(app) != before
    changed = app_content_hash(app)
    (app / "djsite" / "new.py").write_text("")
    assert app_content_hash(app) != changed


def test_content_hash_ignores_caches_and_dockerignored_files(tmp_path):
    app = _tree(tmp_path / "app")
    before = app_content_hash(app)
    (app / "djsite" / "__pycache__").mkdir()
    (app / "djsite" / "__pycache__" / "settings.cpython-311.pyc").write_bytes(b"\0")
    (app / "db.sqlite3").write_text("x")
    (app / "media").mkdir()
    (app / "media" / "upload.png").write_bytes(b"png")
    assert app_content_hash(app) == before


def test_content_hash_of_the_bundled_app_is_stable():
    assert app_content_hash() == app_content_hash()


def test_parse_env_file_reads_docker_env_file_lines_literally():
    text = "# managed by djscale\n\nA=1\nB=x=y \"q\"\nEMPTY=\n  # indented comment\n"
    assert parse_env_file(text) == ["A=1", 'B=x=y "q"', "EMPTY="]

