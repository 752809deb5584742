"""Certificate renewal failures are loud (issue 9, item 7), on the bed's proxy.

1. With the ACME CA not answering, a forced renewal through the renewal *service* (the unit
   the timer starts, so its OnFailure= applies; a runtime drop-in gives the script test_50's
   arguments, `--no-random-sleep-on-renew --force-renewal`) fails: djscale-alert@ leaves
   /var/lib/djscale/alerts/djscale-certbot-renew.failed, the proxy's journal holds a
   priority-2 (crit) entry logged from the alert unit, the status command exits 1 naming
   it, and nginx keeps serving the old certificate. With the CA back, the same start
   succeeds, nginx serves a new certificate, the alert file is gone and the status is clean.
   The CA is *paused* (`docker pause`: frozen; the kernel still completes TCP handshakes,
   nothing answers, certbot's requests time out), not stopped: pebble keeps its accounts and
   its root in memory only, so a restarted pebble would refuse certbot's account (every
   later renewal on this bed would fail) and issue from a root the client does not trust.
   Unpaused, it is the same CA, and the proofs after this one find the bed as it was, even
   when an assertion fails midway: then the proof renews once more before it leaves, so no
   alert file of its own stays behind.
2. pebble issues 10-day certificates (acme.CERTIFICATE_DAYS) and the bed's stack warns
   below 7 days (bed.BED_EXPIRY_WARNING_DAYS): the daily check passes there. Deployed with
   the default `acme.expiryWarningDays` (14), the check flags the same certificate (alert
   file, crit entry, status 1); with the bed's own config deployed again it passes and the
   alert clears, so test_60's "a second deploy changes nothing" still starts from the bed's
   config.

Written for the bed; run with `pytest -m testbed tests/testbed` (not run where this was
written: the bed's engine and hosts were in use).
"""
from __future__ import annotations

import json
import re

import pytest

from . import acme, layout
from .bed import BED_EXPIRY_WARNING_DAYS, stack_values
from .deploy import deploy_bed
from .hosts import wait_until

pytestmark = pytest.mark.first_suite  # the hosts' release plays no part (conftest.py)

RENEW_UNIT = "djscale-certbot-renew.service"
CHECK_UNIT = "djscale-certificate-check.service"
CHECK_TIMER = "djscale-certificate-check.timer"
ALERTS = "/var/lib/djscale/alerts"
STATUS = "/usr/local/sbin/djscale-certificate-status"
CHECK_SCRIPT = "/usr/local/sbin/djscale-certificate-check"
DROP_IN_DIR = f"/run/systemd/system/{RENEW_UNIT}.d"  # /run: gone at the next boot anyway
FORCE = f"""set -e
mkdir -p {DROP_IN_DIR}
cat > {DROP_IN_DIR}/djscale-proof.conf <<'UNIT'
[Service]
ExecStart=
ExecStart=/usr/local/sbin/djscale-certbot-renew --no-random-sleep-on-renew --force-renewal
UNIT
systemctl daemon-reload
"""
UNFORCE = f"rm -rf {DROP_IN_DIR}; systemctl daemon-reload"
TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def _now(bed) -> str:
    return bed.sudo("proxy", "date +%s").stdout.strip()


def _start(bed, unit: str, timeout: float = 600):
    """`systemctl start` of a oneshot service returns when its run ends; non-zero when the
    run failed (OnFailure= has then been queued)."""
    return bed.sudo("proxy", f"systemctl start {unit}", check=False, timeout=timeout)


def _alert(bed, unit: str) -> str:
    """The alert file of `unit` ('' when there is none)."""
    name = unit.removesuffix(".service")
    return bed.sudo("proxy", f"cat {ALERTS}/{name}.failed 2>/dev/null || true").stdout


def _crit_entries(bed, since: str, unit: str) -> list[dict]:
    """The proxy's journal entries at priority crit or above from djscale-alert about
    `unit`, since the epoch second `since`."""
    out = bed.sudo("proxy", f"journalctl -q -o json -p crit -t djscale-alert "
                            f"--since @{since}").stdout
    entries = [json.loads(line) for line in out.splitlines() if line.strip()]
    return [e for e in entries if f"ALERT: {unit} failed" in str(e.get("MESSAGE", ""))]


