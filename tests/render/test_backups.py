"""Backups on the database host: exact text of every script and unit (systemd checks the
units), and the scripts run for real: `pg_dump` of a real PostgreSQL cluster, encrypted with
the real gpg, uploaded by djscale-s3 to moto's S3 server, retention applied there, restored
into a new database that is swapped in by renaming while a session is open on the old one,
and a backup with the S3 server unreachable failing loudly."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from components.config import BackupsConfig
from components.render import backups
from components.render.alerts import render_alert_unit
from tests.render.conftest import assert_golden, check_shell, make_config, replace
from tests.render.test_postgres import _as_postgres, private_cluster  # noqa: F401 (fixture)
from tests.support.postgres import free_port
from tests.support.s3 import s3_fixture

s3 = s3_fixture(scope="module", bucket="djscale-backups")
PASSPHRASE = "correct horse battery staple 42"
STAMP = re.compile(r"backups/django-(\d{8}T\d{6}Z)\.dump(\.gpg)?")


def _cfg(**changes):
    cfg = make_config()
    return replace(cfg, backups=replace(cfg.backups, **changes))


def test_scripts(tmp_path):
    cfg = make_config()
    for name, script in (("backup.sh", backups.render_backup_script(cfg)),
                         ("backup-encrypted.sh", backups.render_backup_script(
                             _cfg(encrypt=True, path_style=True, keep_days=30))),
                         ("restore.sh", backups.render_restore_script(cfg)),
                         ("backup-now.sh", backups.render_backup_now_script()),
                         ("backup-enable.sh", backups.render_enable_backups_script(cfg)),
                         ("backup-disable.sh", backups.render_disable_backups_script()),
                         ("backup-teardown.sh", backups.render_backup_teardown_script()),
                         ("install-backup-tools.sh",
                          backups.render_install_backup_tools_script(_cfg(encrypt=True)))):
        assert_golden(name, script)
        check_shell(script, tmp_path)
    assert "\npackages=(python3)\n" in backups.render_install_backup_tools_script(cfg)
    assert "gpg --batch" not in backups.render_backup_script(cfg)


def test_credentials_and_passphrase_files():
    assert json.loads(backups.render_credentials(make_config(), 'se"cr\\et')) == {
        "accessKeyId": "AKIABACKUPEXAMPLE", "secretAccessKey": 'se"cr\\et'}
    assert backups.render_passphrase(PASSPHRASE) == PASSPHRASE + "\n"
    assert backups.render_s3_tool().startswith(
        "#!/usr/bin/env python3\n# managed by djscale, do not edit\n")


def test_units_text_and_systemd_accepts_them(tmp_path):
    units = {"djscale-backup.service": backups.render_backup_service(),
             "djscale-backup.timer": backups.render_backup_timer(_cfg(schedule="Mon..Fri 02:30"))}
    assert units["djscale-backup.service"] == """\
# managed by djscale, do not edit
[Unit]
Description=djscale: back up the database to S3-compatible storage
Wants=network-online.target
After=network-online.target postgresql.service
# A failed backup is an alert: a critical journal entry and a state file, until a backup
# succeeds again.
OnFailure=djscale-alert@%n.service

[Service]
Type=oneshot
# A dump and its upload may take long on a big database, but a run that hangs for six
# hours is stopped and counted as a failure instead of staying silent.
TimeoutStartSec=6h
Nice=10
IOSchedulingClass=idle
ExecStart=/usr/local/sbin/djscale-backup
ExecStartPost=/usr/local/sbin/djscale-alert succeeded %n
"""
    assert units["djscale-backup.timer"] == """\
# managed by djscale, do not edit
[Unit]
Description=djscale: back up the database on schedule (backups.schedule)

[Timer]
OnCalendar=Mon..Fri 02:30
# A run missed while the server was off happens at boot.
Persistent=true

