"""components/render/app_image.py: the image tag and the healthcheck."""
from __future__ import annotations

from pathlib import Path

from components.render.app_image import (app_content_hash, app_image_tag, build_files,
                                         healthcheck_command, ignore_file)

BUNDLED = Path(__file__).resolve().parents[2] / "assets" / "app"


def _tree(root: Path) -> Path:
    (root / "djsite").mkdir(parents=True)
    (root / "manage.py").write_text("print('hi')\n")
    (root / "djsite" / "settings.py").write_text("DEBUG = False\n")
    (root / ".dockerignore").write_text("# comment\n**/__pycache__\n*.sqlite3\nmedia/\n")
    (root / "Dockerfile").write_text("FROM base\n")
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
    assert app_content_hash(BUNDLED) == app_content_hash(BUNDLED)


def test_content_hash_follows_the_dockerfile_even_when_it_is_dockerignored(tmp_path):
    app = _tree(tmp_path / "app")
    (app / ".dockerignore").write_text("Dockerfile\n")
    before = app_content_hash(app)
    (app / "Dockerfile").write_text("FROM other\n")
    assert app_content_hash(app) != before


def test_content_hash_uses_dockers_own_pattern_rules(tmp_path):
    """`*.pyc` excludes top-level files only in Docker (fnmatch would match at any depth):
    a nested .pyc is sent to the build, so it changes the tag."""
    app = _tree(tmp_path / "app")
    (app / ".dockerignore").write_text("*.pyc\n")
    before = app_content_hash(app)
    (app / "top.pyc").write_bytes(b"\0")
    assert app_content_hash(app) == before
    (app / "djsite" / "nested.pyc").write_bytes(b"\0")
    assert app_content_hash(app) != before


def test_image_tag_names_the_repository_and_the_hash():
    assert app_image_tag(BUNDLED) == f"djscale-app:{app_content_hash(BUNDLED)}"


def test_a_dockerfile_elsewhere_is_hashed_and_uploaded(tmp_path):
    app = _tree(tmp_path / "app")
    (app / "deploy").mkdir()
    (app / "deploy" / "web.Dockerfile").write_text("FROM base\n")
    before = app_content_hash(app, "deploy/web.Dockerfile")
    assert before != app_content_hash(app)
    (app / "deploy" / "web.Dockerfile").write_text("FROM other\n")
    assert app_content_hash(app, "deploy/web.Dockerfile") != before
    assert "deploy/web.Dockerfile" in build_files(app, "deploy/web.Dockerfile")


def test_a_dockerfile_specific_ignore_file_replaces_dockerignore(tmp_path):
    """BuildKit reads `<Dockerfile>.dockerignore` beside the Dockerfile instead of the
    context's .dockerignore: so do the upload and the hash."""
    app = _tree(tmp_path / "app")
    assert ignore_file(app) == app / ".dockerignore"
    (app / "db.sqlite3").write_text("x")
    assert "db.sqlite3" not in build_files(app)
    (app / "Dockerfile.dockerignore").write_text("manage.py\n")
    assert ignore_file(app) == app / "Dockerfile.dockerignore"
    files = build_files(app)
    assert "db.sqlite3" in files and "manage.py" not in files
    assert "Dockerfile.dockerignore" in files  # the server's BuildKit applies it again
    (app / "Dockerfile.dockerignore").unlink()
    (app / ".dockerignore").unlink()
    assert ignore_file(app) is None


def test_healthcheck_is_a_shell_command_on_the_app_port():
    command = healthcheck_command(8123)
    assert command.startswith("python3 -c '")
    assert '"http://127.0.0.1:8123/healthz"' in command
