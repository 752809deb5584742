"""Forwarded headers (issue 9, item 8): a client that claims to be someone else, in
X-Forwarded-For and Forwarded, shows up in the app container's access log with its real bed
address; gunicorn trusts the forwarded headers from the proxy's address alone. Written
without a bed run: proven with the real nginx (tests/render/test_nginx_real.py) and the app's
gunicorn config on a real socket (tests/app/test_serving.py)."""
from __future__ import annotations

import uuid

import pytest

from . import layout

pytestmark = pytest.mark.first_suite  # the hosts' release plays no part (conftest.py)

SPOOFED = "203.0.113.9"


def _access_log_lines(bed, marker: str) -> list[str]:
    lines = []
    for role in bed.apps:
        out = bed.ssh(role, "for c in $(sudo docker ps -aq --filter name=djscale-app); do "
                      "sudo docker logs $c 2>&1; done").stdout
        lines += [line for line in out.splitlines() if marker in line]
    return lines


def test_a_spoofed_client_address_is_logged_as_the_real_one(bed, deployed):
    client = layout.SERVICE_ADDRESSES["client"]
    marker = f"spoof-{uuid.uuid4().hex[:12]}"
    for version in ("--http1.1", "--http2"):
        proc = bed.curl(f"https://{layout.DOMAIN}/mydb/?{marker}={version}", "-f",
                        "-o", "/dev/null", version,
                        "-H", f"X-Forwarded-For: {SPOOFED}",
                        "-H", f"Forwarded: for={SPOOFED};proto=http",
                        "-H", f"X-Real-IP: {SPOOFED}")
        assert proc.returncode == 0, proc.stderr
    lines = _access_log_lines(bed, marker)
    assert len(lines) == 2, lines
    for line in lines:
        assert line.startswith(f"{client} - - ["), line  # the client as nginx saw it
        assert line.endswith(f" peer={layout.PROXY_ADDRESS}"), line  # connected by the proxy
        assert SPOOFED not in line, line


def test_gunicorn_trusts_the_proxy_address_only(bed, deployed):
    for role in bed.apps:
        env = bed.sudo(role, "grep '^GUNICORN_FORWARDED_ALLOW_IPS=' /etc/djscale/app.env").stdout
        assert env.strip() == f"GUNICORN_FORWARDED_ALLOW_IPS={layout.PROXY_ADDRESS}", env
    # The app port is closed to anyone but the proxy (test_30), so the untrusted case is
    # proven from inside an app container: a peer that is not the proxy is logged as itself.
    role = bed.apps[0]
    marker = f"direct-{uuid.uuid4().hex[:12]}"
    bed.ssh(role, (
        f"sudo docker exec {bed.app_container(role)} python3 -c "
        "\"import urllib.request as u; u.urlopen(u.Request("
        f"'http://127.0.0.1:8000/healthz?{marker}=1', "
        f"headers={{'X-Forwarded-For': '{SPOOFED}'}}), timeout=10)\""))
    lines = _access_log_lines(bed, marker)
    assert len(lines) == 1 and lines[0].startswith("127.0.0.1 - - ["), lines
