"""The app's image and container: the build context, the image tag, the healthcheck.

The tag is a hash of exactly what `docker build` sends (components/dockerignore.py, Docker's
own .dockerignore semantics) plus the Dockerfile, so the image is rebuilt only when the app
changes.
"""
from __future__ import annotations

from pathlib import Path

from components.dockerignore import context_hash

PROJECT_ROOT = Path(__file__).resolve().parents[2]
APP_CONTEXT = "assets/app"  # relative to the project root, where `pulumi` runs the program
APP_IMAGE_REPOSITORY = "djscale-app"
CONTAINER_NAME = "djscale-app"
STOP_TIMEOUT = 30  # > gunicorn's graceful_timeout (20 s), see assets/app/gunicorn.conf.py
HEALTH_PATH = "/healthz"


def app_content_hash(context: Path = PROJECT_ROOT / APP_CONTEXT,
                     dockerfile: str = "Dockerfile") -> str:
    """sha256 (16 hex digits) over every file the image build sees, and the Dockerfile."""
    return context_hash(context, extra=[context / dockerfile])[:16]


def app_image_tag(context: Path = PROJECT_ROOT / APP_CONTEXT) -> str:
    return f"{APP_IMAGE_REPOSITORY}:{app_content_hash(context)}"


def healthcheck_command(port: int) -> tuple[str, ...]:
    """Exec-form healthcheck run inside the app image (python3 is all it needs)."""
    return ("CMD", "python3", "-c",
            "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen("
            f"'http://127.0.0.1:{int(port)}{HEALTH_PATH}', timeout=4).status == 200 else 1)")