[Install]
WantedBy=timers.target
"""
    units["djscale-backup.service"] = backups.render_backup_service("/bin/true", "/bin/true")
    units["djscale-alert@.service"] = render_alert_unit("/bin/true")
    for name, text in units.items():
        (tmp_path / name).write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", *(str(tmp_path / n) for n in units)],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_the_enable_step_refuses_a_schedule_systemd_does_not_take(tmp_path):
    script = backups.render_enable_backups_script(_cfg(schedule="*-*-* 25:00"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text("#!/bin/sh\necho \"systemctl $*\" >> \"$LOG\"\n")
    (bin_dir / "systemctl").chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", LOG=str(tmp_path / "log"))
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
    assert result.returncode == 1
    assert "djscale: systemd does not take backups.schedule '*-*-* 25:00'\n" in result.stderr
    assert not (tmp_path / "log").exists()  # nothing enabled
    ok = subprocess.run(["bash", "-c", backups.render_enable_backups_script(make_config())],
                        env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "log").read_text() == (
        "systemctl daemon-reload\nsystemctl enable --now djscale-backup.timer\n")


def test_a_stack_without_backups_cannot_render_them():
    with pytest.raises(ValueError, match="backups are off"):
        backups.render_backup_script(_cfg(enabled=False))


# --- run for real: PostgreSQL, gpg, moto -----------------------------------------------------

@pytest.fixture
def host(private_cluster, s3, tmp_path):  # noqa: F811 (the imported fixture)
    """A database host in miniature: the cluster with the app's role, database and data;
    the scripts' paths in a scratch directory; the credentials and passphrase files."""
    base = Path(tempfile.mkdtemp(prefix="djscale-backups-"))
    os.chmod(base, 0o755)
    creds = base / "s3-credentials.json"
    creds.write_text(json.dumps({"accessKeyId": s3.access_key_id,
                                 "secretAccessKey": s3.secret_access_key}))
    creds.chmod(0o600)
    passphrase = base / "passphrase"
    passphrase.write_text(backups.render_passphrase(PASSPHRASE))
    passphrase.chmod(0o600)
    paths = {"s3_tool": backups.S3_TOOL_SOURCE.as_posix(), "credentials": str(creds),
             "passphrase": str(passphrase), "work_dir": str(base / "work"),
             "lock": str(base / "lock"), "state_file": str(base / "state" / "last-backup")}
    _as_postgres("CREATE ROLE django LOGIN", private_cluster)
    _as_postgres("CREATE DATABASE django OWNER django", private_cluster)
    _sql("SET ROLE django; CREATE TABLE question (id serial PRIMARY KEY, text text);"
         "INSERT INTO question (text) VALUES ('first'), ('second'), ('third');",
         private_cluster)
    client = s3.client()
    for item in client.list_objects_v2(Bucket=s3.bucket).get("Contents", []):
        client.delete_object(Bucket=s3.bucket, Key=item["Key"])
    try:
        yield {"cluster": private_cluster, "paths": paths, "base": base, "s3": s3}
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _sql(sql: str, cluster, database: str = "django") -> str:
    return subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-X", "-At", "-v", "ON_ERROR_STOP=1",
         "-h", cluster["socket"], "-p", cluster["port"], "-d", database],
        input=sql, capture_output=True, text=True, check=True, cwd="/").stdout.strip()


def _config(host, **changes):
    s3 = host["s3"]
    cfg = make_config()
    cfg = replace(cfg, database=replace(cfg.database, port=int(host["cluster"]["port"])))
    return replace(cfg, backups=replace(cfg.backups, **{
        "bucket": s3.bucket, "endpoint_url": s3.endpoint_url, "region": s3.region,
        "path_style": True, **changes}))


