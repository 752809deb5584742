"""Each benchmark's rows in the table, from made-up measurements (exact text), and the
reboot's firewall comparison. No bed."""
from __future__ import annotations

import argparse

import pytest

from bench import deploys, host_loss, mocks, pg_restart, reboot, rollout, steady
from bench.__main__ import _rows
from bench.load import UnderLoad
from bench.report import Row
from tests.testbed.load import Request

MARKS = (1000.0, 1030.0, 1060.0, 1090.0)  # load, event, event over, load stopped


def run(*requests: Request, marks=MARKS) -> UnderLoad:
    return UnderLoad(list(requests), marks, workers=4)


def ok(started: float, seconds: float = 0.1, method: str = "GET") -> Request:
    return Request(method, "200" if method == "GET" else "403", seconds, started, True)


def failed(started: float, seconds: float = 0.1, method: str = "GET") -> Request:
    return Request(method, "502", seconds, started, False)


def test_steady_state_row():
    measured = run(ok(1000, 0.1), ok(1010, 0.2, "POST"), ok(1020, 0.3),
                   marks=(1000.0, 1030.0, 1030.0, 1030.0))
    assert steady.rows(measured) == [Row(
        "steady state (4 client workers, 30 s)",
        "0.1 req/s, p50 0.200 s, p99 0.300 s, max 0.300 s", 3, "0 (GET 0, POST 0)")]


def test_rollout_row_compares_the_rollout_with_the_steady_state_before_it():
    measured = run(ok(1000, 0.1), ok(1010, 0.1), ok(1020, 0.2),
                   ok(1030, 0.3), failed(1040, 0.9, "POST"), ok(1070, 0.1))
    assert rollout.rows(measured) == [Row(
        "rolling release under load (a new image; the deploy took 30 s)",
        "p99 0.900 s (4.50×), max 0.900 s (4.50×), 0.67× of the throughput",
        2, "1 (GET 0, POST 1)")]


def test_host_loss_row():
    measured = run(ok(1000, 0.05), ok(1010, 0.1), ok(1031, 0.6), ok(1040, 0.2, "POST"),
                   ok(1065, 0.05))
    assert host_loss.rows(measured, ", nginx.hostChecks off") == [Row(
        "silent host loss (app1 drops every packet from the proxy for 30 s, "
        "nginx.hostChecks off)",
        "max 0.600 s, p99 0.600 s (6.00× steady), 1 over 0.5 s, 1.00× of the throughput",
        2, "0 (GET 0, POST 0)")]


def test_pg_restart_row_counts_from_the_restart_on_with_its_error_window():
    measured = run(ok(1000), failed(1025),  # before the restart: not its doing
                   failed(1030.5, 0.25), ok(1031), failed(1032.0, 1.0, "POST"),
                   ok(1070),  # after the load stopped: a late log line, not counted
                   marks=(1000.0, 1030.0, 1032.5, 1062.5))
    assert pg_restart.rows(measured) == [Row(
        "PostgreSQL restart under load (`systemctl restart postgresql`, 2.5 s, and 30 s "
        "after)",
        "error window 2.50 s (from +0.50 s to +3.00 s into the restart); p99 1.00 s, "
        "max 1.00 s", 3, "2 (GET 1, POST 1)")]


def test_pg_restart_row_without_failures():
    measured = run(ok(1031), ok(1040), marks=(1000.0, 1030.0, 1031.2, 1061.2))
    (row,) = pg_restart.rows(measured)
    assert row.measured == "error window 0.000 s; p99 0.100 s, max 0.100 s"
    assert row.failed == "0 (GET 0, POST 0)"


FIREWALL = {"ufw status": "Status: active\nLogging: on (low)\n22/tcp ALLOW IN 10.214.200.1",
            "ufw.service": "enabled\nactive", "DOCKER-USER": "-N DOCKER-USER\n-A ...",
            "FORWARD's first rule": "-A FORWARD -j DOCKER-USER"}
CELLS = {"client -> app1:8000 closed": True, "proxy -> app1:8001 open": True}


def test_a_firewall_as_it_was_has_no_differences():
    assert reboot.firewall_differences(FIREWALL, dict(FIREWALL), CELLS) == []


def test_every_firewall_difference_is_named():
    after = {**FIREWALL, "ufw status": "Status: inactive", "ufw.service": "enabled\nfailed"}
    cells = {**CELLS, "client -> app1:8000 closed": False}
    assert reboot.firewall_differences(FIREWALL, after, cells) == [
        "ufw is not active", "ufw status changed", "ufw.service changed",
        "not so: client -> app1:8000 closed"]


def test_reboot_rows():
    measured = run(ok(1000), ok(1035), failed(1040), ok(1065))
    back = reboot.Reboot("app1", shutdown=3.2, booted=4.5, healthy=12.25, served=14.0)
    assert reboot.rows(measured, back) == [Row(
        "app host reboot (app1: clean shutdown 3.20 s, then power-on)",
        "systemd up 4.50 s, app container healthy 12 s, served through the proxy 14 s after "
        "power-on; firewall intact: yes (ufw active, same rules and DOCKER-USER chain; app "
        "ports closed to the client and the database host, open to the proxy)",
        2, "1 (GET 1, POST 0)")]
    broken = reboot.Reboot("app1", shutdown=3.2, booted=4.5, healthy=12.25, served=14.0,
                           firewall=["ufw is not active"])
    assert reboot.rows(measured, broken)[0].measured.endswith(
        "firewall intact: NO: ufw is not active")
    drained = reboot.Reboot("app1", drain=3, shutdown=3.2, booted=4.5, healthy=12.25,
                            served=14.0)
    assert reboot.rows(measured, drained)[0].benchmark == (
        "app host reboot (app1: new connections refused 3 s before, clean shutdown 3.20 s, "
        "then power-on)")
    never = reboot.Reboot("app1", shutdown=3.2, booted=4.5)
    assert reboot.rows(measured, never)[0].measured == (
        "systemd up 4.50 s, app container healthy not within 300 s, served through the proxy "
        "not within 300 s after power-on; firewall intact: not checked: the app did not "
        "come back")


def test_mocks_rows():
    assert mocks.rows([mocks.MockRun(100, 3.871, 1039, 16, 112)]) == [Row(
        "the program under mocks, N = 100",
        "3.87 s, 1039 resources, critical path 16 (112 with `rollout.batchSize: 1`)")]


def test_deploy_rows_count_what_changed():
    rows = deploys.rows([
        deploys.Deploy("fresh", 131.4, {"create": 57}),
        deploys.Deploy("no-op (the same project again)", 21.0, {"same": 57}),
        deploys.Deploy("code change", 83.0, {"same": 40, "replace": 8, "delete": 8,
                                             "update": 1})])
    assert [r.measured for r in rows] == [
        "131 s (57 create of 57)", "21 s (all 57 resources the same)",
        "83 s (8 delete, 8 replace, 1 update of 57)"]
    assert rows[0].benchmark == "deploy wall time: fresh" and rows[0].requests is None


def test_rows_to_run_are_checked():
    assert _rows("mocks, steady") == ["mocks", "steady"]
    with pytest.raises(argparse.ArgumentTypeError, match="unknown rows"):
        _rows("steady,everything")
