"""Distribution packages djscale's own tools need on a host (python3, gpg), installed only
when missing: one script for every host role."""
from __future__ import annotations

from components.render.templating import render_script


def render_install_packages_script(packages: tuple[str, ...]) -> str:
    """Root script: the distribution's `packages` installed unless they all are."""
    if not packages:
        raise ValueError("no package to install")
    return render_script("install-packages.sh.j2", packages=list(packages))
