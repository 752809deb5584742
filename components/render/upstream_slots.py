"""The proxy's release switch (components/upstream_slots.py, installed verbatim): the map of
each app server's live slot, the script that activates a new map, the unit that applies it
at boot. Why a release switches without reloading nginx: that program's docstring; README,
Architecture."""
from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Sequence

from components.render.alerts import systemd_exec_path
from components.render.templating import MANAGED_HEADER, render_script, render_template

SLOTS_SOURCE = Path(__file__).resolve().parents[1] / "upstream_slots.py"
SLOTS_PROGRAM_PATH = "/usr/local/lib/djscale/djscale-upstream-slots"
SLOTS_SERVICE_PATH = "/etc/systemd/system/djscale-upstream-slots.service"
SLOTS_MAP_PATH = "/etc/djscale/upstream-slots"
SLOTS_STAGED_MAP_PATH = "/etc/djscale/upstream-slots.new"


def render_slots_program() -> str:
    """components/upstream_slots.py as it is: a stdlib-only program."""
    return SLOTS_SOURCE.read_text()


def render_slots_map(routes: Sequence[tuple[str, int, int]]) -> str:
    """One line per app server: nginx's connections to ADDRESS:PORT go to ADDRESS:SLOT."""
    lines = [f"# {MANAGED_HEADER}",
             "# nginx's connections to ADDRESS:PORT go to ADDRESS:SLOT_PORT, the app server's",
             "# live release slot (djscale-upstream-slots; read at boot by its unit)",
             "# ADDRESS PORT SLOT_PORT"]
    lines += [f"{address} {port} {slot}" for address, port, slot in routes]
    return "\n".join(lines) + "\n"


def render_slots_service(program_path: str = SLOTS_PROGRAM_PATH,
                         map_path: str = SLOTS_MAP_PATH) -> str:
    return render_template("upstream-slots.service.j2",
                           program_path=systemd_exec_path(program_path),
                           map_path=systemd_exec_path(map_path))


def render_activate_slots_script(reload_nginx: bool, nginx_container: str = "",
                                 nginx_conf: str = "", program_path: str = SLOTS_PROGRAM_PATH,
                                 staged: str = SLOTS_STAGED_MAP_PATH,
                                 target: str = SLOTS_MAP_PATH) -> str:
    """Root script (a File's activation): the staged map checked, put in place and applied.
    `reload_nginx` (nginx.upstreamKeepalive > 0): nginx then reloads too, because connections
    it keeps open to the old slots would otherwise carry new requests there."""
    return render_script("upstream-slots-activate.sh.j2", program=program_path, staged=staged,
                         target=target, reload_nginx=reload_nginx,
                         nginx_container=nginx_container, nginx_conf=nginx_conf)


def render_enable_slots_script(service_path: str = SLOTS_SERVICE_PATH) -> str:
    """Root script: the unit that applies the map at boot, enabled (not started: the deploy
    applies the map itself)."""
    return render_script("upstream-slots-enable.sh.j2", enable=True,
                         unit=posixpath.basename(service_path))


def render_disable_slots_script(service_path: str = SLOTS_SERVICE_PATH) -> str:
    """Root script for the step's removal (the proxy leaves the stack): the unit disabled."""
    return render_script("upstream-slots-enable.sh.j2", enable=False,
                         unit=posixpath.basename(service_path))
