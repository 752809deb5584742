#!/usr/bin/env bash
# managed by djscale, do not edit
# PostgreSQL's TLS certificate. The private key is made here and never leaves this host;
# the certificate is self-signed for the database's private address (subjectAltName IP),
# so a client that trusts exactly this certificate and checks the name (libpq
# sslmode=verify-full) reaches this server and no other. The key is kept across runs; the
# certificate is made again when it is missing, does not name the address, does not match
# the key, or has less than 90 days left; PostgreSQL then reloads it.
# stdout is the certificate and nothing else (public): the app servers verify with it.
set -euo pipefail
tls_dir=/etc/djscale/postgres-tls
address=10.0.0.10
valid_days=3650
renew_days=90
key=$tls_dir/server.key
cert=$tls_dir/server.crt

install -d -o root -g postgres -m 0750 "$tls_dir"
umask 077
# Made beside their final place and renamed into it: the key is never anywhere else.
work=$(mktemp -d "$tls_dir/.new.XXXXXX")
trap 'rm -rf -- "$work"' EXIT

if [ ! -s "$key" ]; then
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/server.key"
    chown postgres:postgres "$work/server.key"
    chmod 0600 "$work/server.key"
    mv -f "$work/server.key" "$key"
    rm -f "$cert"  # a certificate of another key is of no use
    echo "djscale: made a new private key in $key" >&2
fi

current() {  # the certificate is there, names the address, matches the key, is not expiring
    [ -s "$cert" ] &&
        openssl x509 -in "$cert" -noout -checkip "$address" | grep -q ' does match ' &&
        openssl x509 -in "$cert" -noout -checkend $((renew_days * 86400)) >/dev/null &&
        [ "$(openssl x509 -in "$cert" -noout -pubkey)" = "$(openssl pkey -in "$key" -pubout)" ]
}

if ! current; then
    cat > "$work/req.conf" <<CONF
[req]
distinguished_name = dn
x509_extensions = ext
prompt = no
[dn]
CN = djscale database $address
[ext]
subjectAltName = IP:$address
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, keyCertSign
subjectKeyIdentifier = hash
CONF
    openssl req -new -x509 -config "$work/req.conf" -key "$key" -days "$valid_days" \
        -out "$work/server.crt"
    chown root:postgres "$work/server.crt"
    chmod 0644 "$work/server.crt"
    mv -f "$work/server.crt" "$cert"
    echo "djscale: made a new certificate for $address in $cert" >&2
    if systemctl is-active --quiet postgresql; then  # PostgreSQL reads it on reload
        systemctl reload postgresql
    fi
fi
cat "$cert"
