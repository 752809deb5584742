"""Abuse limits (issue 9, item 4): one client bursting login attempts gets 429 beyond the
login limit (the defaults: 6 a minute, 5 at once) and those never reach an app server,
while another client's requests meanwhile all succeed. The second client is the `db` host
(another source address on the bed network; the proxy's 443 is open to it). Written
without a bed run: proven with the real nginx in a network namespace
(tests/render/test_nginx_real.py)."""
from __future__ import annotations

import shlex
import time
import uuid

import pytest

from . import layout
from .probes import PEBBLE_ROOT

pytestmark = pytest.mark.first_suite  # the hosts' release plays no part (conftest.py)

CURL = (f"curl -s -o /dev/null -w '%{{http_code}}\\n' --max-time 10 --cacert {PEBBLE_ROOT} "
        f"--resolve {layout.DOMAIN}:443:{layout.PROXY_ADDRESS}")

# GETs from the second client until told to stop; every status code to a file.
OTHER_CLIENT = r"""
rm -f /tmp/{marker}.stop /tmp/{marker}.codes /tmp/{marker}.done
i=0
while [ ! -e /tmp/{marker}.stop ] && [ $i -lt 2000 ]; do
  {curl} "https://{domain}/mydb/?{marker}=$i" >> /tmp/{marker}.codes
  {curl} "https://{domain}/admin/login/?{marker}=$i" >> /tmp/{marker}.codes
  i=$((i+1))
done
touch /tmp/{marker}.done
"""


def _login_burst(marker: str, count: int) -> str:
    post = (f"{CURL} --data 'username=admin&password=not-the-password' "
            f"'https://{layout.DOMAIN}/admin/login/?{marker}=1'")
    return f"for i in $(seq 1 {count}); do {post}; done"


def test_a_login_burst_from_one_client_is_limited_while_another_is_served(bed, deployed):
    marker = f"abuse-{uuid.uuid4().hex[:8]}"
    bed.run_in("db", f"cat > {PEBBLE_ROOT}", input=bed.fetch_pebble_root())
    other = OTHER_CLIENT.format(marker=marker, curl=CURL, domain=layout.DOMAIN)
    bed.engine.docker("exec", "-d", layout.container_name("db"), "bash", "-c", other)
    try:
        time.sleep(2)  # the other client is being served
        codes = bed.run_in("client", _login_burst(marker, 20), timeout=300).stdout.split()
        time.sleep(2)
    finally:
        bed.run_in("db", f"touch /tmp/{marker}.stop; for i in $(seq 1 30); do "
                   f"[ -e /tmp/{marker}.done ] && break; sleep 1; done; "
                   f"[ -e /tmp/{marker}.done ]")
    # A run of answers from the app (Django refuses the form: no CSRF token), then only 429.
    # At most 6 pass: the budget may be partly spent by the admin logins of test_20.
    passed = len(codes) - len([c for c in codes if c == "429"])
    assert len(codes) == 20 and 1 <= passed <= 6, codes
    assert all(c != "429" for c in codes[:passed]) and set(codes[passed:]) == {"429"}, codes
    app_lines = sum(bed.app_log_count(role, f"POST /admin/login/?{marker}=1")
                    for role in bed.apps)
    assert app_lines == passed  # the refused attempts never reached an app server

    other_codes = bed.run_in("db", f"sort /tmp/{marker}.codes | uniq -c").stdout
    counts = {code: int(n) for n, code in (line.split() for line in other_codes.splitlines())}
    assert set(counts) == {"200"} and counts["200"] >= 20, counts  # 0 failures

    # The limited client may still read the login page (a GET is not a login attempt).
    page = bed.run_in("client", f"{CURL} {shlex.quote(f'https://{layout.DOMAIN}/admin/login/')}")
    assert page.stdout.split() == ["200"]
