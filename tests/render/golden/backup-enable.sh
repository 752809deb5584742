#!/usr/bin/env bash
# managed by djscale, do not edit
# Starts the backup timer once its units and scripts are installed; re-run when one of them
# changes, so systemd reads the new unit files. The schedule is checked by systemd's own
# parser first: a timer it could not read would never run, silently.
set -euo pipefail
schedule='*-*-* 03:00:00'
if ! systemd-analyze calendar "$schedule" >/dev/null; then
    echo "djscale: systemd does not take backups.schedule '$schedule'" >&2
    exit 1
fi
systemctl daemon-reload
systemctl enable --now djscale-backup.timer
