#!/usr/bin/env bash
# managed by djscale, do not edit
# djscale's alerts, for any djscale unit whose failure must not go unnoticed (README,
# Operations). A unit names djscale-alert@%n.service in OnFailure= and runs
# `djscale-alert succeeded %n` as its ExecStartPost=:
#   djscale-alert failed UNIT     (djscale-alert@UNIT.service) UNIT failed: its state file
#                                 <name>.failed (the time, systemd's result, the run's last
#                                 lines) and a critical entry in the journal (priority 2,
#                                 identifier djscale-alert)
#   djscale-alert succeeded UNIT  UNIT succeeded: <name>.ok holds the time; an alert it had
#                                 is cleared (a notice in the journal)
# <name> is UNIT without ".service"; the files are in state_dir.
set -euo pipefail
state_dir=/var/lib/djscale/alerts

usage() {
    echo "usage: djscale-alert failed|succeeded UNIT" >&2
    exit 2
}
[ "$#" -eq 2 ] || usage
action=$1
unit=$2
name=${unit%.service}
case $action in
    failed | succeeded) ;;
    *) usage ;;
esac
case $name in
    '' | .* | */*) usage ;;
esac
failed=$state_dir/$name.failed
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
install -d -m 0755 "$state_dir"

# Replaced in one rename: a reader never sees half a file.
write_state() {
    local path=$1 tmp
    tmp=$(mktemp "$path.XXXXXX")
    cat > "$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$path"
}

case $action in
    failed)
        result=$(systemctl show -p Result --value "$unit" || true)
        status=$(systemctl show -p ExecMainStatus --value "$unit" || true)
        invocation=$(systemctl show -p InvocationID --value "$unit" || true)
        journalctl --sync 2>/dev/null || true  # the failed run's last lines are written
        if [ -n "$invocation" ]; then
            lines=$(journalctl -q -o cat -n 20 "_SYSTEMD_INVOCATION_ID=$invocation" || true)
        else
            lines=$(journalctl -q -o cat -n 20 -u "$unit" || true)
        fi
        last=$(printf '%s\n' "$lines" | grep -v '^[[:space:]]*$' | tail -n 1 || true)
        write_state "$failed" <<STATE
unit: $unit
failed at: $now
result: ${result:-unknown} (exit status ${status:-unknown})
last lines of the run (journalctl -u $unit):
$(printf '%s\n' "$lines" | sed 's/^/  /')
STATE
        logger -p daemon.crit -t djscale-alert -- \
            "ALERT: $unit failed (${result:-unknown}): ${last:-no output}; details: $failed"
        ;;
    succeeded)
        printf '%s\n' "$now" | write_state "$state_dir/$name.ok"
        if [ -e "$failed" ]; then
            rm -f "$failed"
            logger -p daemon.notice -t djscale-alert -- "cleared: $unit succeeded again"
        fi
        ;;
esac
