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
# A failure's lines are read again every last_line_poll seconds, at most last_line_rereads
# times, until the run's final "djscale: " line is there (below).
last_line_poll=0.500
last_line_rereads=20

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

# The failed run's last lines in the journal: of its invocation, else of the unit by name.
run_lines() {
    journalctl --sync >/dev/null 2>&1 || true
    if [ -n "$invocation" ]; then
        journalctl -q -o cat -n 20 "_SYSTEMD_INVOCATION_ID=$invocation" || true
    else
        journalctl -q -o cat -n 20 -u "$unit" || true
    fi
}

last_line() {
    printf '%s\n' "$1" | grep -v '^[[:space:]]*$' | tail -n 1 || true
}

case $action in
    failed)
        result=$(systemctl show -p Result --value "$unit" || true)
        status=$(systemctl show -p ExecMainStatus --value "$unit" || true)
        invocation=$(systemctl show -p InvocationID --value "$unit" || true)
        # journald reads a unit's stdout stream asynchronously, and `journalctl --sync`
        # writes out what journald has read, not what still waits in the stream's socket:
        # on a loaded machine the run's final line can reach the journal after this starts.
        # Every djscale unit ends a failure with one line starting "djscale: " (what
        # failed): read again until the last line is one, for a bounded while. A unit
        # killed by a signal or a timeout may print none: the alert then says what there
        # is, a few seconds late but never lost.
        lines=$(run_lines)
        last=$(last_line "$lines")
        rereads=0
        while [[ $last != "djscale: "* ]] && [ "$rereads" -lt "$last_line_rereads" ]; do
            sleep "$last_line_poll"
            lines=$(run_lines)
            last=$(last_line "$lines")
            rereads=$((rereads + 1))
        done
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
