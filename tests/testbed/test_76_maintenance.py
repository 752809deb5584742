"""Maintenance mode on the bed (issue 12, item 5).

1. `sudo djscale-maintenance on` on the proxy: the client (the internet) gets 503, the
   maintenance page and Retry-After, for GET and POST; a request from the admin network
   (the machine itself: firewall.adminCidrs is the bed's gateway) reaches the app; `off`:
   the client is served again. No reload, no deploy.
2. `maintenance.enabled: true` deployed: the client gets 503; the bed's own config deployed
   again (the value changes back): served.

Written for the bed; run with `pytest -m testbed tests/testbed` (not run where this was
written: the bed's engine and hosts were in use).
"""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest

from . import layout
from .deploy import deploy_bed
from .probes import PEBBLE_ROOT

pytestmark = pytest.mark.first_suite  # the hosts' release plays no part (conftest.py)

URL = f"https://{layout.DOMAIN}/mydb/"


def _client(bed, *args: str) -> tuple[str, str]:
    """(status code, headers and body) of a request from the client container."""
    out = bed.curl(URL, "-D", "-", "-w", "\n%{http_code}", *args).stdout
    text, _, code = out.rpartition("\n")
    return code, text


def _admin(bed, *args: str) -> str:
    """The status code of a request from the machine: the admin network's address."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "pebble-root.pem"
        root.write_text(bed.run_in("client", f"cat {PEBBLE_ROOT}").stdout)
        done = subprocess.run(
            ["curl", "-sS", "--max-time", "30", "--cacert", str(root), "--resolve",
             f"{layout.DOMAIN}:443:{layout.PROXY_ADDRESS}", "-o", "/dev/null", "-w",
             "%{http_code}", *args, URL], capture_output=True, text=True, timeout=60)
    return done.stdout


def test_the_switch_answers_clients_with_the_page_and_lets_the_admin_network_through(
        bed, deployed):
    assert _client(bed)[0] == "200"
    on = bed.sudo("proxy", "djscale-maintenance on")
    assert on.stdout.startswith("djscale: maintenance mode on"), on.stdout
    try:
        for args in ((), ("--data", "q=1")):
            code, text = _client(bed, *args)
            assert code == "503", (args, text)
            lower = text.lower()
            assert "\nretry-after: 300" in lower and "content-type: text/html" in lower, text
            assert f"{layout.DOMAIN} is down for maintenance" in text, text
        assert _admin(bed) == "200"
        assert bed.sudo("proxy", "djscale-maintenance status").stdout.startswith("on since ")
    finally:
        bed.sudo("proxy", "djscale-maintenance off")
    assert _client(bed)[0] == "200"


def test_the_config_switches_it_at_deploy_time(bed, deployed):
    try:
        deploy_bed(changes={"maintenance": {"enabled": True}})
        assert _client(bed)[0] == "503"
        assert _admin(bed) == "200"
    finally:
        deploy_bed()  # the bed's own config: maintenance.enabled back to false
    assert _client(bed)[0] == "200"
    assert bed.sudo("proxy", "djscale-maintenance status").stdout == "off\n"