def _raised(bed, since: str, unit: str) -> tuple[str, dict]:
    """Wait for the alert of `unit` (OnFailure= runs the alert unit after the failed run):
    its file, and its crit journal entry; the alert unit for `unit` ran and succeeded."""
    alert = wait_until(f"proxy: the alert file of {unit}", lambda: _alert(bed, unit), 60)
    entries = wait_until(f"proxy: a crit journal entry for {unit}",
                         lambda: _crit_entries(bed, since, unit), 30)
    entry = entries[-1]
    alert_unit = f"djscale-alert@{unit}.service"
    assert entry["PRIORITY"] == "2", entry
    # journald names the sender's unit only when it still finds the process (logger is
    # quick): when it does, it is the alert unit
    assert entry.get("_SYSTEMD_UNIT", alert_unit) == alert_unit, entry
    ran = bed.sudo("proxy", f"systemctl show -p Result -p InvocationID {alert_unit}").stdout
    assert "Result=success\n" in ran and re.search(r"^InvocationID=\w+$", ran, re.M), ran
    name = unit.removesuffix(".service")
    assert entry["MESSAGE"].endswith(f"; details: {ALERTS}/{name}.failed"), entry
    assert re.match(f"unit: {re.escape(unit)}\nfailed at: {TIME}\n"
                    r"result: exit-code \(exit status 1\)\n", alert), alert
    return alert, entry


def _status(bed):
    return bed.sudo("proxy", STATUS, check=False)


def _installed_window(bed) -> int:
    script = bed.sudo("proxy", f"cat {CHECK_SCRIPT}").stdout
    return int(re.search(r"^warning_days=(\d+)$", script, re.M).group(1))


def _served_lifetime(bed) -> tuple[int, int]:
    """notBefore and notAfter (epoch seconds) of the certificate the proxy serves."""
    out = bed.run_in("client", f"""set -euo pipefail
pem=$(openssl s_client -connect {layout.PROXY_ADDRESS}:443 -servername {layout.DOMAIN} \\
      </dev/null 2>/dev/null | openssl x509)
start=$(openssl x509 -noout -startdate <<<"$pem")
end=$(openssl x509 -noout -enddate <<<"$pem")
echo "$(date -u -d "${{start#notBefore=}}" +%s) $(date -u -d "${{end#notAfter=}}" +%s)"
""", timeout=60).stdout.split()
    return int(out[0]), int(out[1])


def _renew_again_while_alerted(bed) -> None:
    """When an assertion failed between the failed renewal and the good one, the renewal's
    alert file stays on the proxy and the proofs after this one (this file's next, test_78's
    status) fail on it too. Once the alert unit is done (it may still be waiting for the
    failed run's last line), one more forced renewal, the CA answering, clears it as the
    good one would have. Nothing to do when the proof went through."""
    alert_unit = f"djscale-alert@{RENEW_UNIT}.service"
    done = (f"! systemctl list-jobs --no-legend | grep -qF {alert_unit} && "
            f"[ \"$(systemctl show -p ActiveState --value {alert_unit})\" != activating ]")
    wait_until(f"proxy: {alert_unit} is done",
               lambda: bed.sudo("proxy", done, check=False).returncode == 0, 90)
    name = RENEW_UNIT.removesuffix(".service")
    if bed.sudo("proxy", f"test -e {ALERTS}/{name}.failed", check=False).returncode == 0:
        _start(bed, RENEW_UNIT)


