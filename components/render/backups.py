"""Database backups on the database host: `pg_dump -Fc`, optionally encrypted with gpg, sent
to S3-compatible storage by djscale-s3 (components/s3.py) on a persistent systemd timer,
retention applied after each successful upload; a failed run raises djscale's alert
(components/render/alerts.py) and a successful one records the last backup in a state
file. Also the operator's commands: `djscale-backup-now` and `djscale-restore`.

The storage's secret key and the passphrase reach the host only as root-only (0600) files
(the plan's secret File items); the scripts name those files, never their content.
"""
from __future__ import annotations

import json
import posixpath
from pathlib import Path

from components.config import StackConfig
from components.render import alerts
from components.render.packages import render_install_packages_script
from components.render.templating import render_script, render_template

BACKUP_CONFIG_DIR = "/etc/djscale/backup"
CREDENTIALS_PATH = f"{BACKUP_CONFIG_DIR}/s3-credentials.json"
PASSPHRASE_PATH = f"{BACKUP_CONFIG_DIR}/passphrase"
S3_TOOL_PATH = "/usr/local/lib/djscale/djscale-s3"
BACKUP_SCRIPT_PATH = "/usr/local/sbin/djscale-backup"
BACKUP_SERVICE_PATH = "/etc/systemd/system/djscale-backup.service"
BACKUP_TIMER_PATH = "/etc/systemd/system/djscale-backup.timer"
BACKUP_NOW_PATH = "/usr/local/sbin/djscale-backup-now"
RESTORE_PATH = "/usr/local/sbin/djscale-restore"
STATE_DIR = "/var/lib/djscale/backups"
LAST_BACKUP_PATH = f"{STATE_DIR}/last-backup"
WORK_DIR = f"{STATE_DIR}/work"  # root-only: the dump before it leaves, a download
LOCK_PATH = "/run/djscale-backup.lock"  # one backup or restore at a time
S3_TOOL_SOURCE = Path(__file__).resolve().parents[1] / "s3.py"


def backup_unit() -> str:
    return posixpath.basename(BACKUP_SERVICE_PATH)


def render_s3_tool() -> str:
    """components/s3.py as it is: a stdlib-only program."""
    return S3_TOOL_SOURCE.read_text()


def render_credentials(cfg: StackConfig, secret_key: str) -> str:
    """The root-only credentials file djscale-s3 reads (JSON: any character is safe)."""
    return json.dumps({"accessKeyId": cfg.backups.access_key_id,
                       "secretAccessKey": secret_key}) + "\n"


def render_passphrase(passphrase: str) -> str:
    """gpg's --passphrase-file: the passphrase on the first line."""
    return passphrase + "\n"


def _storage(cfg: StackConfig, paths: dict) -> dict:
    backups = cfg.backups
    if not backups.enabled or not backups.bucket or not backups.access_key_id:
        raise ValueError("backups are off, or have no bucket or access key id")
    return dict(bucket=backups.bucket, prefix=backups.prefix,
                endpoint=backups.endpoint_url or "", region=backups.region,
                path_style=bool(backups.path_style), encrypt=bool(backups.encrypt),
                db_name=cfg.database.name, port=int(cfg.database.port),
                s3_tool=paths.get("s3_tool", S3_TOOL_PATH),
                credentials=paths.get("credentials", CREDENTIALS_PATH),
                passphrase=paths.get("passphrase", PASSPHRASE_PATH),
                work_dir=paths.get("work_dir", WORK_DIR),
                lock=paths.get("lock", LOCK_PATH))


def render_backup_script(cfg: StackConfig, **paths: str) -> str:
    """The host script at BACKUP_SCRIPT_PATH, run by djscale-backup.service. `paths`
    (s3_tool, credentials, passphrase, work_dir, lock, state_file) point elsewhere in
    tests."""
    return render_script("backup.sh.j2", **_storage(cfg, paths),
                         state_file=paths.get("state_file", LAST_BACKUP_PATH),
                         keep_count=int(cfg.backups.keep_count),
                         keep_days=int(cfg.backups.keep_days))


def render_restore_script(cfg: StackConfig, **paths: str) -> str:
    """The operator's command at RESTORE_PATH: `djscale-restore [KEY|latest|--list]`."""
    return render_script("restore.sh.j2", **_storage(cfg, paths), db_user=cfg.database.user)


def render_backup_service(script_path: str = BACKUP_SCRIPT_PATH,
                          alert_script: str = alerts.ALERT_SCRIPT_PATH) -> str:
    return render_template("backup.service.j2",
                           script_path=alerts.systemd_exec_path(script_path),
                           **alerts.unit_hooks(alert_script))


def render_backup_timer(cfg: StackConfig) -> str:
    """The schedule is `backups.schedule`, checked by the config's rule (no `%`, no line
    break) and by systemd-analyze when the timer is enabled."""
    return render_template("backup.timer.j2", schedule=cfg.backups.schedule)


def render_backup_now_script(state_file: str = LAST_BACKUP_PATH,
                             alert_dir: str = alerts.ALERT_STATE_DIR) -> str:
    """The operator's command at BACKUP_NOW_PATH: a backup now, through the unit (so a
    failure raises the alert as the timer's would), then the last backup's record."""
    return render_script("backup-now.sh.j2", unit=backup_unit(), state_file=state_file,
                         alert_dir=alert_dir)


def render_install_backup_tools_script(cfg: StackConfig) -> str:
    """python3 for djscale-s3; gpg when the backups are encrypted (both small, usually
    there already: then nothing is installed)."""
    return render_install_packages_script(
        ("python3", "gpg") if cfg.backups.encrypt else ("python3",))


def render_enable_backups_script(cfg: StackConfig) -> str:
    """Root script: the schedule checked by systemd itself, then the timer started (now and
    at boot)."""
    return render_script("backup-enable.sh.j2", enable=True, schedule=cfg.backups.schedule,
                         timer_unit=posixpath.basename(BACKUP_TIMER_PATH))


def render_disable_backups_script() -> str:
    """Root script for the step's removal (backups turned off): the timer stopped."""
    return render_script("backup-enable.sh.j2", enable=False, schedule="",
                         timer_unit=posixpath.basename(BACKUP_TIMER_PATH))


def render_backup_teardown_script() -> str:
    """When backups leave the stack (turned off, or the host goes): the secret files go."""
    return render_script("backup-teardown.sh.j2", files=[CREDENTIALS_PATH, PASSPHRASE_PATH])
