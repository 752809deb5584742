"""TLS as Mozilla's intermediate profile (issue 9, item 3), from the client (the internet):
with TLS 1.2 only forward-secret AEAD suites, CBC and plain-RSA key exchange refused; HSTS
for two years; HTTP/2 switched on with `http2 on;`, which the bed's nginx (Debian 13, 1.26)
accepts. Written without a bed run: proven on the renderer side with this machine's nginx
(tests/render/test_nginx_real.py) and, for the production form, by hand against Debian 13's
nginx 1.26.3 in a chroot."""
from __future__ import annotations

import re

import pytest

from . import layout

pytestmark = pytest.mark.first_suite  # the hosts' release plays no part (conftest.py)

URL = f"https://{layout.DOMAIN}/mydb/"


def _handshake(bed, *options: str) -> str:
    """openssl s_client's report of one handshake from the client, whatever its outcome."""
    words = " ".join(options)
    return bed.run_in("client", (
        f"openssl s_client -connect {layout.PROXY_ADDRESS}:443 -servername {layout.DOMAIN} "
        f"{words} </dev/null 2>&1 || true"), timeout=60).stdout


def _negotiated(report: str) -> str:
    match = re.search(r"^New, (TLSv[\d.]+), Cipher is (\S+)$", report, re.M)
    return f"{match[1]} {match[2]}" if match else "refused"


def _certificate_auth(bed) -> str:
    """ECDSA or RSA: the suites a client can use depend on the served key (certbot makes
    ECDSA keys by default)."""
    text = bed.run_in("client", (
        f"openssl s_client -connect {layout.PROXY_ADDRESS}:443 -servername {layout.DOMAIN} "
        "</dev/null 2>/dev/null | openssl x509 -noout -text"), timeout=60).stdout
    return "ECDSA" if "id-ecPublicKey" in text else "RSA"


def test_the_proxy_runs_an_nginx_that_takes_http2_on(bed, deployed):
    version = bed.ssh("proxy", "sudo docker exec djscale-nginx nginx -v 2>&1").stdout
    major, minor, patch = map(int, re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", version).groups())
    assert (major, minor, patch) >= (1, 25, 1), version
    conf = bed.sudo("proxy", "cat /etc/djscale/nginx/nginx.conf").stdout
    assert "        http2 on;\n" in conf and "ssl http2" not in conf
    check = bed.ssh("proxy", "sudo docker exec djscale-nginx nginx -t "
                    "-c /etc/djscale/nginx/nginx.conf 2>&1").stdout
    assert "test is successful" in check and "deprecated" not in check, check


def test_tls_1_2_offers_only_forward_secret_aead_suites(bed, deployed):
    auth = _certificate_auth(bed)
    for cipher in (f"ECDHE-{auth}-AES128-GCM-SHA256", f"ECDHE-{auth}-AES256-GCM-SHA384",
                   f"ECDHE-{auth}-CHACHA20-POLY1305"):
        assert _negotiated(_handshake(bed, "-tls1_2", "-cipher", cipher)) == \
            f"TLSv1.2 {cipher}"
    # CBC (with ECDHE, and with RSA key exchange) and plain-RSA key exchange with GCM: no
    # handshake, although the client offers them (SECLEVEL=0 lets it offer anything).
    for cipher in (f"ECDHE-{auth}-AES128-SHA256", f"ECDHE-{auth}-AES128-SHA",
                   "AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA256"):
        report = _handshake(bed, "-tls1_2", "-cipher", f"{cipher}@SECLEVEL=0")
        assert _negotiated(report) == "refused" and "Cipher is (NONE)" in report, \
            (cipher, report)
    assert _negotiated(_handshake(bed, "-tls1_3")).startswith("TLSv1.3 TLS_")


def test_hsts_is_two_years_without_preload_and_http2_is_negotiated(bed, deployed):
    out = bed.curl(URL, "-f", "-D", "-", "-o", "/dev/null", "-w", "http_version=%{http_version}",
                   check=True).stdout
    hsts = [line.split(":", 1)[1].strip() for line in out.splitlines()
            if line.lower().startswith("strict-transport-security:")]
    assert hsts == ["max-age=63072000"], out  # nginx.hstsPreload is off by default
    assert out.rstrip().endswith("http_version=2"), out
