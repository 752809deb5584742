#!/usr/bin/env bash
# managed by djscale, do not edit
# The certificate holds exactly the site's names (domain, then domainAliases). When they
# differ from the names of the certificate certbot keeps under the domain's name, it is
# issued again under that same name (--cert-name: one lineage, the files nginx reads) with
# the new list, and nginx is checked and reloaded. Runs after the TLS config is live: its
# port-80 server answers the HTTP-01 challenges of every name, new ones included. While the
# names are the same, certbot keeps the certificate (a no-op until it is due).
set -euo pipefail
domain=shop.example.com
server=https://acme-staging-v02.api.letsencrypt.org/directory
image=certbot/certbot:v5.10.0
webroot=/var/www/certbot
letsencrypt_dir=/etc/letsencrypt
nginx_container=djscale-nginx
nginx_conf=/etc/djscale/nginx/nginx.conf
names=(-d shop.example.com -d shop.example.net -d www.shop.example.net)
# the renewal's marker: a certificate issued here is served after the same check and reload
marker=$letsencrypt_dir/.djscale-renewed
# certbot in its container: the certificate store and the webroot (shared with nginx) are
# mounted at the same paths certbot's renewal configs record.
certbot_run() {
    local options=(--rm -v "$letsencrypt_dir:/etc/letsencrypt" -v /var/lib/letsencrypt:/var/lib/letsencrypt -v "$webroot:$webroot")
    docker run "${options[@]}" "$image" "$@"
}

account=(--email ops@example.com --no-eff-email)
certbot_run certonly --webroot -w "$webroot" "${names[@]}" --cert-name "$domain" \
    --server "$server" "${account[@]}" --agree-tos --non-interactive --keep-until-expiring \
    --renew-with-new-domains --deploy-hook 'touch /etc/letsencrypt/.djscale-renewed'
if [ -e "$marker" ]; then
    if ! docker exec "$nginx_container" nginx -t -q -c "$nginx_conf"; then
        echo "djscale: nginx -t failed after the certificate was issued again: it is not served" >&2
        exit 1
    fi
    docker exec "$nginx_container" nginx -s reload -c "$nginx_conf"
    rm -f "$marker"
    echo "djscale: certificate issued for the site's names, nginx reloaded"
fi
