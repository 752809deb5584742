#!/usr/bin/env bash
# managed by djscale, do not edit
# Activates the staged nginx.conf: the running nginx container checks it (`nginx -t`: same
# nginx, same mounts), it replaces the live file, nginx reloads without a restart. Before the
# container exists there is nothing to check against and nothing to reload. Every nginx call
# names the config with -c: without it nginx reads the image's default config, whose pid
# file path need not be the one the running master wrote.
set -euo pipefail
staged=/etc/djscale/nginx/nginx.conf.new
target=/etc/djscale/nginx/nginx.conf
container=djscale-nginx
certificate=/etc/letsencrypt/live/shop.example.com/fullchain.pem
# The certificate exists: the TLS configuration is in charge, the staged bootstrap is dropped.
if [ -e "$certificate" ] && [ -e "$target" ]; then
    rm -f "$staged"
    echo "djscale: certificate present, the TLS configuration stays"
    exit 0
fi
running=$(docker container inspect -f '{{.State.Running}}' "$container" 2>/dev/null || true)
if [ "$running" = true ]; then
    if ! docker exec "$container" nginx -t -q -c "$staged"; then
        rm -f "$staged"
        echo "djscale: nginx rejects the new configuration; the old one stays" >&2
        exit 1
    fi
fi
mv -f "$staged" "$target"
if [ "$running" = true ]; then
    docker exec "$container" nginx -s reload -c "$target"
fi
