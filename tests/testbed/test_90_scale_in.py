"""Removing an app server (issue 8, item 5): names are the servers' own, so the others'
containers are untouched (same ids); the removed server leaves nginx's upstream before its
container goes and before pg_hba and the database firewall forget it (until nginx switched,
it may still serve requests that need a new database connection); no request fails
meanwhile.
Its pin leaves ssh.hostKeys with it (a pin for no host is a config problem); its teardown
still connects with the key pinned when it was deployed (the resource's stored connection)."""
from __future__ import annotations

import pytest

from . import layout
from .bed import stack_values
from .deploy import deploy_bed
from .load import Load, tally

pytestmark = pytest.mark.first_suite  # the hosts' release plays no part (conftest.py)


def test_removing_the_middle_app_server_touches_only_what_named_it(bed, deployed):
    if len(bed.apps) < 3:  # the first suite has three unless DJSCALE_TESTBED_APPS says less
        pytest.skip("the proof removes the middle one of three app servers: "
                    "DJSCALE_TESTBED_APPS=3")
    gone, kept = bed.apps[1], [bed.apps[0], *bed.apps[2:]]
    ids = {app: bed.app_container_ids(app) for app in kept}
    servers = [entry for entry in _app_servers(bed) if entry["name"] != gone]
    ssh = stack_values(bed.state)["ssh"]  # its pinned host key goes with it
    ssh["hostKeys"] = {a: k for a, k in ssh["hostKeys"].items() if a != bed.address(gone)}

    # Removing a server changes nginx.conf: nginx reloads, and a reload may close a client's
    # brand-new HTTP/2 connection before its first request (GOAWAY; curl does not retry
    # it, browsers do): README, Benchmarks, "An nginx reload drops new HTTP/2 connections
    # now and then" (one POST of 1,449 in a CI run). What this proof is about, the order
    # (out of the upstream, then the container, then the database's access), it proves
    # over HTTP/1.1, where a reload fails no request.
    load = Load(bed, http1=True)
    try:
        outputs, actions = deploy_bed(with_actions=True,
                                      changes={"appServers": servers, "ssh": ssh})
    finally:
        ok, failed = tally(load.stop())
    assert failed == 0 and ok > 0, (ok, failed, load.errors())

    order = [(a.kind, a.name) for a in actions]

    def ran(name: str) -> int:
        """Where `name` ran again: an update, or a replace (a changed trigger)."""
        return next(i for i, (kind, step) in enumerate(order)
                    if step == name and kind in ("update", "replace"))

    upstream = ran("proxy-nginx-tls-conf")
    teardown = order.index(("delete", f"{gone}-teardown"))
    assert upstream < teardown, order  # out of the upstream before its container went
    for revoke in ("db-pg-hba-revoke", "db-firewall-revoke"):  # and before its DB access
        assert upstream < ran(revoke), order
    assert {name for kind, name in order if kind == "delete"} >= {
        f"{gone}-teardown", f"{gone}-start", f"{gone}-retire", f"{gone}-image",
        f"{gone}-env-file"}

    for app in kept:
        assert bed.app_container_ids(app) == ids[app], f"{app}: touched"
    address = layout.app_address(int(gone.removeprefix("app")))
    assert bed.app_container_ids(gone) == []
    assert bed.sudo(gone, "test -e /etc/djscale/app.env", check=False).returncode == 1
    nginx_conf = bed.sudo("proxy", "cat /etc/djscale/nginx/nginx.conf").stdout
    assert f"server {address}:" not in nginx_conf
    routes = bed.sudo("proxy", "cat /etc/djscale/upstream-slots").stdout
    assert f"\n{address} " not in routes and all(
        f"\n{layout.app_address(int(app.removeprefix('app')))} " in routes for app in kept)
    hba = bed.sudo("db", "cat \"$(sudo -u postgres psql -tAc 'show hba_file')\"").stdout
    assert f"{address}/32" not in hba
    db_rules = bed.sudo("db", "ufw show added").stdout
    assert address not in db_rules
    assert not bed.tcp_open(gone, layout.DB_ADDRESS, 5432)  # the database is closed to it


def _app_servers(bed) -> list[dict]:
    return [{"name": app, "address": bed.address(app), "privateAddress": bed.address(app)}
            for app in bed.apps]
