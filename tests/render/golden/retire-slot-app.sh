#!/usr/bin/env bash
# managed by djscale, do not edit
# After the proxy routes new connections to the release's slot (its map of live slots): the
# other slot's container (and a container of djscale before slots) is retired. Connections
# opened before the switch still reach it and finish there; this waits until the old
# container has no connection left (bounded), then stops
# it gracefully (gunicorn finishes what it holds) and removes it. Its accept queue is empty
# by then, so no request is cut. The slot nginx routes to is recorded for the next release,
# and the release (its image, how the stack named it) appended to the record of releases
# (`app.release: previous` and `python -m components.ops status` read it).
set -euo pipefail
name=djscale-app
active_port=8001
port_a=8000
port_b=8001
container_port=8000
state_file=/var/lib/djscale/app-slot
drain_within=60
stop_timeout=30
releases_file=/var/lib/djscale/releases
origin=current

case "$active_port" in
    "$port_a") active=a; old=("$name-b" "$name") ;;
    "$port_b") active=b; old=("$name-a" "$name") ;;
    *) echo "djscale: $active_port is neither of the app's ports ($port_a, $port_b)" >&2; exit 1 ;;
esac
install -d -m 0755 "$(dirname "$state_file")"
printf '%s\n' "$active" > "$state_file.new"
mv -f "$state_file.new" "$state_file"
image=$(docker container inspect --format '{{.Image}}' "$name-$active")
printf '%s %s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$image" "$origin" >> "$releases_file"

# One field of a container (a `docker --format` template), or DEFAULT when there is no such
# container: `docker container inspect --format` of a missing one prints an empty line
# before failing, so `... || echo DEFAULT` would give "\nDEFAULT".
inspect_field() {  # FORMAT CONTAINER DEFAULT
    local out
    out=$(docker container inspect --format "$1" "$2" 2>/dev/null) || out=$3
    printf '%s\n' "$out"
}
connections() {  # established TCP connections to the app inside container $1 (0: not running)
    local pid
    pid=$(inspect_field '{{.State.Pid}}' "$1" 0)
    [ "$pid" != 0 ] || { echo 0; return; }
    nsenter --target "$pid" --net ss -Htn state established "( sport = :$container_port )" | wc -l
}
for container in "${old[@]}"; do
    docker container inspect "$container" >/dev/null 2>&1 || continue
    deadline=$((SECONDS + drain_within))
    while [ "$SECONDS" -lt "$deadline" ] && [ "$(connections "$container")" -gt 0 ]; do
        sleep 1
    done
    docker stop --time "$stop_timeout" "$container" >/dev/null
    docker rm --force "$container" >/dev/null
    echo "djscale: retired $container" >&2
done
