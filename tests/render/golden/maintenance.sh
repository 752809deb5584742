#!/usr/bin/env bash
# managed by djscale, do not edit
# `sudo djscale-maintenance on|off|status` on the proxy (README, Operations). While the flag
# file exists, nginx answers every client outside firewall.adminCidrs with 503, the
# maintenance page and Retry-After; admin networks reach the app as usual. nginx looks for
# the file on every request: no reload, no deploy. A deploy applies maintenance.enabled only
# when that value changes, so a switch made here stays until then.
#   on      make the flag file (it holds the time it was switched on)
#   off     remove it
#   status  print "on since <time>" or "off" (the default)
set -euo pipefail
flag=/etc/djscale/nginx/maintenance.on

case "${1:-status}" in
    on)
        if [ -e "$flag" ]; then
            echo "djscale: maintenance mode is already on (since $(cat "$flag"))"
            exit 0
        fi
        install -d -m 0755 "$(dirname "$flag")"
        tmp=$(mktemp "$flag.XXXXXX")
        date -u +%Y-%m-%dT%H:%M:%SZ > "$tmp"
        chmod 0644 "$tmp"
        mv -f "$tmp" "$flag"
        echo "djscale: maintenance mode on: clients get 503 and the maintenance page; admin networks reach the app"
        ;;
    off)
        if [ ! -e "$flag" ]; then
            echo "djscale: maintenance mode is already off"
            exit 0
        fi
        rm -f "$flag"
        echo "djscale: maintenance mode off: every client reaches the app"
        ;;
    status)
        if [ -e "$flag" ]; then
            echo "on since $(cat "$flag")"
        else
            echo "off"
        fi
        ;;
    *)
        echo "usage: djscale-maintenance on|off|status" >&2
        exit 2
        ;;
esac
