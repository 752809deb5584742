#!/usr/bin/env bash
# managed by djscale, do not edit
# Run when nginx.hostChecks is off, or the proxy leaves the stack: the watcher stops (its
# rules go with it: ExecStopPost) and is no longer started at boot. A unit that is not there
# is not an error.
set -euo pipefail
systemctl disable --now djscale-upstream-watch.service 2>/dev/null || true
