"""What a visitor sees: the site over TLS from pebble through the program's certbot flow,
both app servers serving, redirects, dropped unknown hosts, TLS versions, HSTS, the admin,
static files from S3. Every request comes from the `client` container (the internet)."""
from __future__ import annotations

import re
import shlex
import uuid

from . import layout

URL = f"https://{layout.DOMAIN}/mydb/"


def test_https_serves_the_app_with_a_certificate_issued_by_pebble(bed, deployed):
    proc = bed.curl(URL, "-f", "-o", "-", "-w", "\n%{http_code} %{ssl_verify_result}")
    assert proc.returncode == 0, proc.stderr
    assert "My database" in proc.stdout
    assert proc.stdout.rstrip().endswith("200 0")  # verified against pebble's root only
    cert = bed.served_certificate()
    assert "Pebble Intermediate" in cert["issuer"], cert
    # the served certificate is the one certbot wrote on the proxy (the program's flow)
    on_disk = bed.sudo("proxy", f"openssl x509 -noout -serial -in "
                       f"/etc/letsencrypt/live/{layout.DOMAIN}/cert.pem").stdout
    assert on_disk.strip() == f"serial={cert['serial']}"
    assert deployed["url"] == f"https://{layout.DOMAIN}/"


def test_requests_reach_every_app_server(bed, deployed):
    marker = f"spread-{uuid.uuid4().hex[:12]}"
    for i in range(20):
        assert bed.curl(f"{URL}?{marker}={i}", "-f", "-o", "/dev/null").returncode == 0
    counts = {role: bed.app_log_count(role, marker) for role in bed.apps}
    assert sum(counts.values()) == 20, counts
    assert all(n > 0 for n in counts.values()), counts


def test_http_is_redirected_to_https(bed, deployed):
    out = bed.curl(f"http://{layout.DOMAIN}/mydb/?x=1", "-o", "/dev/null",
                   "-w", "%{http_code} %{redirect_url}").stdout
    assert out == f"301 https://{layout.DOMAIN}/mydb/?x=1"


def test_unknown_host_is_dropped(bed, deployed):
    # http: nginx closes the connection without a response (444): curl sees an empty reply
    proc = bed.curl(f"http://{layout.PROXY_ADDRESS}/mydb/", "-H", "Host: evil.example",
                    "-o", "/dev/null")
    assert proc.returncode == 52, (proc.returncode, proc.stderr)
    # https: another name (SNI) or none at all gets no certificate: the handshake fails
    for url in ("https://evil.example/mydb/", f"https://{layout.PROXY_ADDRESS}/mydb/"):
        proc = bed.curl(url, "-k", "-o", "/dev/null", host="evil.example")
        assert proc.returncode == 35, (url, proc.returncode, proc.stderr)


def _handshake(bed, version: str) -> str:
    return bed.run_in("client", (
        f"openssl s_client -connect {layout.PROXY_ADDRESS}:443 -servername {layout.DOMAIN} "
        f"-{version} -cipher DEFAULT@SECLEVEL=0 </dev/null 2>&1 || true"), timeout=60).stdout


def test_tls_1_0_and_1_1_handshakes_fail_and_1_2_1_3_succeed(bed, deployed):
    for version in ("tls1", "tls1_1"):  # offered by the client (SECLEVEL=0), refused by nginx
        out = _handshake(bed, version)
        assert "alert protocol version" in out and "Cipher is (NONE)" in out, out
    for version, name in (("tls1_2", "TLSv1.2"), ("tls1_3", "TLSv1.3")):
        out = _handshake(bed, version)
        assert "Cipher is (NONE)" not in out, out
        assert re.search(rf"^New, {re.escape(name)}, Cipher is \w", out, re.M), out


def _hsts_headers(bed) -> list[str]:
    headers = bed.curl(URL, "-f", "-D", "-", "-o", "/dev/null").stdout
    return [line.split(":", 1)[1].strip() for line in headers.splitlines()
            if line.lower().startswith("strict-transport-security:")]


def test_hsts_is_present(bed, deployed):
    values = _hsts_headers(bed)
    assert values, "no Strict-Transport-Security header"
    max_age = int(re.search(r"max-age=(\d+)", values[0]).group(1))
    assert max_age >= 31536000, values


def test_hsts_is_sent_once(bed, deployed):
    """Browsers honour only the first of several HSTS headers: two different ones (one from
    nginx, one from Django) means one of the two settings silently does nothing."""
    values = _hsts_headers(bed)
    assert len(values) == 1, values


ADMIN_LOGIN = r"""
set -eu
read -r password
jar=$(mktemp)
base=https://{domain}
c() {{ curl -sS --max-time 20 --cacert {ca} --resolve {domain}:443:{proxy} -b "$jar" -c "$jar" "$@"; }}
c -o /tmp/login.html "$base/admin/login/?next=/admin/"
token=$(grep -o 'name="csrfmiddlewaretoken" value="[^"]*"' /tmp/login.html | sed 's/.*value="//; s/"$//')
code=$(c -o /dev/null -w '%{{http_code}} %{{redirect_url}}' -e "$base/admin/login/" \
  --data-urlencode "csrfmiddlewaretoken=$token" --data-urlencode "username={user}" \
  --data-urlencode "password=$password" --data-urlencode "next=/admin/" "$base/admin/login/?next=/admin/")
echo "login: $code"
c -o /tmp/admin.html -w 'admin: %{{http_code}}\n' "$base/admin/"
grep -o '<title>[^<]*</title>' /tmp/admin.html /tmp/login.html || true
grep -o 'href="[^"]*base.css"' /tmp/login.html || true
"""


def test_admin_login_with_the_exported_credentials_and_static_files_from_s3(bed, deployed):
    script = ADMIN_LOGIN.format(domain=layout.DOMAIN, ca="/tmp/pebble-root.pem",
                                proxy=layout.PROXY_ADDRESS, user=deployed["adminUsername"])
    out = bed.run_in("client", script, input=deployed["adminPassword"] + "\n").stdout
    assert f"login: 302 https://{layout.DOMAIN}/admin/" in out, out
    assert "admin: 200" in out, out
    assert "Site administration" in out, out
    css = re.search(r'href="([^"]*base\.css)"', out).group(1)
    s3 = f"http://{layout.SERVICE_ADDRESSES['s3']}:{layout.S3_PORT}/{layout.S3_BUCKET}/"
    assert css.startswith(s3), css  # the page points at the S3 server...
    got = bed.run_in("client", f"curl -sS -o /dev/null -w '%{{http_code}} %{{content_type}}' "
                     f"{shlex.quote(css.replace('&amp;', '&'))}").stdout
    assert got.startswith("200 text/css"), got  # ...which serves it


def test_a_wrong_admin_password_is_refused(bed, deployed):
    script = ADMIN_LOGIN.format(domain=layout.DOMAIN, ca="/tmp/pebble-root.pem",
                                proxy=layout.PROXY_ADDRESS, user=deployed["adminUsername"])
    out = bed.run_in("client", script, input="not-the-password\n").stdout
    assert "login: 200" in out, out  # the form again, with an error
    assert "admin: 302" in out, out  # still not logged in: sent to the login page
