"""An app server's host reboots under load, cleanly (systemd stops every unit, then it boots
in a new network namespace): no request of either method fails. Before Docker stops the
app, djscale-app-drain.service's stop answers new connections to the app's ports with a
reset (the proxy sends those requests to the other servers, whatever their method) and
waits for the requests in flight; without it, the POSTs nginx had sent into gunicorn's
backlog as it stopped got 502 (bench/reboot.py, README Benchmarks). After the boot the app
is healthy and served again, the firewall is as it was (ufw, DOCKER-USER, and from real
sockets the app ports closed to the client and the database, open to the proxy), no
refusal is left and the drain unit is active again. The measurement (seconds to healthy)
is bench/reboot.py's; this proof asserts correctness only."""
from __future__ import annotations

import pytest

from bench.reboot import measure

pytestmark = pytest.mark.first_suite  # the hosts' release plays no part (conftest.py)


def test_a_rebooted_app_host_is_drained_first_and_comes_back(bed, deployed):
    run, outcome = measure(bed, workers=4, steady=5, after=5)
    failed = [r for r in run.requests if not r.ok]
    assert run.in_phase("during") and not failed, [
        (r.method, r.status, r.curl_exit) for r in failed]
    assert outcome.served is not None, outcome  # back in the rotation, by itself
    assert outcome.firewall == [], outcome.firewall
    role = outcome.role
    unit = bed.run_in(role, "systemctl is-active djscale-app-drain.service; "
                            "systemctl is-enabled djscale-app-drain.service",
                      check=False).stdout.split()
    assert unit == ["active", "enabled"], unit
    rules = bed.run_in(role, "iptables -w -S DOCKER-USER").stdout
    assert "djscale-drain" not in rules, rules
