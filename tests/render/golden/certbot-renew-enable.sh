#!/usr/bin/env bash
# managed by djscale, do not edit
# Starts the renewal timer once its units are installed; re-run when a unit or the renewal
# script changes, so systemd reads the new unit files.
set -euo pipefail
systemctl daemon-reload
systemctl enable --now djscale-certbot-renew.timer
