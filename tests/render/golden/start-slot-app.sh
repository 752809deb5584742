#!/usr/bin/env bash
# managed by djscale, do not edit
# A release starts beside the running app: two slots, each a container on its own host
# port (djscale-app-a on port_a, djscale-app-b on port_b). The slot nginx routes to keeps
# serving while the other one gets the new container; only once that is healthy does the
# deploy switch nginx to it (a later step), and only then is the old one stopped (the
# retire step, after its last requests). So a release fails no request, whatever its size.
#
# Safe to re-run: a slot already running these settings (healthy) is reused, nothing is
# started. A new container that never becomes healthy is removed and the step fails: the
# running slot was never touched and nginx never switched. The only output on stdout is
# the host port of the slot that carries this release (nginx's upstream for this server).
set -euo pipefail
name=djscale-app
image=sha256:feed
address=10.0.0.21
container_port=8000
port_a=8000
port_b=8001
state_file=/var/lib/djscale/app-slot
settings_base=a6b48ef5bcb043c9
healthy_within=180
env_file=/etc/djscale/app.env
settings="$settings_base-$(cat -- /etc/djscale/app.env /etc/djscale/db-ca.pem | sha256sum | cut -c1-16)"

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
port_of() { if [ "$1" = a ]; then echo "$port_a"; else echo "$port_b"; fi; }
other() { if [ "$1" = a ]; then echo b; else echo a; fi; }
ready="running healthy"
# A container's state, "$ready" once it is ready. Docker runs the first healthcheck one
# --health-interval after the start; until then the same command is run here (docker
# exec, each time this is asked), so a start waits for the app, not for the interval, and
# a re-run meanwhile finds it ready too. Docker's own status follows at its first check.
state_now() {  # CONTAINER
    local now
    now=$(state "$1")
    if [ "$now" = "running starting" ] \
            && timeout 5s docker exec "$1" /bin/sh -c 'python3 -c '"'"'import sys, urllib.request; sys.exit(0 if urllib.request.urlopen("http://127.0.0.1:8000/healthz", timeout=4).status == 200 else 1)'"'"'' >/dev/null 2>&1; then
        now=$ready
    fi
    printf '%s\n' "$now"
}

# A slot already running these settings and ready: this release is there (a re-run, or a
# deploy that stopped after starting it). Prefer the slot nginx routes to.
serving=$(cat "$state_file" 2>/dev/null || true)
for slot in $serving a b; do
    if [ "$(label "$name-$slot")" = "$settings" ] && [ "$(state_now "$name-$slot")" = "$ready" ]; then
        echo "djscale: $name-$slot already runs this release" >&2
        port_of "$slot"
        exit 0
    fi
done

# The slot nginx routes to is the one the last completed release left (the state file);
# before the first one, whichever slot runs (a container of djscale before slots, named
# $name, holds port_a: the new one goes to b).
if [ -z "$serving" ]; then
    if docker container inspect "$name" >/dev/null 2>&1 || [ "$(state "$name-a")" != "gone none" ]; then
        serving=a
    elif [ "$(state "$name-b")" != "gone none" ]; then
        serving=b
    fi
fi
target=$(other "${serving:-b}")
if [ -n "$(docker container ls --all --quiet --filter "name=^/$name-$target\$")" ]; then
    echo "djscale: removing $name-$target (not the release nginx routes to)" >&2
    docker rm --force "$name-$target" >/dev/null
fi

docker run --detach --name "$name-$target" --label "djscale.container=$name" \
    --label "djscale.settings=$settings" --label "djscale.slot=$target" \
    --env-file "$env_file" \
    --publish "$address:$(port_of "$target"):$container_port/tcp" \
    --restart unless-stopped \
    --stop-timeout 30 \
    --log-driver json-file \
    --log-opt max-size=10m \
    --log-opt max-file=5 \
    --volume /etc/djscale/db-ca.pem:/etc/djscale/db-ca.pem:ro \
    --health-cmd 'python3 -c '"'"'import sys, urllib.request; sys.exit(0 if urllib.request.urlopen("http://127.0.0.1:8000/healthz", timeout=4).status == 200 else 1)'"'"'' \
    --health-interval 10s \
    --health-timeout 5s \
    --health-retries 3 \
    --health-start-period 30s \
    "$image" >/dev/null

deadline=$((SECONDS + healthy_within))
while [ "$SECONDS" -lt "$deadline" ]; do
    now=$(state_now "$name-$target")
    if [ "$now" = "$ready" ]; then
        echo "djscale: $name-$target ready on port $(port_of "$target") ($settings)" >&2
        port_of "$target"
        exit 0
    fi
    # stopped, or its healthcheck gave up (start period over, every retry failed): done
    case "$now" in "running unhealthy") break ;; running\ *) ;; *) break ;; esac
    sleep 1
done
echo "djscale: $name-$target did not become ready within ${healthy_within}s ($(state "$name-$target")); the running release keeps serving; its last log lines:" >&2
docker logs --tail 30 "$name-$target" >&2 2>&1 || true
docker rm --force "$name-$target" >/dev/null
exit 1