def _run(script: str, host, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PGHOST=host["cluster"]["socket"])
    return subprocess.run(["bash", "-c", script, "djscale", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def _keys(host) -> list[str]:
    s3 = host["s3"]
    return sorted(item["Key"] for item in
                  s3.client().list_objects_v2(Bucket=s3.bucket).get("Contents", []))


def _backup(host, cfg) -> str:
    result = _run(backups.render_backup_script(cfg, **host["paths"]), host)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_a_backup_is_uploaded_recorded_and_restored_over_a_damaged_database(host):
    cfg = _config(host)
    out = _backup(host, cfg)
    [key] = _keys(host)
    assert STAMP.fullmatch(key) and not key.endswith(".gpg")
    body = host["s3"].client().get_object(Bucket=host["s3"].bucket, Key=key)["Body"].read()
    assert body.startswith(b"PGDMP")  # pg_dump's custom format
    assert out == f"djscale: backed up django to s3://djscale-backups/{key} ({len(body)} bytes)\n"
    state = Path(host["paths"]["state_file"])
    assert re.fullmatch(rf"time: \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ\ndatabase: django\n"
                        rf"object: s3://djscale-backups/{re.escape(key)}\n"
                        rf"size: {len(body)} bytes\n", state.read_text())
    assert oct(state.stat().st_mode & 0o777) == "0o644"
    assert os.listdir(host["paths"]["work_dir"]) == []  # the dump is gone

    # damage: a table dropped, another row written; a session stays open on the database
    cluster = host["cluster"]
    _sql("DROP TABLE question; CREATE TABLE junk (x int);", cluster)
    session = subprocess.Popen(
        ["runuser", "-u", "postgres", "--", "psql", "-X", "-h", cluster["socket"], "-p",
         cluster["port"], "-d", "django", "-c", "SELECT pg_sleep(120)"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/")
    try:
        time.sleep(0.5)
        restore = _run(backups.render_restore_script(cfg, **host["paths"]), host)
        assert restore.returncode == 0, restore.stdout + restore.stderr
        assert session.wait(timeout=30) != 0  # its session was ended for the swap
    finally:
        session.kill()
    kept = re.search(r"the database it replaced is kept as (djscale_pre_restore_\d{8}T\d{6}Z) ",
                     restore.stdout).group(1)
    assert f"djscale: restored {key} into django; " in restore.stdout
    assert _sql("SELECT string_agg(text, ',' ORDER BY id) FROM question", cluster) == \
        "first,second,third"
    assert _sql("SELECT to_regclass('junk') IS NULL", cluster) == "t"
    # the app's role owns what was restored; the replaced database is kept, closed
    assert _sql("SELECT tableowner FROM pg_tables WHERE tablename = 'question'",
                cluster) == "django"
    assert _sql(f"SELECT datallowconn FROM pg_database WHERE datname = '{kept}'",
                cluster, "postgres") == "f"
    assert _sql("SELECT datallowconn FROM pg_database WHERE datname = 'django'",
                cluster, "postgres") == "t"
    assert "djscale_restoring" not in _sql("SELECT string_agg(datname, ',') FROM pg_database",
                                           cluster, "postgres")
    listing = _run(backups.render_restore_script(cfg, **host["paths"]), host, "--list")
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.startswith(
        "== backups of django in s3://djscale-backups/backups/ (newest first)\n"
        f"{key}\t{len(body)}\t")
    assert listing.stdout.endswith(f"drop with: sudo -u postgres dropdb NAME)\n{kept}\n")


def test_an_encrypted_backup_is_unreadable_in_the_bucket_and_restores_with_the_passphrase(host):
    cfg = _config(host, encrypt=True)
    _backup(host, cfg)
    [key] = _keys(host)
    assert key.endswith(".dump.gpg")
    body = host["s3"].client().get_object(Bucket=host["s3"].bucket, Key=key)["Body"].read()
    assert b"PGDMP" not in body and b"question" not in body
    _sql("DELETE FROM question", host["cluster"])
    restore = _run(backups.render_restore_script(cfg, **host["paths"]), host, key)
    assert restore.returncode == 0, restore.stdout + restore.stderr
    assert _sql("SELECT count(*) FROM question", host["cluster"]) == "3"
    # with another passphrase nothing changes
    Path(host["paths"]["passphrase"]).write_text("another passphrase, 16+ chars\n")
    _sql("DELETE FROM question", host["cluster"])
    wrong = _run(backups.render_restore_script(cfg, **host["paths"]), host, key)
    assert wrong.returncode == 1
    assert wrong.stderr.endswith(f"djscale: decrypting {key} failed (wrong passphrase, or a "
                                 "damaged file); nothing was changed\n")
    assert _sql("SELECT count(*) FROM question", host["cluster"]) == "0"


def test_retention_keeps_the_newest_and_the_young_and_touches_nothing_else(host):
    client, bucket = host["s3"].client(), host["s3"].bucket
    now = time.time()
    old = [time.strftime("backups/django-%Y%m%dT%H%M%SZ.dump", time.gmtime(now - days * 86400))
           for days in (1, 2, 5, 40)]
    others = ["backups/django-notes.txt", "backups/djangox-20200101T000000Z.dump",
              "elsewhere/django-20200101T000000Z.dump"]
    for key in old + others:
        client.put_object(Bucket=bucket, Key=key, Body=b"PGDMP old")
    _backup(host, _config(host, keep_count=2, keep_days=0))
    kept = [k for k in _keys(host) if k not in others]
    assert len(kept) == 2 and old[0] in kept  # the new one and the newest old one
    assert set(others) <= set(_keys(host))

    for key in old:
        client.put_object(Bucket=bucket, Key=key, Body=b"PGDMP old")
    time.sleep(1.1)  # a backup's key holds its second: a new one
    out = _backup(host, _config(host, keep_count=0, keep_days=3))
    left = set(_keys(host))
    assert {old[0], old[1], *kept} <= left  # younger than 3 days: kept
    assert not {old[2], old[3]} & left
    assert f"djscale: retention: deleted s3://djscale-backups/{old[2]}\n" in out
    assert f"djscale: retention: deleted s3://djscale-backups/{old[3]}\n" in out
    assert set(others) <= left

    before = _keys(host)
    time.sleep(1.1)  # a backup's key holds its second: a new one
    _backup(host, _config(host, keep_count=0, keep_days=0))  # both off: nothing deleted
    assert set(before) < set(_keys(host))


def test_a_backup_to_an_unreachable_server_fails_loudly_and_records_nothing(host):
    cfg = replace(_config(host), backups=replace(
        _config(host).backups, endpoint_url=f"http://127.0.0.1:{free_port()}"))
    result = _run(backups.render_backup_script(cfg, **host["paths"]), host)
    assert result.returncode == 1
    assert "djscale-s3: PUT s3://djscale-backups/backups/django-" in result.stderr
    assert "Connection refused" in result.stderr
    assert result.stderr.endswith("djscale: the upload to s3://djscale-backups/backups/django-"
                                  + result.stderr.split("backups/django-")[-1])
    assert not Path(host["paths"]["state_file"]).exists()
    assert os.listdir(host["paths"]["work_dir"]) == []


def test_a_restore_of_a_missing_backup_changes_nothing(host):
    cfg = _config(host)
    none = _run(backups.render_restore_script(cfg, **host["paths"]), host)
    assert (none.returncode, none.stderr) == (
        1, "djscale: no backup of django in s3://djscale-backups/backups/\n")
    missing = _run(backups.render_restore_script(cfg, **host["paths"]), host,
                   "backups/django-20200101T000000Z.dump")
    assert missing.returncode == 1
    assert missing.stderr.endswith("djscale: the download failed (djscale-s3's reason is "
                                   "above); nothing was changed\n")
    assert _sql("SELECT count(*) FROM question", host["cluster"]) == "3"
    usage = _run(backups.render_restore_script(cfg, **host["paths"]), host, "--force")
    assert (usage.returncode, usage.stderr) == (2, "usage: djscale-restore [latest|KEY|--list]\n")
