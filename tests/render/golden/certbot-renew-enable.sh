#!/usr/bin/env bash
# managed by djscale, do not edit
# Starts the certificate timers (renewal, expiry check) once their units are installed;
# re-run when a unit or a script changes, so systemd reads the new unit files.
set -euo pipefail
systemctl daemon-reload
systemctl enable --now djscale-certbot-renew.timer
systemctl enable --now djscale-certificate-check.timer
