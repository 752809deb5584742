"""Docker on the app and proxy hosts (assets/templates/install-docker.sh.j2)."""
from __future__ import annotations

from typing import Optional

from components.render.templating import render_script


def render_install_docker_script(docker_user: Optional[str] = None) -> str:
    """Install and start the distribution's Docker; `docker_user` (the stack's SSH user)
    joins the docker group. None or "root": no group change."""
    return render_script("install-docker.sh.j2",
                         docker_user=docker_user if docker_user not in (None, "root") else None)
