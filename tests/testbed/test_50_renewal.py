"""Renewal: the renewal command the program installed on the proxy, forced, makes nginx
serve a new certificate, and no request fails meanwhile."""
from __future__ import annotations

import time

from . import layout

RENEW = "/usr/local/sbin/djscale-certbot-renew"  # installed by the program (see its timer)

LOOP = r"""
rm -f /tmp/renew-stop /tmp/renew-done /tmp/renew-codes
i=0
while [ ! -e /tmp/renew-stop ] && [ $i -lt 3000 ]; do
  curl -s -o /dev/null -w '%{{http_code}}\n' --max-time 10 --cacert /tmp/pebble-root.pem \
       --resolve {domain}:443:{proxy} https://{domain}/mydb/ >> /tmp/renew-codes
  i=$((i+1))
done
touch /tmp/renew-done
"""


def test_forced_renewal_serves_a_new_certificate_without_failed_requests(bed, deployed):
    timer = bed.ssh("proxy", "systemctl is-enabled djscale-certbot-renew.timer; "
                    "systemctl is-active djscale-certbot-renew.timer").stdout.split()
    assert timer == ["enabled", "active"], timer
    before = bed.served_certificate()
    script = LOOP.format(domain=layout.DOMAIN, proxy=layout.PROXY_ADDRESS)
    bed.engine.docker("exec", "-d", layout.container_name("client"), "bash", "-c", script)
    try:
        time.sleep(2)  # the loop is running
        out = bed.ssh("proxy", f"sudo {RENEW} --no-random-sleep-on-renew --force-renewal",
                      timeout=300)
        assert "nginx reloaded" in out.stdout, out.stdout + out.stderr
        deadline = time.monotonic() + 30
        while bed.served_certificate()["serial"] == before["serial"]:
            assert time.monotonic() < deadline, "nginx still serves the old certificate"
            time.sleep(1)
        time.sleep(2)  # requests after the switch, too
    finally:
        bed.run_in("client", "touch /tmp/renew-stop; for i in $(seq 1 30); do "
                   "[ -e /tmp/renew-done ] && break; sleep 1; done; [ -e /tmp/renew-done ]")
    after = bed.served_certificate()
    assert "Pebble Intermediate" in after["issuer"] and after["subject"] == before["subject"]
    codes = bed.run_in("client", "sort /tmp/renew-codes | uniq -c").stdout
    counts = {code: int(n) for n, code in (line.split() for line in codes.splitlines())}
    assert set(counts) == {"200"} and counts["200"] > 10, counts