def test_a_failed_renewal_is_an_alert_until_a_renewal_succeeds(bed, deployed):
    before = bed.served_certificate()
    since = _now(bed)
    acme_container = layout.container_name("acme")
    bed.sudo("proxy", FORCE)
    try:
        bed.engine.docker("pause", acme_container)
        try:
            failed = _start(bed, RENEW_UNIT)
            assert failed.returncode != 0, failed.stdout + failed.stderr
            alert, _ = _raised(bed, since, RENEW_UNIT)
        finally:
            bed.engine.docker("unpause", acme_container)
        assert "djscale: certbot renew failed (its output is above)" in alert, alert
        status = _status(bed)
        assert status.returncode == 1, status.stdout + status.stderr
        assert f"{RENEW_UNIT}: last run FAILED at " in status.stdout, status.stdout
        assert f"--- {ALERTS}/djscale-certbot-renew.failed\n" in status.stdout, status.stdout
        assert bed.served_certificate()["serial"] == before["serial"]  # still the old one

        renewed = _start(bed, RENEW_UNIT)  # the same pebble, answering again
        assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    finally:
        try:
            _renew_again_while_alerted(bed)  # the CA answers again (the inner finally)
        finally:
            bed.sudo("proxy", UNFORCE)
    assert _alert(bed, RENEW_UNIT) == ""
    ok = bed.sudo("proxy", f"cat {ALERTS}/djscale-certbot-renew.ok").stdout
    assert re.fullmatch(f"{TIME}\n", ok), ok
    notices = bed.sudo("proxy", f"journalctl -q -o cat -p notice -t djscale-alert "
                                f"--since @{since}").stdout
    assert f"cleared: {RENEW_UNIT} succeeded again" in notices, notices
    wait_until("proxy: nginx serves the renewed certificate",
               lambda: bed.served_certificate()["serial"] != before["serial"], 30)
    status = _status(bed)
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"{RENEW_UNIT}: last run succeeded at " in status.stdout, status.stdout
    assert status.stdout.endswith(f"== alerts ({ALERTS})\nnone\n"), status.stdout


def test_a_certificate_within_the_warning_window_is_an_alert(bed, deployed):
    enabled = bed.sudo("proxy", f"systemctl is-enabled {CHECK_TIMER}; "
                                f"systemctl is-active {CHECK_TIMER}; "
                                f"systemctl show -p Persistent --value {CHECK_TIMER}")
    assert enabled.stdout.split() == ["enabled", "active", "yes"], enabled.stdout
    start, end = _served_lifetime(bed)
    assert abs(end - start - acme.CERTIFICATE_DAYS * 86400) <= 60, (start, end)
    since = _now(bed)

    # the bed's window: the 10-day certificate passes
    assert _installed_window(bed) == BED_EXPIRY_WARNING_DAYS
    passed = _start(bed, CHECK_UNIT, timeout=120)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert _alert(bed, CHECK_UNIT) == ""

    acme_values = dict(stack_values(bed.state)["acme"])
    del acme_values["expiryWarningDays"]  # the default
    try:
        deploy_bed(changes={"acme": acme_values})
        assert _installed_window(bed) == 14
        flagged = _start(bed, CHECK_UNIT, timeout=120)
        assert flagged.returncode != 0, flagged.stdout + flagged.stderr
        alert, _ = _raised(bed, since, CHECK_UNIT)
        reason = re.search(rf"djscale: the certificate served for {re.escape(layout.DOMAIN)} "
                           rf"expires at {TIME}: (\d+) days left, fewer than 14: renewals "
                           r"are failing", alert)
        assert reason and BED_EXPIRY_WARNING_DAYS <= int(reason.group(1)) < 14, alert
        status = _status(bed)
        assert status.returncode == 1, status.stdout + status.stderr
        assert "days left, fewer than 14: renewals are failing" in status.stdout, status.stdout
        assert f"{CHECK_UNIT}: last run FAILED at " in status.stdout, status.stdout
    finally:
        deploy_bed()  # the bed's own window again
    assert _installed_window(bed) == BED_EXPIRY_WARNING_DAYS
    passed = _start(bed, CHECK_UNIT, timeout=120)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert _alert(bed, CHECK_UNIT) == ""
    status = _status(bed)
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"days left (alert below {BED_EXPIRY_WARNING_DAYS})\n" in status.stdout, status.stdout
    assert f"{CHECK_UNIT}: last run succeeded at " in status.stdout, status.stdout
