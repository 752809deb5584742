"""Backups and restore on the bed (issue 12, items 1 and 2).

1. The program enabled the backup timer on the database host (persistent); a backup taken
   with `djscale-backup-now` lands in the bed's S3 server (moto, bucket djscale-backups) as
   a pg_dump archive and is recorded in the state file.
2. The restore drill: rows written into a table of the app's database, a backup taken, the
   table dropped (damage), then `python3 -m components.restore --stack-file
   Pulumi.testbed.yaml` from the machine (maintenance on at the proxy, `djscale-restore` on
   the database host, maintenance off): the rows are back, the replaced database is kept,
   maintenance mode is off and the site answers.
3. With the S3 server out of reach (the db host's connections to it rejected, so the
   client's retries end at once; moto keeps the static files in memory, and a restarted
   moto would lose them for the proofs after this one) a backup through the unit fails:
   the alert file and a crit journal entry on the database host, `djscale-backup-now` exits
   1; with S3 back, the next backup clears the alert.

Written for the bed; run with `pytest -m testbed tests/testbed` (not run where this was
written: the bed's engine and hosts were in use).
"""
from __future__ import annotations

import json
import re
import subprocess
import sys

from . import layout
from .bed import PROJECT_DIR, STACK_FILE, s3_client
from .hosts import wait_until

UNIT = "djscale-backup.service"
TIMER = "djscale-backup.timer"
ALERT = "/var/lib/djscale/alerts/djscale-backup.failed"
STATE = "/var/lib/djscale/backups/last-backup"
TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
KEY = re.compile(r"backups/django-\d{8}T\d{6}Z\.dump")


def _psql(bed, sql: str) -> str:
    return bed.sudo("db", f"cd / && runuser -u postgres -- psql -X -At -v ON_ERROR_STOP=1 "
                          f"-d django <<'SQL'\n{sql}\nSQL\n").stdout.strip()


def _backups() -> list[str]:
    listing = s3_client().list_objects_v2(Bucket=layout.S3_BACKUP_BUCKET, Prefix="backups/")
    return sorted(item["Key"] for item in listing.get("Contents", []))


def test_the_timer_is_on_and_a_backup_now_lands_in_the_bucket(bed, deployed):
    timer = bed.sudo("db", f"systemctl is-enabled {TIMER}; systemctl is-active {TIMER}; "
                           f"systemctl show -p Persistent --value {TIMER}")
    assert timer.stdout.split() == ["enabled", "active", "yes"], timer.stdout
    before = _backups()
    now = bed.sudo("db", "djscale-backup-now", timeout=600)
    assert "== last backup" in now.stdout, now.stdout + now.stderr
    [key] = sorted(set(_backups()) - set(before))
    assert KEY.fullmatch(key), key
    body = s3_client().get_object(Bucket=layout.S3_BACKUP_BUCKET, Key=key)["Body"].read()
    assert body.startswith(b"PGDMP")
    state = bed.sudo("db", f"cat {STATE}").stdout
    assert re.fullmatch(rf"time: {TIME}\ndatabase: django\nobject: "
                        rf"s3://{layout.S3_BACKUP_BUCKET}/{re.escape(key)}\n"
                        rf"size: {len(body)} bytes\n", state), state


def test_a_dropped_table_comes_back_with_a_restore_and_the_site_answers(bed, deployed):
    _psql(bed, "SET ROLE django; DROP TABLE IF EXISTS bed_proof;"
               "CREATE TABLE bed_proof (id int PRIMARY KEY, note text);"
               "INSERT INTO bed_proof SELECT i, 'row ' || i FROM generate_series(1, 100) i;")
    bed.sudo("db", "djscale-backup-now", timeout=600)
    _psql(bed, "DROP TABLE bed_proof;")
    assert _psql(bed, "SELECT to_regclass('bed_proof') IS NULL") == "t"

    restore = subprocess.run(
        [sys.executable, "-m", "components.restore", "--stack-file", str(STACK_FILE)],
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=900)
    assert restore.returncode == 0, restore.stdout + restore.stderr
    assert "djscale: restore done" in restore.stdout, restore.stdout
    assert _psql(bed, "SELECT count(*), min(note), max(id) FROM bed_proof") == "100|row 1|100"
    kept = _psql(bed, "SELECT string_agg(datname, ',') FROM pg_database "
                      "WHERE datname LIKE 'djscale_pre_restore_%'")
    assert re.fullmatch(r"djscale_pre_restore_\d{8}T\d{6}Z(,.*)?", kept), kept
    assert bed.sudo("proxy", "djscale-maintenance status").stdout == "off\n"
    # the app's persistent connections were ended by the swap: they reconnect
    page = wait_until("the site answers after the restore", lambda: bed.curl(
        f"https://{layout.DOMAIN}/mydb/", "-o", "/dev/null", "-w", "%{http_code}"
    ).stdout == "200", 60)
    assert page
    _psql(bed, "SET ROLE django; DROP TABLE bed_proof;")


def test_a_backup_without_the_s3_server_fails_loudly_until_one_succeeds(bed, deployed):
    s3 = layout.SERVICE_ADDRESSES["s3"]
    since = bed.sudo("db", "date +%s").stdout.strip()
    block = f"iptables -I OUTPUT 1 -d {s3} -p tcp -j REJECT --reject-with tcp-reset"
    bed.run_in("db", block)
    try:
        failed = bed.sudo("db", "djscale-backup-now", check=False, timeout=600)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert "djscale: the backup FAILED" in failed.stderr, failed.stderr
        alert = wait_until("db: the backup's alert file",
                           lambda: bed.sudo("db", f"cat {ALERT} 2>/dev/null || true").stdout, 60)
        assert re.match(rf"unit: {UNIT}\nfailed at: {TIME}\n"
                        r"result: exit-code \(exit status 1\)\n", alert), alert
        assert "djscale: the upload to s3://djscale-backups/backups/django-" in alert, alert
        out = bed.sudo("db", f"journalctl -q -o json -p crit -t djscale-alert "
                             f"--since @{since}").stdout
        entries = [json.loads(line) for line in out.splitlines() if line.strip()]
        assert any(f"ALERT: {UNIT} failed" in e["MESSAGE"] and e["PRIORITY"] == "2"
                   for e in entries), entries
    finally:
        bed.run_in("db", block.replace("-I OUTPUT 1", "-D OUTPUT"))
    again = bed.sudo("db", "djscale-backup-now", timeout=600)
    assert "== last backup" in again.stdout
    assert bed.sudo("db", f"test -e {ALERT} && echo present || echo gone").stdout == "gone\n"
