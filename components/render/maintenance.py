"""Maintenance mode on the proxy: the page nginx answers with, the operator's command that
switches it, and the step that applies `maintenance.enabled` at deploy time.

nginx looks for MAINTENANCE_FLAG on every request (nginx.conf, rendered by
components/render/nginx.py): while it exists, every client outside `firewall.adminCidrs`
gets 503, the page and `Retry-After`, and nothing reaches the app servers. So switching
needs neither a reload nor a deploy: `sudo djscale-maintenance on|off` makes or removes
the file. Both live in the config directory the nginx container mounts.
"""
from __future__ import annotations

from pathlib import Path

from components.config import StackConfig
from components.render.nginx import MAINTENANCE_FLAG, MAINTENANCE_PAGE_PATH
from components.render.templating import render_script, render_template

__all__ = ["MAINTENANCE_FLAG", "MAINTENANCE_PAGE_PATH", "MAINTENANCE_COMMAND_PATH",
           "render_maintenance_page", "render_maintenance_command",
           "render_maintenance_mode_script"]
MAINTENANCE_COMMAND_PATH = "/usr/local/sbin/djscale-maintenance"


def render_maintenance_page(cfg: StackConfig) -> str:
    """The page: the file `maintenance.page` names (read as it is), or djscale's own."""
    if cfg.maintenance.page:
        return Path(cfg.maintenance.page).read_text(encoding="utf-8")
    return render_template("maintenance.html.j2", domain=_html(cfg.domain))


def _html(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def render_maintenance_command(flag: str = MAINTENANCE_FLAG) -> str:
    """The operator's command at MAINTENANCE_COMMAND_PATH: `on`, `off` or `status`."""
    return render_script("maintenance.sh.j2", flag=flag)


def render_maintenance_mode_script(cfg: StackConfig,
                                   command: str = MAINTENANCE_COMMAND_PATH) -> str:
    """Root script: `maintenance.enabled` applied (the step re-runs only when it changes,
    so a switch made with the command in between stays until then)."""
    return render_script("maintenance-mode.sh.j2", command=command,
                         action="on" if cfg.maintenance.enabled else "off")
