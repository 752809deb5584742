"""The bed's ACME CA: pebble + pebble-challtestsrv in the `acme` container.

pebble needs a TLS certificate for its own listener: the bed makes a small CA with openssl
(`bed CA`), signs pebble's listener certificate with it, and the certbot image the program
pulls trusts it (test-only). The certificates pebble *issues* chain to pebble's own root,
which changes at every pebble start and is served at https://ACME:15000/roots/0.

challtestsrv is pebble's DNS: every name resolves to the proxy's address, so pebble's
HTTP-01 validation really fetches http://<domain>/.well-known/acme-challenge/... from the
proxy's nginx; `resolve_name` points one name at another address (a second stack's proxy,
test_92) through challtestsrv's management API, `forget_name` undoes it.
PEBBLE_AUTHZREUSE=0 makes every order validate again.

pebble issues certificates valid for CERTIFICATE_DAYS (10) days instead of its default five
years, so the proxy's expiry check has a certificate close to its end to flag: the bed's
stack sets `acme.expiryWarningDays` below that (bed.py), the expiry proof deploys the
default 14 (test_55_renewal_alarms). certbot 2.1 (the bed's) renews a certificate with less
than 30 days left, so every `certbot renew` on the bed renews: the renewal proofs', and the
timer's should a bed run cross 00:00 or 12:00 (a reload: nothing fails meanwhile, test_50).
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from . import layout

ACME_DIR = layout.STATE_DIR / "acme"
ACME_PORT = 14000
MANAGEMENT_PORT = 15000
DNS_MANAGEMENT_PORT = 8055  # challtestsrv's management API (images.py starts it)
CERTIFICATE_DAYS = 10


def directory_url() -> str:
    return f"https://{layout.SERVICE_ADDRESSES['acme']}:{ACME_PORT}/dir"


def roots_url() -> str:
    return f"https://{layout.SERVICE_ADDRESSES['acme']}:{MANAGEMENT_PORT}/roots/0"


def _dns_management(path: str, body: dict) -> None:
    import urllib.request

    url = f"http://{layout.SERVICE_ADDRESSES['acme']}:{DNS_MANAGEMENT_PORT}{path}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status != 200:
            raise RuntimeError(f"challtestsrv {path}: {response.status}")


def resolve_name(name: str, address: str) -> None:
    """Make challtestsrv (pebble's DNS) answer `name` with `address`, not the proxy's: a
    second stack's proxy then gets pebble's HTTP-01 validation for its own domain."""
    _dns_management("/add-a", {"host": f"{name}.", "addresses": [address]})


def forget_name(name: str) -> None:
    """`name` resolves to the proxy again, as every other name does."""
    _dns_management("/clear-a", {"host": f"{name}."})


def bed_ca_cert() -> Path:
    return ACME_DIR / "bed-ca.crt"


def _openssl(*args: str) -> None:
    proc = subprocess.run(["openssl", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args[:2])} failed: {proc.stderr}")


def write_pebble_files() -> Path:
    """Make the bed CA, pebble's listener certificate and pebble.json. Returns the dir
    mounted at /etc/pebble in the acme container."""
    ACME_DIR.mkdir(parents=True, exist_ok=True)
    d = ACME_DIR
    address = layout.SERVICE_ADDRESSES["acme"]
    if not (d / "bed-ca.crt").exists():
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-keyout", str(d / "bed-ca.key"), "-out", str(d / "bed-ca.crt"),
                 "-days", "30", "-subj", "/CN=djscale test bed CA")
    if not (d / "cert.pem").exists():
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", str(d / "key.pem"), "-out", str(d / "listener.csr"),
                 "-subj", "/CN=acme")
        (d / "listener.ext").write_text(
            f"subjectAltName=IP:{address},DNS:acme\nextendedKeyUsage=serverAuth\n")
        _openssl("x509", "-req", "-in", str(d / "listener.csr"), "-CA", str(d / "bed-ca.crt"),
                 "-CAkey", str(d / "bed-ca.key"), "-CAcreateserial", "-days", "30",
                 "-extfile", str(d / "listener.ext"), "-out", str(d / "cert.pem"))
        (d / "key.pem").chmod(0o644)  # read by pebble in its container (test-only key)
    config = {"pebble": {
        "listenAddress": f"0.0.0.0:{ACME_PORT}",
        "managementListenAddress": f"0.0.0.0:{MANAGEMENT_PORT}",
        "certificate": "/etc/pebble/cert.pem",
        "privateKey": "/etc/pebble/key.pem",
        "httpPort": 80,
        "tlsPort": 443,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": False,
        # seconds; pebble 2.4 reads it (cmd/pebble/main.go: config, ca.New), Debian 12 has 2.4
        "certificateValidityPeriod": CERTIFICATE_DAYS * 86400,
    }}
    (d / "pebble.json").write_text(json.dumps(config, indent=2))
    return d
