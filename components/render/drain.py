"""An app server's drain before its app stops (a shutdown, a reboot, a restart of Docker):
djscale-app-drain, its systemd unit, and the step that enables it. Why: at a shutdown Docker
stops the app while the proxy still sends it requests; gunicorn resets the connections
waiting in its accept queue, and nginx may send a GET on to another server but never a POST
it has sent (measured: `python3 -m bench.reboot`, README Benchmarks). Refusing new
connections first makes nginx's connect fail at once, so the request goes elsewhere, and
the requests in flight finish before the container stops."""
from __future__ import annotations

import posixpath
from typing import Sequence

from components.render.alerts import systemd_exec_path
from components.render.containers import PID_FORMAT
from components.render.templating import render_script, render_template

DRAIN_SCRIPT_PATH = "/usr/local/sbin/djscale-app-drain"
DRAIN_SERVICE_PATH = "/etc/systemd/system/djscale-app-drain.service"
# Requests in flight get this long to finish once no new one arrives; the unit's stop gets
# this plus a margin, so systemd never kills the drain before Docker's own stop.
DRAIN_WITHIN_SECONDS = 30


def render_drain_script(ports: Sequence[int], name: str, container_port: int,
                        drain_within: int = DRAIN_WITHIN_SECONDS) -> str:
    return render_script("app-drain.sh.j2", ports=[int(p) for p in ports], name=name,
                         container_port=int(container_port), drain_within=int(drain_within),
                         pid_format=PID_FORMAT)


def render_drain_service(script_path: str = DRAIN_SCRIPT_PATH,
                         drain_within: int = DRAIN_WITHIN_SECONDS) -> str:
    return render_template("app-drain.service.j2", script_path=systemd_exec_path(script_path),
                           stop_timeout=int(drain_within) + 15)


def render_enable_drain_script(service_path: str = DRAIN_SERVICE_PATH) -> str:
    """Root script: the unit (re)loaded, enabled and started (its start opens the ports)."""
    return render_script("app-drain-enable.sh.j2", enable=True,
                         unit=posixpath.basename(service_path))


def render_disable_drain_script(service_path: str = DRAIN_SERVICE_PATH,
                                script_path: str = DRAIN_SCRIPT_PATH) -> str:
    """Root script for the step's removal (the server leaves the stack, out of the upstream
    by then): the unit stopped and disabled, its rules removed."""
    return render_script("app-drain-enable.sh.j2", enable=False,
                         unit=posixpath.basename(service_path), script_path=script_path)
