#!/usr/bin/env bash
# managed by djscale, do not edit
# (Re)starts the upstream watcher with the program and unit just installed: re-run when
# either changes. Done when the restarted watcher has written its state once (a full round
# of probes), not merely when systemd has started it.
set -euo pipefail
state=/run/djscale/upstream-watch.json
systemctl daemon-reload
systemctl enable djscale-upstream-watch.service
rm -f "$state"
systemctl restart djscale-upstream-watch.service
for _ in $(seq 100); do
    if [ -s "$state" ] && systemctl is-active --quiet djscale-upstream-watch.service; then
        echo "djscale: djscale-upstream-watch.service running: $(cat "$state")"
        exit 0
    fi
    sleep 0.1
done
echo "djscale: djscale-upstream-watch.service did not complete a round of probes in 10 s:" >&2
journalctl -u djscale-upstream-watch.service -n 20 --no-pager >&2 || true
exit 1
