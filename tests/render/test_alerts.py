"""djscale's alert unit and script: exact text, systemd's own check of the unit, and the
script run for real with stand-in systemctl, journalctl and logger (tests/render/stubs.py)
writing and clearing its state files."""
from __future__ import annotations

import re
import subprocess
import time

import pytest

from components.render.alerts import (ALERT_SCRIPT_PATH, LAST_LINE_POLL_MS,
                                      LAST_LINE_WAIT_MS, render_alert_script,
                                      render_alert_unit, systemd_exec_path, unit_hooks)
from tests.render.conftest import assert_golden, check_shell
from tests.render.stubs import calls, make_stubs, run_sandboxed

UNIT = "djscale-certbot-renew.service"
TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
FINAL = "djscale: certbot renew failed (its output is above)"
POLL_MS, WAIT_MS = 100, 500  # the scripts run here wait 5 polls of 0.1 s for the final line


def test_alert_script(tmp_path):
    script = render_alert_script()
    assert_golden("alert.sh", script)
    check_shell(script, tmp_path)
    assert "state_dir=/var/lib/djscale/alerts\n" in script
    # a failure waits for the run's final line every 0.5 s, 10 s in all
    assert (LAST_LINE_POLL_MS, LAST_LINE_WAIT_MS) == (500, 10_000)
    assert "\nlast_line_poll=0.500\nlast_line_rereads=20\n" in script


@pytest.mark.parametrize("poll_ms, wait_ms, rendered", [
    (100, 500, "\nlast_line_poll=0.100\nlast_line_rereads=5\n"),
    (300, 1000, "\nlast_line_poll=0.300\nlast_line_rereads=4\n"),  # the wait is not cut
    (1500, 0, "\nlast_line_poll=1.500\nlast_line_rereads=0\n"),  # one read, no wait
])
def test_the_wait_for_the_final_line_is_whole_polls(poll_ms, wait_ms, rendered):
    assert rendered in render_alert_script(last_line_poll_ms=poll_ms, last_line_wait_ms=wait_ms)


@pytest.mark.parametrize("poll_ms, wait_ms", [(0, 1000), (-1, 1000), (500, -1)])
def test_a_wait_without_a_bound_is_refused(poll_ms, wait_ms):
    with pytest.raises(ValueError):
        render_alert_script(last_line_poll_ms=poll_ms, last_line_wait_ms=wait_ms)


def test_alert_unit_text_and_systemd_accepts_it(tmp_path):
    assert render_alert_unit() == """\
# managed by djscale, do not edit
# Named in OnFailure= of djscale's units as djscale-alert@%n.service: the instance is the
# unit that failed.
[Unit]
Description=djscale: alert, %i failed

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/djscale-alert failed %i
"""
    # systemd-analyze checks that ExecStart exists: point it at a real executable here.
    unit = tmp_path / "djscale-alert@.service"
    unit.write_text(render_alert_unit("/bin/true"))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                            text=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_a_unit_uses_the_alerts_with_two_lines():
    assert unit_hooks() == {"on_failure": "djscale-alert@%n.service",
                            "on_success": f"{ALERT_SCRIPT_PATH} succeeded %n"}


@pytest.mark.parametrize("path", ["usr/local/sbin/x", "/usr/local/sbin/my alert",
                                  "/usr/local/sbin/x%i"])
def test_exec_paths_systemd_would_split_or_expand_are_refused(path):
    with pytest.raises(ValueError):
        systemd_exec_path(path)


# --- the script run for real -------------------------------------------------------------

@pytest.fixture
def box(tmp_path):
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    make_stubs(bin_dir, {
        # systemd's view of the failed unit, as `systemctl show -p X --value UNIT` prints it
        "systemctl": """
case "$3" in
    Result) echo "${RESULT-exit-code}" ;;
    ExecMainStatus) echo "${STATUS-1}" ;;
    InvocationID) echo "${INVOCATION-0a1b2c}" ;;
esac""",
        # the failed run's output in the journal; its final line only from read number
        # FINAL_FROM_READ on (journald had not read it from the stream before), never when
        # that is 0 (the unit was killed before it said anything)
        "journalctl": """
case "$*" in
    *_SYSTEMD_INVOCATION_ID=* | *" -u "*)
        reads=$(grep -c -e ' _SYSTEMD_INVOCATION_ID=' -e ' -u ' "$STUB_LOG")
        printf '%s\\n' "Failed to renew certificate www.example.com" ""
        final_from=${FINAL_FROM_READ-1}
        if [ "$final_from" -gt 0 ] && [ "$reads" -ge "$final_from" ]; then
            printf '%s\\n' "djscale: certbot renew failed (its output is above)"
        fi ;;
esac""",
        "logger": "",
    })
    state = tmp_path / "alerts"
    return {"bin": bin_dir, "log": log, "state": state,
            "script": render_alert_script(state_dir=str(state), last_line_poll_ms=POLL_MS,
                                          last_line_wait_ms=WAIT_MS)}


def _run(box, *args, env=None):
    box["log"].unlink(missing_ok=True)
    return run_sandboxed(box["script"], box["bin"], box["log"], *args, env=env)


