#!/usr/bin/env bash
# managed by djscale, do not edit
# `sudo djscale-certificate-status` on the proxy (README, Operations): the certificate nginx
# serves now, the last renewal and expiry check with their results, the timers, and every
# alert djscale keeps. Exit status 1 while an alert is active or the served certificate is
# missing or within the warning window, so a monitoring agent can run it too.
set -euo pipefail
check=/usr/local/sbin/djscale-certificate-check
state_dir=/var/lib/djscale/alerts
renew_unit=djscale-certbot-renew.service
check_unit=djscale-certificate-check.service
healthy=yes

# The last finished run of a unit, from the files djscale-alert keeps (they survive reboots).
last_run() {
    local unit=$1 name=${1%.service}
    if [ -e "$state_dir/$name.failed" ]; then
        echo "$unit: last run FAILED at $(sed -n 's/^failed at: //p' "$state_dir/$name.failed")"
    elif [ -e "$state_dir/$name.ok" ]; then
        echo "$unit: last run succeeded at $(cat "$state_dir/$name.ok")"
    else
        echo "$unit: no finished run recorded"
    fi
}

echo "== served certificate"
if ! "$check" 2>&1; then
    healthy=no
fi
echo
echo "== last runs"
last_run "$renew_unit"
last_run "$check_unit"
echo
echo "== timers"
systemctl list-timers --all --no-pager "${renew_unit%.service}.timer" \
    "${check_unit%.service}.timer" || true
echo
echo "== alerts ($state_dir)"
shopt -s nullglob
active=no
for alert in "$state_dir"/*.failed; do
    echo "--- $alert"
    cat "$alert"
    active=yes
done
if [ "$active" = yes ]; then
    healthy=no
else
    echo "none"
fi
[ "$healthy" = yes ]
