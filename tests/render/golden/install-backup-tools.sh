#!/usr/bin/env bash
# managed by djscale, do not edit
# What djscale's own tools on this host need beyond the distribution's base: python3 for
# its standard-library programs (djscale-s3, djscale-upstream-watch), gpg to encrypt backups.
# A no-op when they are installed.
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

packages=(python3 gpg)
missing=()
for package in "${packages[@]}"; do
    if ! is_installed "$package"; then
        missing+=("$package")
    fi
done
if [ -z "${missing[*]:-}" ]; then
    echo "djscale: ${packages[*]} installed already"
    exit 0
fi
apt_update
apt_get install -y --no-install-recommends "${missing[@]}"
