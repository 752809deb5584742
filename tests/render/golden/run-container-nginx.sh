#!/usr/bin/env bash
# managed by djscale, do not edit
# One long-running container, safe to re-run. Its settings (the `docker run` arguments,
# the image, the content of its env file and of the files it mounts alone) are hashed
# into a label: a container that already runs with the same settings (and is healthy) is
# left alone; otherwise the old one is stopped and kept aside, the new one started and
# waited for; if it never becomes healthy it is removed and the old one started again, and
# the step fails. Containers with this name's label that are neither (left by an
# interrupted run) are removed first.
set -euo pipefail
name=djscale-nginx
image=nginx:1.30
settings_base=0df1f98b67751f63
healthy_within=30
stop_timeout=10
settings="$settings_base"
docker image inspect "$image" >/dev/null 2>&1 || docker pull --quiet "$image" >&2

# One field of a container (a `docker --format` template), or DEFAULT when there is no such
# container: `docker container inspect --format` of a missing one prints an empty line
# before failing, so `... || echo DEFAULT` would give "\nDEFAULT".
inspect_field() {  # FORMAT CONTAINER DEFAULT
    local out
    out=$(docker container inspect --format "$1" "$2" 2>/dev/null) || out=$3
    printf '%s\n' "$out"
}
label() { inspect_field '{{index .Config.Labels "djscale.settings"}}' "$1" ""; }  # empty when absent
state() {  # "running healthy", "running starting", "exited none", ..., "gone none"
    inspect_field '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$1" "gone none"
}
exists() { docker container inspect "$1" >/dev/null 2>&1; }

# An interrupted run may have left the old container aside and nothing in its place.
if ! exists "$name" && exists "$name-previous"; then
    docker rename "$name-previous" "$name"
fi
# Anything else carrying this name's label is a leftover of an interrupted or failed run.
current_id=$(inspect_field '{{.Id}}' "$name" "")
for id in $(docker container ls --all --quiet --no-trunc --filter "label=djscale.container=$name"); do
    if [ "$id" != "$current_id" ]; then
        echo "djscale: removing leftover container ${id:0:12}" >&2
        docker rm --force "$id" >/dev/null
    fi
done

ready="running none"
state_now() { state "$1"; }  # no healthcheck: running is ready
if [ -n "$current_id" ] && [ "$(label "$name")" = "$settings" ] \
        && [ "$(state_now "$name")" = "$ready" ]; then
    echo "djscale: $name already runs these settings" >&2
    exit 0
fi

wait_ready() {  # until the container is ready; fails early when it stops
    local deadline=$((SECONDS + healthy_within)) now
    while [ "$SECONDS" -lt "$deadline" ]; do
        now=$(state_now "$1")
        [ "$now" = "$ready" ] && return 0
        # stopped, or its healthcheck gave up (start period over, every retry failed): done
        case "$now" in "running unhealthy") return 1 ;; running\ *) ;; *) return 1 ;; esac
        sleep 1
    done
    return 1
}

if [ -n "$current_id" ]; then
    docker stop --time "$stop_timeout" "$name" >/dev/null
    docker rename "$name" "$name-previous"
fi
docker run --detach --name "$name" --label "djscale.container=$name" \
    --label "djscale.settings=$settings" \
    --restart unless-stopped \
    --stop-timeout 10 \
    --log-driver json-file \
    --log-opt max-size=10m \
    --log-opt max-file=5 \
    --network host \
    --volume /etc/djscale/nginx:/etc/djscale/nginx:ro \
    --volume /etc/letsencrypt:/etc/letsencrypt:ro \
    --volume /var/www/certbot:/var/www/certbot:ro \
    "$image" nginx -g 'daemon off;' -c /etc/djscale/nginx/nginx.conf >/dev/null

if wait_ready "$name"; then
    if exists "$name-previous"; then
        docker rm --force "$name-previous" >/dev/null
    fi
    echo "djscale: $name started ($settings)" >&2
    exit 0
fi

echo "djscale: $name did not become ready within ${healthy_within}s ($(state "$name")); its last log lines:" >&2
docker logs --tail 30 "$name" >&2 2>&1 || true
docker rm --force "$name" >/dev/null
if exists "$name-previous"; then
    docker rename "$name-previous" "$name"
    docker start "$name" >/dev/null
    if wait_ready "$name"; then
        echo "djscale: the previous $name runs again" >&2
    else
        echo "djscale: the previous $name did not come back either" >&2
    fi
fi
exit 1
