"""Docker on the app and proxy hosts (assets/templates/install-docker.sh.j2)."""
from __future__ import annotations

from typing import Optional

from components.render.app_image import UPLOAD_DIR
from components.render.templating import render_script


def render_install_docker_script(upload_owner: Optional[str] = None,
                                 upload_dir: str = UPLOAD_DIR, *, buildkit: bool = False) -> str:
    """Install and start the distribution's Docker; with `upload_owner` (the stack's SSH
    user), make `upload_dir` for its SFTP uploads; with `buildkit` (app servers: they build
    the app image), make sure `DOCKER_BUILDKIT=1 docker build` works: the buildx plugin
    installed where the engine's CLI needs it, or a failure saying so."""
    return render_script("install-docker.sh.j2", upload_owner=upload_owner,
                         upload_dir=upload_dir, buildkit=buildkit,
                         version_format="{{.Client.Version}}")
