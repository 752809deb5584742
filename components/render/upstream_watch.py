"""The proxy's active check of the app servers (`nginx.hostChecks`): djscale-upstream-watch
(components/upstream_watch.py, installed verbatim), its systemd service, and the step that
(re)starts it. Why and how it decides: that program's docstring; README, Security model."""
from __future__ import annotations

import posixpath
from pathlib import Path

from components.config import StackConfig
from components.render.alerts import systemd_exec_path
from components.render.nginx import NGINX_CONF_PATH
from components.render.templating import render_script, render_template

WATCH_SOURCE = Path(__file__).resolve().parents[1] / "upstream_watch.py"
WATCH_PROGRAM_PATH = "/usr/local/lib/djscale/djscale-upstream-watch"
WATCH_SERVICE_PATH = "/etc/systemd/system/djscale-upstream-watch.service"
WATCH_STATE_PATH = "/run/djscale/upstream-watch.json"
# One probe a second, each a TCP handshake given 0.5 s (a private network answers in well
# under a millisecond; a lost SYN is resent only after 1 s): a server is out after two
# failed probes in a row (one lost packet takes nobody out), in again after two good ones.
INTERVAL_SECONDS = 1
TIMEOUT_SECONDS = 0.5
FAILURES = 2
RECOVERIES = 2


def render_watch_program() -> str:
    """components/upstream_watch.py as it is: a stdlib-only program."""
    return WATCH_SOURCE.read_text()


def render_watch_service(program_path: str = WATCH_PROGRAM_PATH,
                         conf_path: str = NGINX_CONF_PATH,
                         state_path: str = WATCH_STATE_PATH) -> str:
    return render_template(
        "upstream-watch.service.j2", program_path=systemd_exec_path(program_path),
        conf_path=systemd_exec_path(conf_path), state_path=systemd_exec_path(state_path),
        interval=INTERVAL_SECONDS, timeout=TIMEOUT_SECONDS, failures=FAILURES,
        recoveries=RECOVERIES)


def render_enable_watch_script(cfg: StackConfig, service_path: str = WATCH_SERVICE_PATH,
                               state_path: str = WATCH_STATE_PATH) -> str:
    """Root script: the watcher (re)started with its current program and unit when
    `nginx.hostChecks` is on, done once it has completed a round of probes; stopped and
    disabled (its rules removed) when it is off."""
    return render_script("upstream-watch-enable.sh.j2", enable=cfg.nginx.host_checks,
                         unit=posixpath.basename(service_path), state_path=state_path)


def render_disable_watch_script(service_path: str = WATCH_SERVICE_PATH) -> str:
    """Root script for the step's removal (the proxy leaves the stack): stopped, disabled."""
    return render_script("upstream-watch-enable.sh.j2", enable=False,
                         unit=posixpath.basename(service_path))