def test_a_failure_leaves_a_state_file_and_logs_a_critical_entry(box):
    result = _run(box, "failed", UNIT)
    assert result.returncode == 0, result.stderr
    failed = box["state"] / "djscale-certbot-renew.failed"
    assert re.fullmatch(f"""\
unit: djscale-certbot-renew.service
failed at: {TIME}
result: exit-code \\(exit status 1\\)
last lines of the run \\(journalctl -u djscale-certbot-renew.service\\):
  Failed to renew certificate www.example.com
  
  {re.escape(FINAL)}
""", failed.read_text()), failed.read_text()
    assert oct(failed.stat().st_mode & 0o777) == "0o644"
    assert calls(box["log"]) == [
        f"systemctl show -p Result --value {UNIT}",
        f"systemctl show -p ExecMainStatus --value {UNIT}",
        f"systemctl show -p InvocationID --value {UNIT}",
        "journalctl --sync",
        "journalctl -q -o cat -n 20 _SYSTEMD_INVOCATION_ID=0a1b2c",
        f"logger -p daemon.crit -t djscale-alert -- ALERT: {UNIT} failed (exit-code): "
        f"{FINAL}; details: {failed}",
    ]
    assert sorted(p.name for p in box["state"].iterdir()) == ["djscale-certbot-renew.failed"]


def _reads(log) -> list[str]:
    return [c for c in calls(log) if c.startswith("journalctl ")]


def test_a_final_line_journald_had_not_read_yet_is_waited_for(box):
    """The CI failure: the unit's `djscale: ` line reached the journal after the alert
    started. The alert reads again, each time after --sync, until it is there."""
    result = _run(box, "failed", UNIT, env={"FINAL_FROM_READ": "3"})
    assert result.returncode == 0, result.stderr
    failed = box["state"] / "djscale-certbot-renew.failed"
    assert failed.read_text().endswith(
        f"  Failed to renew certificate www.example.com\n  \n  {FINAL}\n"), failed.read_text()
    assert calls(box["log"])[3:] == [
        "journalctl --sync", "journalctl -q -o cat -n 20 _SYSTEMD_INVOCATION_ID=0a1b2c",
    ] * 3 + [f"logger -p daemon.crit -t djscale-alert -- ALERT: {UNIT} failed (exit-code): "
             f"{FINAL}; details: {failed}"]


def test_a_run_without_a_final_line_still_alerts_within_the_bound(box):
    """A unit killed by a signal or a timeout says nothing at the end: after the bound,
    the alert goes out with the lines there are."""
    started = time.monotonic()
    result = _run(box, "failed", UNIT, env={"FINAL_FROM_READ": "0"})
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert WAIT_MS / 1000 <= took < WAIT_MS / 1000 + 5, took  # the polls' sleeps, no more
    assert _reads(box["log"]) == [
        "journalctl --sync", "journalctl -q -o cat -n 20 _SYSTEMD_INVOCATION_ID=0a1b2c",
    ] * (1 + WAIT_MS // POLL_MS)
    failed = box["state"] / "djscale-certbot-renew.failed"
    assert failed.read_text().endswith(
        "last lines of the run (journalctl -u djscale-certbot-renew.service):\n"
        "  Failed to renew certificate www.example.com\n"), failed.read_text()
    assert calls(box["log"])[-1] == (
        f"logger -p daemon.crit -t djscale-alert -- ALERT: {UNIT} failed (exit-code): "
        f"Failed to renew certificate www.example.com; details: {failed}")


def test_a_unit_systemd_no_longer_knows_still_alerts(box):
    """No invocation id (the unit was unloaded meanwhile): its journal by name instead."""
    result = _run(box, "failed", UNIT, env={"INVOCATION": "", "RESULT": "", "STATUS": ""})
    assert result.returncode == 0, result.stderr
    failed = (box["state"] / "djscale-certbot-renew.failed").read_text()
    assert "result: unknown (exit status unknown)\n" in failed
    assert f"journalctl -q -o cat -n 20 -u {UNIT}" in calls(box["log"])
    assert calls(box["log"])[-1].startswith(f"logger -p daemon.crit -t djscale-alert -- "
                                            f"ALERT: {UNIT} failed (unknown): djscale: ")


def test_a_success_records_its_time_and_clears_the_alert_once(box):
    assert _run(box, "failed", UNIT).returncode == 0
    failed, ok = (box["state"] / f"djscale-certbot-renew.{e}" for e in ("failed", "ok"))

    result = _run(box, "succeeded", UNIT)
    assert result.returncode == 0, result.stderr
    assert not failed.exists()
    assert re.fullmatch(f"{TIME}\n", ok.read_text())
    assert calls(box["log"]) == [
        f"logger -p daemon.notice -t djscale-alert -- cleared: {UNIT} succeeded again"]

    assert _run(box, "succeeded", UNIT).returncode == 0
    assert calls(box["log"]) == []  # nothing to clear: nothing logged
    assert sorted(p.name for p in box["state"].iterdir()) == ["djscale-certbot-renew.ok"]


@pytest.mark.parametrize("args", [(), ("failed",), ("alarm", UNIT), ("failed", "../x"),
                                  ("failed", ".service"), ("succeeded", "a/b.service")])
def test_anything_else_is_refused_and_writes_nothing(box, args):
    result = _run(box, *args)
    assert result.returncode == 2
    assert "usage: djscale-alert failed|succeeded UNIT" in result.stderr
    assert calls(box["log"]) == [] and not box["state"].exists()
