#!/usr/bin/env bash
# managed by djscale, do not edit
# Docker from the distribution (docker.io), enabled and running. A no-op when that is
# already true; an engine installed otherwise (docker-ce) is kept.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# apt waits for other package managers (unattended-upgrades, cloud-init) instead of failing:
# the dpkg lock through DPkg::Lock::Timeout, the lists lock of `update` through retries.
apt_get() {
    apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3 "$@"
}
apt_update() {
    local attempt
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        if apt_get update; then
            return 0
        fi
        echo "djscale: apt-get update failed (attempt $attempt of 10), retrying in 15s" >&2
        sleep 15
    done
    return 1
}
is_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

if ! command -v docker >/dev/null; then
    apt_update
    apt_get install -y docker.io
fi
systemctl enable --now docker
for _ in $(seq 1 60); do
    if systemctl is-active --quiet docker && docker info >/dev/null 2>&1; then
        break
    fi
    sleep 1
done
if ! docker info >/dev/null; then
    echo "djscale: the Docker engine does not answer" >&2
    exit 1
fi

# The app image is built with BuildKit (DOCKER_BUILDKIT=1 docker build). Docker 20.10's CLI
# has it built in (Debian 12's docker.io); from 23 on, `docker build` needs the buildx
# plugin, which the distribution ships as docker-buildx (Debian 13, Ubuntu).
buildx_candidate() {
    apt-cache policy docker-buildx 2>/dev/null | sed -n 's/^ *Candidate: *//p'
}
if ! docker buildx version >/dev/null 2>&1; then
    client=$(docker version --format '{{.Client.Version}}')
    major=${client%%.*}
    if ! [[ "$major" =~ ^[0-9]+$ ]] || [ "$major" -ge 23 ]; then
        candidate=$(buildx_candidate)
        if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
            apt_update
            candidate=$(buildx_candidate)
        fi
        if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
            echo "djscale: Docker $client builds with BuildKit only through the buildx plugin, and apt offers no docker-buildx package here: install the plugin (Docker's docker-buildx-plugin with docker-ce), then deploy again" >&2
            exit 1
        fi
        apt_get install -y docker-buildx
        docker buildx version >/dev/null
    fi
fi

# Uploads (the app's build context) arrive over SFTP as the SSH user: its own directory,
# private to it and root. Docker itself is used only through sudo (no docker group).
install -d -m 0700 -o deploy -g deploy /var/lib/djscale/uploads
