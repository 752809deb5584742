"""djscale's alerts: one small mechanism any unit of djscale's can use, so that a failure
that nobody watches (a renewal at night, an expiry check, later the database backups) is
still loud.

A unit opts in with two lines (`unit_hooks()`): `OnFailure=djscale-alert@%n.service`, whose
script writes `<state_dir>/<unit>.failed` (the time, systemd's result, the run's last lines,
for which it waits up to LAST_LINE_WAIT_MS for the final `djscale: ` line saying what
failed) and logs a critical entry (priority 2, identifier `djscale-alert`), and
`ExecStartPost=djscale-alert succeeded %n`, which records the success and removes an alert
that unit had. Only systemd, logger and the files: nothing to install, and the operator
reads it with `journalctl -p crit` or the status command (README, Operations).
"""
from __future__ import annotations

from components.render.templating import render_script, render_template

ALERT_SCRIPT_PATH = "/usr/local/sbin/djscale-alert"
ALERT_UNIT_PATH = "/etc/systemd/system/djscale-alert@.service"
ALERT_STATE_DIR = "/var/lib/djscale/alerts"
ON_FAILURE_UNIT = "djscale-alert@%n.service"  # %n: the full name of the unit that failed
# A failed run's final "djscale: " line can reach the journal after the unit failed (the
# script's comment says why): the alert reads the run's lines again every
# LAST_LINE_POLL_MS until that line is there, for at most LAST_LINE_WAIT_MS in all.
LAST_LINE_POLL_MS = 500
LAST_LINE_WAIT_MS = 10_000


def systemd_exec_path(path: str) -> str:
    """A path as the first word of ExecStart=: absolute, nothing systemd would split."""
    if not path.startswith("/") or any(c.isspace() for c in path) or "%" in path:
        raise ValueError(f"{path!r}: ExecStart needs an absolute path without spaces or %")
    return path


def render_alert_script(state_dir: str = ALERT_STATE_DIR,
                        last_line_poll_ms: int = LAST_LINE_POLL_MS,
                        last_line_wait_ms: int = LAST_LINE_WAIT_MS) -> str:
    """The host script at ALERT_SCRIPT_PATH (`failed UNIT` / `succeeded UNIT`). A failure
    waits at most last_line_wait_ms (rounded up to whole polls) for the run's final line."""
    if last_line_poll_ms <= 0 or last_line_wait_ms < 0:
        raise ValueError("the last line's poll must be positive and its wait not negative")
    rereads = -(-last_line_wait_ms // last_line_poll_ms)  # ceiling: the wait is never cut
    seconds, ms = divmod(last_line_poll_ms, 1000)
    return render_script("alert.sh.j2", state_dir=state_dir,
                         last_line_poll=f"{seconds}.{ms:03d}", last_line_rereads=rereads)


def render_alert_unit(script_path: str = ALERT_SCRIPT_PATH) -> str:
    """The template unit at ALERT_UNIT_PATH: `djscale-alert@<failed unit>.service`."""
    return render_template("alert@.service.j2", script_path=systemd_exec_path(script_path))


def unit_hooks(script_path: str = ALERT_SCRIPT_PATH) -> dict[str, str]:
    """The two lines a oneshot service adds to use the alerts, as template values:
    `on_failure` for [Unit] OnFailure=, `on_success` for [Service] ExecStartPost=."""
    return {"on_failure": ON_FAILURE_UNIT,
            "on_success": f"{systemd_exec_path(script_path)} succeeded %n"}
