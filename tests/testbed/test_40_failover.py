"""One app server's container stops: the proxy retries on the other, no request fails;
started again, it gets traffic again. One app host stops answering altogether: no request of
any method fails."""
from __future__ import annotations

import json
import time
import uuid

import pytest

from . import layout

pytestmark = pytest.mark.first_suite  # the hosts' release plays no part (conftest.py)

URL = f"https://{layout.DOMAIN}/mydb/"

SEQUENTIAL_GETS = r"""
set -u
ok=0; failed=0
for i in $(seq 1 {count}); do
  code=$(curl -s -o /dev/null -w '%{{http_code}}' --max-time 10 --cacert /tmp/pebble-root.pem \
         --resolve {domain}:443:{proxy} "{url}?{marker}=$i")
  if [ "$code" = 200 ]; then ok=$((ok+1)); else failed=$((failed+1)); echo "request $i: $code"; fi
done
echo "ok=$ok failed=$failed"
"""


def _gets(bed, count: int, marker: str) -> str:
    script = SEQUENTIAL_GETS.format(count=count, domain=layout.DOMAIN,
                                    proxy=layout.PROXY_ADDRESS, url=URL, marker=marker)
    return bed.run_in("client", script, timeout=600).stdout


def test_stopping_one_app_container_fails_no_request_and_it_rejoins(bed, deployed):
    victim, survivor = bed.apps[0], bed.apps[1]
    container = bed.app_container(victim)
    bed.ssh(victim, f"sudo docker stop -t 30 {container}")
    try:
        marker = f"down-{uuid.uuid4().hex[:8]}"
        started = time.monotonic()
        out = _gets(bed, 500, marker)
        seconds = time.monotonic() - started
        assert out.strip().endswith("ok=500 failed=0"), out[-2000:]
        assert bed.app_log_count(victim, marker) == 0
        assert bed.app_log_count(survivor, marker) + sum(
            bed.app_log_count(a, marker) for a in bed.apps[2:]) == 500
        assert seconds < 300, f"500 GETs took {seconds:.0f}s"
    finally:
        bed.ssh(victim, f"sudo docker start {container}")
    # back: healthy, then it gets traffic again (max_fails=0: nginx never stopped trying it)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        health = bed.ssh(victim, "sudo docker inspect -f '{{.State.Health.Status}}' "
                         f"{container}", check=False).stdout
        if health.strip() == "healthy":
            break
        time.sleep(2)
    else:
        raise AssertionError(f"{victim}: app container not healthy again after 120s")
    marker = f"back-{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        out = _gets(bed, 10, marker)
        assert out.strip().endswith("failed=0"), out
        if bed.app_log_count(victim, marker) > 0:
            return
        time.sleep(2)
    raise AssertionError(f"{victim}: no request reached it within 60s of its restart")


def test_an_app_host_that_stops_answering_fails_no_request_of_any_method(bed, deployed):
    """Issue 10, item 5: the first app host drops every packet from the proxy (no reset, no
    ICMP: a host that vanished). GETs and POSTs in turn keep succeeding: until the proxy's
    djscale-upstream-watch takes the host out (two failed probes), nginx gives up on a
    connection after nginx.connectTimeout; from then on its connections to that host are
    refused on the proxy itself, and either way the request, not yet sent to anyone, goes to
    the next server. Once the host answers again, the watcher puts it back. How long
    requests wait, and the throughput kept, is measured by bench/host_loss.py."""
    from .load import Load, tally

    victim, others = bed.apps[0], bed.apps[1:]
    server = f"{bed.address(victim)}:{bed.upstream_port(victim)}"
    rule = f"-s {layout.PROXY_ADDRESS} -j DROP"
    bed.run_in(victim, f"iptables -t raw -I PREROUTING {rule}")
    try:
        load = Load(bed)
        time.sleep(20)
        watcher = _watch_state(bed)
        chain = bed.sudo("proxy", "iptables -S DJSCALE-UPSTREAM").stdout
        ok, failed = tally(load.stop())
    finally:
        bed.run_in(victim, f"iptables -t raw -D PREROUTING {rule}")
    assert failed == 0 and ok > 20, (ok, failed, load.errors())
    assert sum(bed.app_log_count(role, load.marker) for role in others) == ok
    assert bed.app_log_count(victim, load.marker) == 0
    assert watcher["out"] == [server], watcher
    # matched on the destination nginx asked for (the map of slots rewrites the port)
    # (iptables -S prints a /32 address without its mask)
    assert f"--ctorigdst {bed.address(victim)} --ctorigdstport {bed.upstream_port(victim)} " \
        in chain and "--reject-with tcp-reset" in chain, chain
    journal = bed.sudo("proxy", "journalctl -u djscale-upstream-watch --no-pager").stdout
    assert f"{server} did not take a connection 2 times in a row" in journal

    deadline = time.monotonic() + 30  # back in once it answers two probes
    while _watch_state(bed)["out"]:
        assert time.monotonic() < deadline, _watch_state(bed)
        time.sleep(1)
    marker = f"back-{uuid.uuid4().hex[:8]}"
    out = _gets(bed, 2 * len(bed.apps), marker)
    assert out.strip().endswith("failed=0"), out
    assert bed.app_log_count(victim, marker) > 0  # round robin: it has its share again


def _watch_state(bed) -> dict:
    return json.loads(bed.sudo("proxy", "cat /run/djscale/upstream-watch.json").stdout)
