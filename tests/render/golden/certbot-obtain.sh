#!/usr/bin/env bash
# managed by djscale, do not edit
# Obtain the site's certificate with certbot's webroot method: nginx already answers the
# HTTP-01 challenge from the webroot on port 80, so nothing has to stop. Safe to re-run:
# certbot keeps a certificate that is not due for renewal, except one issued by another ACME
# server (a switch from staging to production), which is replaced.
set -euo pipefail
domain=shop.example.com
server=https://acme-staging-v02.api.letsencrypt.org/directory
image=certbot/certbot:v5.10.0
webroot=/var/www/certbot
letsencrypt_dir=/etc/letsencrypt
# certbot in its container: the certificate store and the webroot (shared with nginx) are
# mounted at the same paths certbot's renewal configs record.
certbot_run() {
    local options=(--rm -v "$letsencrypt_dir:/etc/letsencrypt" -v /var/lib/letsencrypt:/var/lib/letsencrypt -v "$webroot:$webroot")
    docker run "${options[@]}" "$image" "$@"
}

install -d -m 0755 "$webroot" "$letsencrypt_dir" /var/lib/letsencrypt
force=()
# A new certificate gets every name of the site. An existing one keeps its names here: a
# change of names is the certbot-names step's, once the TLS config that answers the
# challenges of every name, new ones included, is live.
names=(-d shop.example.com)
renewal_conf=$letsencrypt_dir/renewal/$domain.conf
if [ -e "$renewal_conf" ]; then
    names=()
    if ! grep -qxF "server = $server" "$renewal_conf"; then
        echo "djscale: the certificate for $domain is from another ACME server: replacing it"
        force=(--force-renewal)
    fi
fi
account=(--email ops@example.com --no-eff-email)
certbot_run certonly --webroot -w "$webroot" "${names[@]}" --cert-name "$domain" \
    --server "$server" "${account[@]}" --agree-tos --non-interactive --keep-until-expiring \
    "${force[@]}"
