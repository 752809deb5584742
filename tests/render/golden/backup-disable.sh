#!/usr/bin/env bash
# managed by djscale, do not edit
# Run when backups are turned off (or the host leaves the stack): the timer stops and is no
# longer started at boot. A timer that is already gone is not an error.
set -euo pipefail
systemctl disable --now djscale-backup.timer || true
