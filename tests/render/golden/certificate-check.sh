#!/usr/bin/env bash
# managed by djscale, do not edit
# Run once a day by djscale-certificate-check.timer (output in the journal), and by
# djscale-certificate-status. Reads the certificate nginx serves: a TLS handshake with
# address:port naming the domain (SNI), as a browser's, so a renewed certificate nginx never
# loaded counts as not renewed. Fails when that certificate expires within warning_days
# days, or when none is served; the unit's OnFailure= then raises the alert.
set -euo pipefail
domain=shop.example.com
address=127.0.0.1
port=443
warning_days=14

if ! command -v openssl >/dev/null; then
    echo "djscale: openssl is not installed: the served certificate cannot be read" >&2
    exit 1
fi
served=$(timeout 30 openssl s_client -connect "$address:$port" -servername "$domain" \
    </dev/null 2>/dev/null | openssl x509 2>/dev/null || true)
if [ -z "$served" ]; then
    echo "djscale: no certificate served for $domain on $address:$port (is nginx running?)" >&2
    exit 1
fi
not_after=$(openssl x509 -noout -enddate <<<"$served")
expires=$(date -u -d "${not_after#notAfter=}" +%s)
expiry=$(date -u -d "@$expires" +%Y-%m-%dT%H:%M:%SZ)
left=$((expires - $(date -u +%s)))
if [ "$left" -le 0 ]; then
    echo "djscale: the certificate served for $domain EXPIRED at $expiry" >&2
    exit 1
fi
summary="the certificate served for $domain expires at $expiry: $((left / 86400)) days left"
if [ "$left" -lt $((warning_days * 86400)) ]; then
    echo "djscale: $summary, fewer than $warning_days: renewals are failing" >&2
    exit 1
fi
echo "djscale: $summary (alert below $warning_days)"
