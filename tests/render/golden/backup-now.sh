#!/usr/bin/env bash
# managed by djscale, do not edit
# `sudo djscale-backup-now` on the database host (README, Operations): a backup now,
# through djscale-backup.service as the timer runs it (a failure raises the alert, a success
# clears it), then the record of the last backup. Exit status 1 when the backup failed.
set -euo pipefail
unit=djscale-backup.service
state_file=/var/lib/djscale/backups/last-backup
alert_dir=/var/lib/djscale/alerts

echo "djscale: starting $unit (its output: journalctl -u $unit)"
if ! systemctl start "$unit"; then
    echo "djscale: the backup FAILED" >&2
    journalctl -q -o cat -n 20 -u "$unit" >&2 || true
    echo "alert: $alert_dir/${unit%.service}.failed" >&2
    exit 1
fi
echo "== last backup ($state_file)"
cat "$state_file"
