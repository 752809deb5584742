#!/usr/bin/env bash
# managed by djscale, do not edit
# Run when djscale removes the certificate timers: they stop and are no longer started at
# boot. A timer that is already gone is not an error.
set -euo pipefail
systemctl disable --now djscale-certbot-renew.timer || true
systemctl disable --now djscale-certificate-check.timer || true
