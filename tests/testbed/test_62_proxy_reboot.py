"""The proxy reboots: the release switch survives it. The map of live slots is kernel state
(iptables nat rules), so a reboot forgets it; djscale-upstream-slots.service applies
/etc/djscale/upstream-slots again at boot, before Docker starts nginx. After a clean reboot
(systemd stops every unit; a new network namespace: no rule survives), the rules in force
are exactly the map, each server is routed to the slot its release runs in, and GETs and
POSTs are served by every app server with none failed. Run after test_60's rollout, the
servers' releases are in slot b, whose port nginx.conf does not list: without the unit,
every request would find nothing on app.port."""
from __future__ import annotations

import time

import pytest

from components.upstream_slots import parse_map, routes_in_force

from . import layout
from .hosts import reboot_host, wait_until
from .load import Load, tally

# The nat rules on the second suite's nf_tables iptables are proven by test_60's rollout
# there; the boot order is systemd's on both.
pytestmark = pytest.mark.first_suite



def _served(bed) -> bool:
    return bed.curl(f"https://{layout.DOMAIN}/mydb/", "-o", "/dev/null", "-w", "%{http_code}",
                    timeout=15).stdout == "200"


def test_after_a_proxy_reboot_every_server_is_routed_to_its_live_slot(bed, deployed):
    routes = bed.sudo("proxy", "cat /etc/djscale/upstream-slots").stdout
    wanted = set(parse_map(routes))
    assert {address for address, _, _ in wanted} == {bed.address(a) for a in bed.apps}
    for app in bed.apps:  # each route is the port of the slot the server's release runs in
        live = bed.upstream_port(app) + bed.app_container(app).endswith("-b")
        assert bed.slot_port(app) == live, (app, routes)

    reboot_host(bed.engine, "proxy")
    wait_until("proxy: the site is served again", lambda: _served(bed), 180)
    active = bed.sudo("proxy", "systemctl is-active djscale-upstream-slots.service; "
                               "systemctl is-enabled djscale-upstream-slots.service",
                      check=False).stdout.split()
    assert active == ["active", "enabled"], active
    in_force = set(routes_in_force(bed.sudo("proxy",
                                            "iptables -w -t nat -S DJSCALE-SLOTS").stdout))
    assert in_force == wanted, (in_force, wanted)
    hooked = bed.sudo("proxy", "iptables -w -t nat -S OUTPUT").stdout.splitlines()
    assert hooked.count("-A OUTPUT -j DJSCALE-SLOTS") == 1, hooked

    load = Load(bed)
    time.sleep(10)
    ok, failed = tally(load.stop())
    assert failed == 0 and ok > 20, (ok, failed, load.errors())
    for app in bed.apps:  # every server takes its share: none is routed to an empty port
        assert bed.app_log_count(app, load.marker) > 0, app
