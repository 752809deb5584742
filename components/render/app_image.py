"""The app's image and container: the build context, the image tag, the build script, the
healthcheck.

The context is the Django project's directory (`app.source`), its Dockerfile `app.dockerfile`.
The tag is a hash of exactly what `docker build` sends (components/dockerignore.py, Docker's
own .dockerignore semantics) plus the Dockerfile, so the image is rebuilt only when the app
changes. The deploy uploads those files (and nothing else: no .env of the developer's) to
UPLOAD_DIR/app-<hash> and builds there with BuildKit, for the configured platform. djscale
reads no file of the project beyond that: it never imports or executes the user's code.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from components.dockerignore import DOCKERIGNORE, context_files, context_hash
from components.render.templating import render_script

APP_IMAGE_REPOSITORY = "djscale-app"
CONTAINER_NAME = "djscale-app"
STOP_TIMEOUT = 30  # > gunicorn's graceful_timeout (20 s), see assets/app/gunicorn.conf.py
HEALTH_PATH = "/healthz"
UPLOAD_DIR = "/var/lib/djscale/uploads"  # owned by the SSH user: uploads arrive over SFTP
# Docker platform -> what `uname -m` prints on such a server.
PLATFORM_MACHINES = {"linux/amd64": "x86_64", "linux/arm64": "aarch64",
                     "linux/arm/v7": "armv7l", "linux/386": "i686", "linux/ppc64le": "ppc64le",
                     "linux/s390x": "s390x", "linux/riscv64": "riscv64"}


def ignore_file(context: Path, dockerfile: str = "Dockerfile") -> Optional[Path]:
    """The file BuildKit takes the context's exclusions from: `<Dockerfile>.dockerignore`
    beside the Dockerfile when there is one, else the context's .dockerignore (or none)."""
    specific = context / f"{dockerfile}{DOCKERIGNORE}"
    if specific.is_file():
        return specific
    root = context / DOCKERIGNORE
    return root if root.is_file() else None


def app_content_hash(context: Path, dockerfile: str = "Dockerfile") -> str:
    """sha256 (16 hex digits) over every file the image build sees, and the Dockerfile."""
    return context_hash(context, extra=[context / dockerfile],
                        ignore_file=ignore_file(context, dockerfile))[:16]


def app_image_tag(context: Path, dockerfile: str = "Dockerfile") -> str:
    return f"{APP_IMAGE_REPOSITORY}:{app_content_hash(context, dockerfile)}"


def context_name(context: Path, dockerfile: str = "Dockerfile") -> str:
    """The upload's directory name: one per content, so a half-finished upload of another
    release never mixes with this one."""
    return f"app-{app_content_hash(context, dockerfile)}"


def build_files(context: Path, dockerfile: str = "Dockerfile") -> list[str]:
    """The context's files the build needs: what `docker build` sends, the Dockerfile and
    the ignore file (so the build on the server applies the same rules: an image identical
    to one built from the developer's directory)."""
    ignore = ignore_file(context, dockerfile)
    extra = {dockerfile} | ({ignore.relative_to(context).as_posix()} if ignore else set())
    return sorted({*context_files(context, ignore), *extra})


def healthcheck_command(port: int) -> str:
    """Healthcheck run by /bin/sh inside the app image (python3 is all it needs)."""
    return ("python3 -c 'import sys, urllib.request; sys.exit(0 if urllib.request.urlopen("
            f"\"http://127.0.0.1:{int(port)}{HEALTH_PATH}\", timeout=4).status == 200 else 1)'")


def render_build_image_script(*, tag: str, context: str, platform: str, base_image: str,
                              dockerfile: str = "Dockerfile") -> str:
    """Root script: pull `base_image`, then build `tag` (the context's hash and the base's id)
    from the uploaded `context` with BuildKit unless it exists; print its id."""
    return render_script(
        "build-image.sh.j2", tag=tag, context=context, platform=platform,
        machine=PLATFORM_MACHINES[platform], dockerfile=dockerfile, base_image=base_image,
        id_format="{{.Id}}")
