#!/usr/bin/env bash
# managed by djscale, do not edit
# Run twice a day by djscale-certbot-renew.timer (output in the journal). Renews the
# certificates that are due; when one was renewed (certbot's --deploy-hook leaves a marker),
# checks nginx's configuration and reloads nginx, which then serves the new certificate
# without a restart. A failed check leaves the marker, so the next run tries again. Each
# failure ends with one line saying what failed: the alert (djscale-alert) quotes it.
# Arguments go to `certbot renew`: without a terminal certbot first sleeps a random while
# (spreading the load on the CA); tests pass --no-random-sleep-on-renew --force-renewal.
set -euo pipefail
image=certbot/certbot:v5.10.0
webroot=/var/www/certbot
letsencrypt_dir=/etc/letsencrypt
nginx_container=djscale-nginx
nginx_conf=/etc/djscale/nginx/nginx.conf
marker=$letsencrypt_dir/.djscale-renewed
# certbot in its container: the certificate store and the webroot (shared with nginx) are
# mounted at the same paths certbot's renewal configs record.
certbot_run() {
    local options=(--rm -v "$letsencrypt_dir:/etc/letsencrypt" -v /var/lib/letsencrypt:/var/lib/letsencrypt -v "$webroot:$webroot")
    docker run "${options[@]}" "$image" "$@"
}

if ! certbot_run renew --deploy-hook 'touch /etc/letsencrypt/.djscale-renewed' "$@"; then
    echo "djscale: certbot renew failed (its output is above)" >&2
    exit 1
fi
if [ -e "$marker" ]; then
    if ! docker exec "$nginx_container" nginx -t -q -c "$nginx_conf"; then
        echo "djscale: nginx -t failed after a renewal: the new certificate is not served" >&2
        exit 1
    fi
    docker exec "$nginx_container" nginx -s reload -c "$nginx_conf"
    rm -f "$marker"
    echo "djscale: certificate renewed, nginx reloaded"
fi
