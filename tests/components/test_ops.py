"""components/ops: the operations CLI.

The commands it sends, as exact text; what it makes of the hosts' answers (status, merged
logs); the stack it reads (config, outputs of the stand-in engine, the key). Then the real
thing, end to end: `python -m components.ops` against real OpenSSH servers in network
namespaces (tests/support/ssh_hosts.py) with their host keys pinned in the stack file, each
host with its own state files and a stand-in `docker` (tests/components/ops_stubs.py):
status, logs, exec and manage (with and without a terminal), a host that refuses, a host
that hangs, and hosts behind a bastion. Needs root and sshd, as the host-key tests do.
"""
from __future__ import annotations

import json
import os
import pty
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from components.ops import remote
from components.ops.logs import merge, parse_duration, parse_time
from components.ops.session import Result
from components.ops.stack import (KEY_ENV, OpsError, engine_state_outputs,
                                  private_key, read_outputs, stack_hosts)
from components.ops.status import Probed, parse_probes, render, report_host
from tests.components.helpers import stack_config
from tests.components.ops_stubs import STUBS, docker_calls, write_state
from tests.support.ssh_hosts import SSHD, SshSite

ROOT = Path(__file__).resolve().parents[2]
A, B = "sha256:" + "a" * 64, "sha256:" + "b" * 64
SIG = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}


# --- the commands, as text ---------------------------------------------------------------

def test_app_logs_command():
    options = remote.LogOptions(follow=True, since_seconds=900, lines=50)
    assert remote.app_logs_command(options) == (
        "sudo -n bash -c " + shlex.quote(remote.APP_LOGS_SCRIPT) + " djscale-ops djscale-app "
        "--timestamps --since 900s --tail 50 --follow")
    assert remote.app_logs_command(remote.LogOptions()).endswith(
        " djscale-ops djscale-app --timestamps")
    assert remote.proxy_logs_command(remote.LogOptions(lines=100)) == (
        "sudo -n bash -c " + shlex.quote(remote.CONTAINER_LOGS_SCRIPT)
        + " djscale-ops djscale-nginx --timestamps --tail 100")


def test_db_logs_command():
    assert remote.db_logs_command(remote.LogOptions(lines=100)) == (
        "sudo -n bash -c " + shlex.quote(remote.DB_LOGS_SCRIPT)
        + " djscale-ops 100 all no '/var/log/postgresql/postgresql-*.log'")
    assert remote.db_logs_command(remote.LogOptions(follow=True, since_seconds=60)).endswith(
        " djscale-ops all 60 yes '/var/log/postgresql/postgresql-*.log'")


def test_one_off_command_runs_the_current_release_with_the_env_file():
    command = remote.one_off_command(
        ["python", "manage.py", "shell", "-c", "print('a b')"], env_file="/etc/djscale/app.env",
        volumes=["/etc/djscale/db-ca.pem:/etc/djscale/db-ca.pem:ro"], tty=False)
    assert command == (
        "sudo -n bash -c " + shlex.quote(remote.ONE_OFF_SCRIPT) + " djscale-ops djscale-app "
        "/var/lib/djscale/app-slot --rm --interactive --env-file /etc/djscale/app.env "
        "--volume /etc/djscale/db-ca.pem:/etc/djscale/db-ca.pem:ro --label djscale.oneoff=ops "
        "-- python manage.py shell -c 'print('\"'\"'a b'\"'\"')'")
    with_tty = remote.one_off_command(["sh"], env_file="/e", volumes=[], tty=True)
    assert with_tty.endswith(" --rm --interactive --tty --env-file /e --label "
                             "djscale.oneoff=ops -- sh")
    assert remote.host_command(["cat", "/a b"]) == "cat '/a b'"
    with pytest.raises(ValueError):
        remote.one_off_command([], env_file="/e", volumes=[], tty=False)


def test_status_probes_per_role():
    assert [p.name for p in remote.status_probes("app")] == [
        "now", "disk", "slot", "containers", "releases", "images"]
    probes = {p.name: p.command for p in remote.status_probes("app")}
    assert probes["containers"] == (
        "docker container ls --all --quiet --filter label=djscale.container=djscale-app | "
        "xargs -r docker container inspect --format '{{.Name}} {{.Image}} {{.State.Status}} "
        "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} "
        "{{.State.StartedAt}}'")
    assert probes["releases"] == ("test -e /var/lib/djscale/releases || exit 127; "
                                  "tail -n 5 /var/lib/djscale/releases")
    proxy = {p.name: p.command for p in remote.status_probes("proxy")}
    assert proxy["upstream"] == ("sed -n '/upstream djscale_app {/,/}/p' "
                                 "/etc/djscale/nginx/nginx.conf")
    assert proxy["certificate"] == (
        "test -e /usr/local/sbin/djscale-certificate-status || exit 127; "
        "/usr/local/sbin/djscale-certificate-status")
    database = {p.name: p.command for p in remote.status_probes("database")}
    assert database["backup"] == (
        "test -e /var/lib/djscale/backup/last || exit 127; stat -c '%Y %s' "
        "/var/lib/djscale/backup/last; head -c 4096 /var/lib/djscale/backup/last")
    script = remote.probe_script([remote.Probe("now", "date -u +%s")])
    assert script == "echo '### now'\n( date -u +%s ) 2>&1\necho \"### rc $?\"\n"
    assert remote.status_command("app") == "sudo -n bash -c " + shlex.quote(
        remote.probe_script(remote.status_probes("app"))) + " djscale-ops"


@pytest.mark.parametrize("script", [remote.APP_LOGS_SCRIPT, remote.CONTAINER_LOGS_SCRIPT,
                                    remote.DB_LOGS_SCRIPT, remote.ONE_OFF_SCRIPT,
                                    remote.probe_script(remote.status_probes("app"))],
                         ids=["app-logs", "container-logs", "db-logs", "one-off", "probes"])
def test_the_remote_scripts_pass_shellcheck(script, tmp_path):
    path = tmp_path / "script.sh"
    path.write_text("#!/usr/bin/env bash\n" + script)
    subprocess.run(["bash", "-n", str(path)], check=True)
    result = subprocess.run(["shellcheck", "-s", "bash", str(path)], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout


# --- what it makes of the answers ------------------------------------------------------

def test_durations_and_log_times():
    assert [parse_duration(d) for d in ("90s", "15m", "2h", "1d", "30")] == [
        90, 900, 7200, 86400, 30]
    for bad in ("0", "5w", "-1h", "1.5h", ""):
        with pytest.raises(ValueError):
            parse_duration(bad)
    at = lambda micro: datetime(2026, 11, 20, 10, 0, 1, micro, tzinfo=timezone.utc)  # noqa
    assert parse_time("2026-11-20T10:00:01.123456789Z GET /") == at(123456)
    assert parse_time("2026-11-20T11:00:01.123457+01:00 db postgres[1]: x") == at(123457)
    assert parse_time("2026-11-20T05:00:01-0500 x") == at(0)
    assert parse_time("2026-11-20 10:00:01.123 UTC [77] LOG:  checkpoint") == at(123000)
    assert parse_time("\tSTATEMENT: select 1") is None
    assert parse_time("2026-11-20T10:00:01Zbad") is None


def test_merge_orders_every_host_by_time_continuations_stay():
    merged = merge([
        ("app1", ["2026-11-20T10:00:03Z c", "2026-11-20T10:00:01Z a"]),
        ("db", ["2026-11-20 10:00:02.000 UTC [1] ERROR: x", "\tSTATEMENT: select"]),
    ])
    assert merged == ["app1 | 2026-11-20T10:00:01Z a",
                      "db   | 2026-11-20 10:00:02.000 UTC [1] ERROR: x",
                      "db   | \tSTATEMENT: select",
                      "app1 | 2026-11-20T10:00:03Z c"]


def _probes(**sections) -> str:
    out = []
    for name, (rc, text) in sections.items():
        out += [f"### {name}", *text.splitlines(), f"### rc {rc}"]
    return "\n".join(out) + "\n"


def test_parse_probes():
    text = _probes(now=(0, "1795000000"), slot=(1, "cat: no such file"), empty=(0, ""))
    assert parse_probes(text) == {
        "now": Probed(0, ("1795000000",)), "slot": Probed(1, ("cat: no such file",)),
        "empty": Probed(0, ())}


def _hosts():
    cfg = stack_config("stack_two_apps.yaml")
    return cfg, {host.name: host for host in stack_hosts(cfg)}


def test_status_report_names_releases_health_upstream_and_problems():
    cfg, hosts = _hosts()
    now = int(datetime(2026, 11, 21, 5, 46, tzinfo=timezone.utc).timestamp())
    app = lambda slot, image, health: _probes(  # noqa: E731
        now=(0, str(now)), disk=(0, "Filesystem 1024-blocks Used Available Capacity Mounted on\n"
                                 "/dev/vda 20971520 8388608 12582912 40% /\n"
                                 "/dev/vda 20971520 8388608 12582912 40% /var/lib/docker"),
        slot=(0, slot),
        containers=(0, f"/djscale-app-{slot} {image} running {health} 2026-11-18T08:00:00.5Z"),
        releases=(0, f"2026-11-17T10:00:00Z {A} current\n2026-11-18T08:00:01Z {B} current"),
        images=(0, f"{B} 1234 2026-11-18\n{A} 0abc 2026-11-17"))
    results = [
        Result(hosts["db"], 0, _probes(now=(0, str(now)), disk=(0, ""),
                                       postgresql=(0, "active"),
                                       backup=(0, "1794990000 60\ntime=2026-11-21T03:00:00Z\n"
                                                  "size=13000000\nobject=s3://b/x.dump\n"
                                                  "password=Never-Print-Me"))),
        Result(hosts["app1"], 0, app("b", B, "healthy")),
        Result(hosts["app2"], 0, app("a", A, "unhealthy")),
        Result(hosts["proxy"], 0, _probes(
            now=(0, str(now)), disk=(0, ""),
            containers=(0, "/djscale-nginx sha256:ee running none 2026-11-01T00:00:00Z"),
            upstream=(0, "    upstream djscale_app {\n        server 10.0.0.21:8000 max_fails=0;"
                         "\n        server 10.0.0.22:8000 max_fails=0;\n    }"),
            slots=(0, "# ADDRESS PORT SLOT_PORT\n10.0.0.21 8000 8001\n10.0.0.22 8000 8001"),
            **{"slot-rules": (0, SLOT_RULES)},
            certificate=(0, "== served certificate\ndjscale: the certificate served for "
                            "shop.example.com expires at 2027-01-01T00:00:00Z: 41 days left "
                            "(alert below 14)\n\n== last runs\n...\n== alerts (/x)\nnone"),
            watcher=(0, '{"checked": "2026-11-21T05:45:59+0000", "servers": '
                        '["10.0.0.21:8001", "10.0.0.22:8001"], "out": ["10.0.0.22:8001"]}'))),
    ]
    text, problems = render(cfg, results, {"appImage": B}, "the engine state X")
    lines = text.splitlines()
    assert lines[0].split() == ["db", "203.0.113.10:2222", "reachable"]
    assert "       postgresql active" in lines
    assert "       last backup 2026-11-21T03:00:00Z (2h 46m ago), 12.4 MiB, s3://b/x.dump" \
        in lines
    assert "Never-Print-Me" not in text
    assert (f"       release {B} (djscale-app-b, port 8001): running healthy, up 2d 21h"
            in lines)
    assert f"     ! release {A} (djscale-app-a, port 8000): running unhealthy, up 2d 21h" \
        in lines
    assert ("       releases recorded (newest last): 2026-11-17T10:00:00Z sha256:aaaaaaaaaaaa "
            "current; 2026-11-18T08:00:01Z sha256:bbbbbbbbbbbb current") in lines
    assert f"       app.release previous would be {A}" in lines
    assert "       disk / 40% of 20.0 GiB" in lines  # one filesystem, said once
    assert "       upstream 10.0.0.21:8000 (app1, slot b, routed to 8001)" in lines
    assert ("     ! upstream 10.0.0.22:8000 (app2, slot a, routed to 8001): but its slot is on "
            "port 8000") in lines
    assert not any("release slots" in line for line in lines)  # the map is in force
    assert ("       certificate: the certificate served for shop.example.com expires at "
            "2027-01-01T00:00:00Z: 41 days left (alert below 14)") in lines
    assert lines[-4:] == [
        "appImage (the release the last update gave every app server): " + B,
        f"release {B}: app1", f"release {A}: app2  ! not appImage",
        "! the app servers run different releases (a rollout in progress, or one that "
        "stopped)"]
    assert ("     ! upstream 10.0.0.22:8001: out, it does not take the proxy's connections "
            "(djscale-upstream-watch refuses nginx's to it until it answers)") in lines
    assert problems == 5


SLOT_RULES = ("-N DJSCALE-SLOTS\n"
              "-A DJSCALE-SLOTS -d 10.0.0.21/32 -p tcp -m tcp --dport 8000 -j DNAT "
              "--to-destination 10.0.0.21:8001\n"
              "-A DJSCALE-SLOTS -d 10.0.0.22/32 -p tcp -m tcp --dport 8000 -j DNAT "
              "--to-destination 10.0.0.22:8001")


@pytest.mark.parametrize("slots,rules,says", [
    # a proxy set up before the map existed: nginx.conf's ports are the slots'
    ((127, ""), (1, "iptables: No chain/target/match by that name."), None),
    # rebooted without its unit, or the rules flushed by hand
    ((0, "10.0.0.21 8000 8001\n10.0.0.22 8000 8001"),
     (1, "iptables: No chain/target/match by that name."),
     "! release slots: no rules in force (sudo systemctl restart djscale-upstream-slots)"),
    ((0, "10.0.0.21 8000 8001\n10.0.0.22 8000 8000"), (0, SLOT_RULES),
     "! release slots: the rules in force are not the map (sudo systemctl restart "
     "djscale-upstream-slots)"),
    ((0, "10.0.0.21 8000"), (0, SLOT_RULES),
     "! release slots: /etc/djscale/upstream-slots line 1: want ADDRESS PORT SLOT_PORT, got "
     "'10.0.0.21 8000'"),
])
def test_status_report_checks_the_map_of_slots_is_in_force(slots, rules, says):
    cfg, hosts = _hosts()
    report = report_host(cfg, Result(hosts["proxy"], 0, _probes(
        now=(0, "1795000000"), disk=(0, ""),
        containers=(0, "/djscale-nginx sha256:ee running none 2026-11-01T00:00:00Z"),
        upstream=(0, "    upstream djscale_app {\n        server 10.0.0.21:8000 max_fails=0;\n"
                     "    }"),
        slots=slots, **{"slot-rules": rules})))
    said = [line for line in report.lines if "release slots" in line]
    assert said == ([says] if says else []), report.lines
    assert report.problems == (1 if says else 0), report.lines


@pytest.mark.parametrize("state,health,says,problem", [
    ("running", "healthy", "running healthy, up 5s", False),
    # just released: the start step ran the healthcheck itself, Docker's first is to come
    ("running", "starting", "running starting (Docker's healthcheck has not passed yet), "
                            "up 5s", False),
    ("running", "unhealthy", "running unhealthy, up 5s", True),
    ("exited", "unhealthy", "exited unhealthy", True),
])
def test_status_report_of_the_app_containers_health(state, health, says, problem):
    cfg, hosts = _hosts()
    report = report_host(cfg, Result(hosts["app1"], 0, _probes(
        now=(0, "1795000005"), disk=(0, ""), slot=(0, "a"),
        containers=(0, f"/djscale-app-a sha256:aa {state} {health} 2026-11-18T11:06:40Z"))))
    line = next(line for line in report.lines if "release sha256:aa" in line)
    assert line.endswith(says) and line.lstrip().startswith("!") == problem, report.lines


def test_status_report_of_the_upstream_watcher():
    cfg, hosts = _hosts()
    now = int(datetime(2026, 11, 21, 5, 46, tzinfo=timezone.utc).timestamp())

    def lines(watcher):
        result = Result(hosts["proxy"], 0, _probes(
            now=(0, str(now)), disk=(0, ""), upstream=(0, ""), certificate=(127, ""),
            containers=(0, "/djscale-nginx sha256:ee running none 2026-11-01T00:00:00Z"),
            watcher=watcher))
        return render(cfg, [result], {}, "x")[0].splitlines()

    fresh = '{"checked": "2026-11-21T05:45:59+0000", "servers": ["10.0.0.21:8000"], "out": []}'
    assert "       upstream watcher: every server answers" in lines((0, fresh))
    stale = fresh.replace("05:45:59", "05:40:00")
    assert ("     ! upstream watcher: last round 2026-11-21T05:40:00+0000, stopped? "
            "(systemctl status djscale-upstream-watch)") in lines((0, stale))
    assert ("       upstream watcher: no state (nginx.hostChecks is false, or it never ran)"
            in lines((127, "")))
    assert "     ! upstream watcher: state not read" in lines((0, "{not json"))


def test_status_report_of_hosts_not_reached():
    cfg, hosts = _hosts()
    results = [Result(hosts["db"], 255, stderr="ssh: connect to host 203.0.113.10 port 2222: "
                                               "Connection refused\n"),
               Result(hosts["app1"], None, timeout=7.0),
               Result(hosts["app2"], 1, stderr="sudo: a password is required\n"),
               Result(hosts["proxy"], 0, _probes(
                   now=(0, "1"), disk=(0, ""), containers=(1, "Error: No such container"),
                   upstream=(2, "sed: can't read"), certificate=(127, "")))]
    text, problems = render(cfg, results, {}, "not read")
    lines = text.splitlines()
    assert lines[:2] == ["db     203.0.113.10:2222  NOT REACHED",
                         "     ! unreachable: ssh: connect to host 203.0.113.10 port 2222: "
                         "Connection refused"]
    assert "     ! no answer within 7s" in lines
    assert "     ! reachable, but the probes failed: sudo: a password is required" in lines
    assert "     ! nginx: no container" in lines and "     ! upstream: nginx.conf not read" in lines
    assert "       certificate: no djscale-certificate-status on this host" in lines
    assert problems >= 5


# --- the stack ---------------------------------------------------------------------------

def _engine_state(path: Path, outputs: dict) -> Path:
    path.write_text(json.dumps({"version": 2, "resources": [
        {"type": "pulumi:pulumi:Stack", "urn": "urn:x", "outputs": outputs}]}))
    return path


def test_outputs_from_the_engine_state_never_the_secret_ones(tmp_path):
    state = _engine_state(tmp_path / "djscale-shop.engine-state.json", {
        "appImage": B, "url": "https://x/", "adminPassword": {**SIG, "value": "Never-Print-Me"}})
    assert engine_state_outputs(state, "djscale", "shop") == {"appImage": B, "url": "https://x/"}
    assert engine_state_outputs(tmp_path, "djscale", "shop") == {"appImage": B,
                                                                 "url": "https://x/"}
    outputs, source = read_outputs("shop", ROOT, None, {"DJSCALE_ENGINE_STATE": str(tmp_path)})
    assert (outputs["appImage"], source) == (B, f"the engine state {tmp_path}")
    with pytest.raises(OpsError, match="no engine state"):
        engine_state_outputs(tmp_path, "djscale", "other")
    if not shutil.which("pulumi"):
        assert read_outputs("shop", ROOT, None, {}) == (
            {}, "not read (no Pulumi CLI on PATH, no --engine-state)")


def test_the_key_comes_from_the_option_the_environment_or_the_config(tmp_path):
    cfg = stack_config("stack_two_apps.yaml")
    key = tmp_path / "key"
    key.write_text("KEY FROM FILE\n")
    assert private_key(cfg, "shop", ROOT, str(key), {KEY_ENV: "KEY FROM ENV"}) == \
        "KEY FROM FILE\n"
    assert private_key(cfg, "shop", ROOT, None, {KEY_ENV: "KEY FROM ENV"}) == "KEY FROM ENV"
    with pytest.raises(OpsError, match="cannot read the key file"):
        private_key(cfg, "shop", ROOT, str(tmp_path / "missing"), {})


def test_the_cli_does_not_import_pulumi():
    probe = ("import sys, components.ops.__main__; "
             "sys.exit(1 if any(m == 'pulumi' or m.startswith('pulumi.') for m in sys.modules) "
             "else 0)")
    assert subprocess.run([sys.executable, "-c", probe], cwd=ROOT).returncode == 0


# --- end to end, against real OpenSSH servers -------------------------------------------

HOSTS = {"db": "10.78.0.10", "app1": "10.78.0.21", "app2": "10.78.0.22", "proxy": "10.78.0.30"}


def _host_states(site: SshSite) -> None:
    """Each host's files: containers started two minutes ago, logs, records, a backup."""
    now = int(time.time())
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - 120))

    def app(name, slot, logs, later=()):
        root = site.root(name)
        write_state(root, {"containers": [
            {"id": f"{name}-c{slot}", "name": f"djscale-app-{slot}", "label": "djscale-app",
             "image": B, "state": "running", "health": "healthy",
             "started": f"{stamp}.000000001Z", "logs": list(logs), "later": list(later)}],
            "images": [{"id": B, "tag": "b"}, {"id": A, "tag": "a"}]})
        (root / "var/lib/djscale").mkdir(parents=True)
        (root / "var/lib/djscale/app-slot").write_text(f"{slot}\n")
        (root / "var/lib/djscale/releases").write_text(
            f"2026-11-17T10:00:00Z {A} current\n2026-11-18T10:00:00Z {B} current\n")
        (root / "var/lib/docker").mkdir()
        (root / "etc/djscale").mkdir()
        (root / "etc/djscale/app.env").write_text("DJANGO_SECRET_KEY=Never-Print-Me\n")

    app("app1", "b", ["2026-11-20T10:00:01.000000001Z app1 first",
                      "2026-11-20T10:00:03.000000001Z app1 third"],
        later=["2026-11-20T10:00:09.000000001Z app1 later"])
    app("app2", "a", ["2026-11-20T10:00:02.000000001Z app2 second"])
    proxy = site.root("proxy")
    write_state(proxy, {"containers": [
        {"id": "n1", "name": "djscale-nginx", "label": "djscale-nginx", "image": "sha256:ee",
         "state": "running", "started": f"{stamp}Z",
         "logs": ["2026-11-20T10:00:02.500000000Z 10.0.0.9 - GET / 200"]}]})
    (proxy / "etc/djscale/nginx").mkdir(parents=True)
    (proxy / "etc/djscale/nginx/nginx.conf").write_text(
        "http {\n    upstream djscale_app {\n        server 10.78.0.21:8001 max_fails=0;\n"
        "        server 10.78.0.22:8000 max_fails=0;\n    }\n}\n")
    status = proxy / "usr/local/sbin/djscale-certificate-status"
    status.write_text("#!/bin/bash\necho '== served certificate'\necho 'djscale: the "
                      "certificate served for shop.example.com expires at 2027-01-01T00:00:00Z:"
                      " 41 days left (alert below 14)'\necho\necho '== alerts'\necho none\n")
    status.chmod(0o755)
    db = site.root("db")
    write_state(db, {})
    (db / "var/lib/djscale/backup").mkdir(parents=True)
    (db / "var/lib/djscale/backup/last").write_text(
        "time=2026-11-20T03:00:00Z\nsize=2048\nobject=s3://backups/db.dump\n")
    (db / "var/log/postgresql").mkdir()
    old = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now - 7200))
    recent = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now - 60))
    (db / "var/log/postgresql/postgresql-15-main.log").write_text(
        f"{old}.000 UTC [10] LOG:  an old line\n{recent}.000 UTC [11] ERROR:  a recent one\n"
        "\tSTATEMENT:  select 1\n")


def _stack_file(path: Path, site: SshSite, keys: dict, ssh: dict | None = None,
                extra_app: bool = False) -> Path:
    apps = [{"name": "app1", "address": HOSTS["app1"], "privateAddress": HOSTS["app1"]},
            {"name": "app2", "address": HOSTS["app2"], "privateAddress": HOSTS["app2"],
             "sshPort": 2222}]
    if extra_app:
        apps.append({"name": "app3", "address": "10.78.0.23", "privateAddress": "10.78.0.23"})
    config = {
        "djscale:domain": "shop.example.com",
        "djscale:staticStorageSecretKey": {"secure": "v1:placeholder"},
        "djscale:acme": {"email": "ops@example.com"},
        "djscale:ssh": {"user": "deploy", "privateKeyPath": str(site.client_key),
                        "hostKeys": keys, **(ssh or {})},
        "djscale:database": {"address": HOSTS["db"], "privateAddress": HOSTS["db"]},
        "djscale:appServers": apps,
        "djscale:proxy": {"address": HOSTS["proxy"], "privateAddress": HOSTS["proxy"]},
        "djscale:app": {"superuser": {"email": "admin@example.com"}},
        "djscale:staticStorage": {"bucket": "shop-static", "accessKeyId": "AKIAEXAMPLE"},
        "djscale:firewall": {"adminCidrs": ["10.78.0.0/16"]},
        "djscale:backups": {"enabled": False},
    }
    path.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    return path


@pytest.fixture
def site():
    if not os.path.isfile(SSHD):
        pytest.fail(f"no sshd at {SSHD}: apt-get install openssh-server (or set DJSCALE_SSHD)")
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    site = SshSite(STUBS)
    try:
        yield site
    finally:
        site.close()


@pytest.fixture
def hosts(site, tmp_path):
    """Every host served in one namespace (the operator's commands run there too)."""
    netns = site.netns("in", *HOSTS.values(), "10.78.0.23")
    _host_states(site)
    keys = {address: site.serve(netns, name, address, 2222 if name == "app2" else 22)
            for name, address in HOSTS.items()}
    state = _engine_state(tmp_path / "djscale-shop.engine-state.json", {
        "appImage": B, "adminPassword": {**SIG, "value": "Never-Print-Me"}})
    stack = _stack_file(tmp_path / "Pulumi.shop.yaml", site, keys)
    return {"netns": netns, "keys": keys, "stack": stack, "state": state}


def ops(netns: str, *args: str, stdin: str = "", timeout: float = 120,
        env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK", KEY_ENV)}
    return subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-m", "components.ops",
                           *args], cwd=ROOT, env={**environment, **(env or {})}, input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def test_status_of_every_host(site, hosts):
    result = ops(hosts["netns"], "--stack-file", str(hosts["stack"]), "status",
                 env={"DJSCALE_ENGINE_STATE": str(hosts["state"])})
    assert result.returncode == 2  # the state file is per stack: --stack names it
    assert "--engine-state needs --stack" in result.stderr

    project = hosts["stack"].parent  # Pulumi.shop.yaml is there; the project's name:
    (project / "Pulumi.yaml").write_text("name: djscale\n")
    result = ops(hosts["netns"], "--stack", "shop", "--project-dir", str(project),
                 "--engine-state", str(project), "status")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert result.stderr == ""
    assert f"release {B} (djscale-app-b, port 8001): running healthy, up 2m" in out
    assert f"release {B} (djscale-app-a, port 8000): running healthy, up 2m" in out
    assert f"app.release previous would be {A}" in out
    assert "upstream 10.78.0.21:8001 (app1, slot b)" in out
    assert "upstream 10.78.0.22:8000 (app2, slot a)" in out
    assert "certificate: the certificate served for shop.example.com expires at " in out
    assert "last backup 2026-11-20T03:00:00Z" in out and "2.0 KiB, s3://backups/db.dump" in out
    assert "postgresql active" in out and "disk / " in out
    assert f"release {B}: app1, app2" in out and "! " not in out
    assert f"stack outputs: the engine state {project}" in out
    assert "Never-Print-Me" not in out
    assert "Accepted publickey for deploy" in site.logs["app2"].read_text()


def test_logs_interleaved_by_time_and_prefixed_by_host(site, hosts):
    stack = ["--stack-file", str(hosts["stack"])]
    result = ops(hosts["netns"], *stack, "logs", "--proxy")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "app1  | 2026-11-20T10:00:01.000000001Z app1 first",
        "app2  | 2026-11-20T10:00:02.000000001Z app2 second",
        "proxy | 2026-11-20T10:00:02.500000000Z 10.0.0.9 - GET / 200",
        "app1  | 2026-11-20T10:00:03.000000001Z app1 third"]
    assert docker_calls(site.root("app1"))[-1] == [
        "logs", "--timestamps", "--tail", "100", "app1-cb"]
    assert docker_calls(site.root("proxy"))[-1] == [
        "logs", "--timestamps", "--tail", "100", "djscale-nginx"]

    result = ops(hosts["netns"], *stack, "logs", "app1", "-n", "1", "--since", "2h")
    assert result.stdout == "app1 | 2026-11-20T10:00:03.000000001Z app1 third\n"
    assert docker_calls(site.root("app1"))[-1] == [
        "logs", "--timestamps", "--since", "7200s", "--tail", "1", "app1-cb"]

    result = ops(hosts["netns"], *stack, "logs", "db", "--since", "10m")
    assert result.returncode == 0, result.stderr
    assert [line.split(" [")[1] if " [" in line else line for line in
            result.stdout.splitlines()] == ["11] ERROR:  a recent one",
                                            "db | \tSTATEMENT:  select 1"]
    result = ops(hosts["netns"], *stack, "logs", "db")
    assert "an old line" in result.stdout and result.stdout.startswith("db | ")
    assert "Never-Print-Me" not in result.stdout

    result = ops(hosts["netns"], *stack, "logs", "nope")
    assert result.returncode == 2
    assert "no host nope in the stack (hosts: db, app1, app2, proxy)" in result.stderr


def test_logs_follow_until_interrupted(site, hosts, tmp_path):
    pins = {**hosts["keys"], "10.78.0.23": hosts["keys"][HOSTS["app1"]]}  # no sshd there
    stack = _stack_file(tmp_path / "Pulumi.more.yaml", site, pins, extra_app=True)
    command = ["ip", "netns", "exec", hosts["netns"], sys.executable, "-m", "components.ops",
               "--stack-file", str(stack), "logs", "app1", "app3", "-f", "-n", "1"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True,
                               stderr=subprocess.PIPE, start_new_session=True)
    seen, errors = [], []
    try:
        # interrupted once app1's later line and app3's refusal are both out (on a busy
        # machine app3's ssh may say it after app1's lines: an interrupt stops it unsaid)
        deadline = time.monotonic() + 60
        while not ("later" in "".join(seen) and "unreachable" in "".join(errors)) \
                and time.monotonic() < deadline:
            ready, _, _ = select.select([process.stdout, process.stderr], [], [], 1)
            for stream, lines in ((process.stdout, seen), (process.stderr, errors)):
                if stream in ready:
                    lines.append(stream.readline())
        os.killpg(process.pid, signal.SIGINT)
        # both pipes drained while it stops (its ssh sessions are given 5 s each to end)
        rest, rest_errors = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, (seen, rest, errors, rest_errors)
    assert seen[:2] == ["app1 | 2026-11-20T10:00:03.000000001Z app1 third\n",
                        "app1 | 2026-11-20T10:00:09.000000001Z app1 later\n"]
    assert "".join(errors) + rest_errors == (
        "djscale ops: app3 (10.78.0.23:22): unreachable: ssh: connect to host 10.78.0.23 "
        "port 22: Connection refused\n")
    assert docker_calls(site.root("app1"))[-1] == [
        "logs", "--timestamps", "--tail", "1", "--follow", "app1-cb"]


def test_exec_and_manage_run_the_current_release_with_the_env_file(site, hosts):
    stack = ["--stack-file", str(hosts["stack"])]
    result = ops(hosts["netns"], *stack, "exec", "app2", "--", "python", "-c",
                 "print('a b')", stdin="data on stdin\n")
    assert result.returncode == 0, result.stderr
    ran = json.loads(result.stdout)
    assert ran == {"image": B, "command": ["python", "-c", "print('a b')"],
                   "stdin": "data on stdin\n", "tty": False, "options": [
                       "--rm", "--interactive", "--env-file", "/etc/djscale/app.env",
                       "--volume", "/etc/djscale/db-ca.pem:/etc/djscale/db-ca.pem:ro",
                       "--label", "djscale.oneoff=ops"]}
    assert docker_calls(site.root("app2"))[-2] == [
        "container", "inspect", "--format", "{{.Image}}", "djscale-app-a"]

    result = ops(hosts["netns"], *stack, "manage", "changepassword", "admin")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["command"] == ["python", "manage.py", "changepassword",
                                                    "admin"]
    assert docker_calls(site.root("app1"))[-1][0] == "run"  # the first app server

    result = ops(hosts["netns"], *stack, "exec", "app1", "--", "exit-with", "3")
    assert result.returncode == 3  # the command's status

    result = ops(hosts["netns"], *stack, "exec", "db", "--on-host", "--", "cat",
                 "/var/lib/djscale/backup/last")
    assert result.returncode == 0 and result.stdout.startswith("time=2026-11-20T03:00:00Z\n")

    result = ops(hosts["netns"], *stack, "exec", "db", "--", "ls")
    assert result.returncode == 2 and "db is not an app server" in result.stderr
    result = ops(hosts["netns"], *stack, "manage")
    assert result.returncode == 2 and "manage needs a command" in result.stderr


def test_a_terminal_gets_a_terminal(site, hosts):
    """With the operator's terminal attached: ssh -tt and docker run --tty."""
    main, secondary = pty.openpty()
    command = ["ip", "netns", "exec", hosts["netns"], sys.executable, "-m", "components.ops",
               "--stack-file", str(hosts["stack"]), "manage", "shell"]
    process = subprocess.Popen(command, cwd=ROOT, stdin=secondary, stdout=secondary,
                               stderr=secondary, start_new_session=True)
    os.close(secondary)
    output = b""
    deadline = time.monotonic() + 60
    try:
        while process.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.5)
            if ready:
                try:
                    output += os.read(main, 65536)
                except OSError:
                    break
            if b'"tty": true' in output and b"}" in output.split(b'"tty"')[-1]:
                break
        os.write(main, b"\x04")  # end of input
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(main)
    # the stand-in docker's record of the run (a pty may add lines after it: ^D's echo,
    # ssh's "Connection closed")
    records = [line for line in output.decode(errors="replace").splitlines()
               if line.lstrip().startswith("{") and '"tty"' in line]
    assert records, output
    ran = json.loads(records[-1].strip())
    assert ran["tty"] is True and "--tty" in ran["options"], output


def test_a_host_that_refuses_or_hangs_is_named_within_the_bound(site, hosts, tmp_path):
    pins = {**hosts["keys"], "10.78.0.23": hosts["keys"][HOSTS["app1"]]}  # no sshd there
    stack = _stack_file(tmp_path / "Pulumi.more.yaml", site, pins, extra_app=True)
    started = time.monotonic()
    result = ops(hosts["netns"], "--stack-file", str(stack), "--connect-timeout", "3",
                 "status")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "djscale ops: app3 (10.78.0.23:22): unreachable: ssh: connect to host 10.78.0.23 "
        "port 22: Connection refused"]
    assert "app3   10.78.0.23:22  NOT REACHED" in result.stdout
    result = ops(hosts["netns"], "--stack-file", str(stack), "logs")
    assert result.returncode == 1 and "app3 (10.78.0.23:22): unreachable" in result.stderr
    assert "app1 first" in result.stdout  # the others' lines still come
    result = ops(hosts["netns"], "--stack-file", str(stack), "exec", "app3", "--", "true")
    assert result.returncode == 255
    assert "djscale ops: app3 (10.78.0.23:22): unreachable" in result.stderr

    write_state(site.root("app2"), {"hang": True})
    started = time.monotonic()
    result = ops(hosts["netns"], "--stack-file", str(hosts["stack"]), "--timeout", "4",
                 "status")
    assert time.monotonic() - started < 30
    assert result.returncode == 1
    assert result.stderr == "djscale ops: app2 (10.78.0.22:2222): no answer within 4s\n"
    result = ops(hosts["netns"], "--stack-file", str(hosts["stack"]), "--timeout", "4", "logs")
    assert "djscale ops: app2 (10.78.0.22:2222): no answer within 4s" in result.stderr


def test_hosts_behind_a_bastion(site, tmp_path):
    """The operator reaches only the bastion; every command goes through it, with its host
    key pinned too."""
    operator = site.netns("op")
    inside = site.netns("in", *HOSTS.values())
    site.link(operator, "10.78.1.1", inside, "10.78.1.5")
    _host_states(site)
    bastion = site.serve(inside, "bastion", "10.78.1.5")
    keys = {address: site.serve(inside, name, address, 2222 if name == "app2" else 22)
            for name, address in HOSTS.items()}
    stack = _stack_file(tmp_path / "Pulumi.far.yaml", site, {**keys, "10.78.1.5": bastion},
                        ssh={"bastion": {"address": "10.78.1.5"}})
    direct = subprocess.run(["ip", "netns", "exec", operator, "ssh-keyscan", "-T", "2",
                             HOSTS["app1"]], capture_output=True, text=True)
    assert direct.stdout == ""  # not reachable from the operator's side
    result = ops(operator, "--stack-file", str(stack), "status")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" reachable\n") == 4
    log = site.logs["bastion"].read_text()
    assert log.count("Accepted publickey for deploy") >= 4
    for name, address in HOSTS.items():  # each host reached through the bastion (-W)
        port = 2222 if name == "app2" else 22
        assert f"target {address} port {port}" in log, (name, log[-3000:])
    result = ops(operator, "--stack-file", str(stack), "logs", "app2")
    assert result.stdout == "app2 | 2026-11-20T10:00:02.000000001Z app2 second\n"

    # the key from the environment works the same (the stack file then names none)
    raw = yaml.safe_load(stack.read_text())
    del raw["config"]["djscale:ssh"]["privateKeyPath"]
    raw["config"]["djscale:sshPrivateKey"] = {"secure": "v1:placeholder"}
    stack.write_text(yaml.safe_dump(raw))
    result = ops(operator, "--stack-file", str(stack), "logs", "app2")
    assert result.returncode == 2 and "no SSH key for the stack" in result.stderr
    result = ops(operator, "--stack-file", str(stack), "logs", "app2",
                 env={KEY_ENV: site.client_key.read_text()})
    assert result.returncode == 0, result.stderr
    result = ops(operator, "--stack-file", str(stack), "logs", "app2",
                 env={KEY_ENV: "not a key"})
    assert result.returncode == 2 and "ssh-add refused the key" in result.stderr
    assert "not a key" not in result.stderr  # the key is never shown


def test_an_interrupt_handed_to_a_reader_thread_still_stops_a_stream():
    """The kernel may deliver the operator's SIGINT to any thread; Python runs the handler
    only in the main thread, once it wakes. `logs -f` streams from hosts that never end, so
    a main thread blocked in a plain join never woke (CI once hung here): it must wake on
    its own and raise KeyboardInterrupt, stopping every ssh."""
    import threading

    from components.ops.session import Session
    from components.ops.stack import OpsHost

    class Local(Session):  # the streams are local processes that never end
        env = dict(os.environ)

        def argv(self, host, remote, *, tty=False):
            return ["sleep", "60"]

    host = OpsHost("app1", "app", None, {"host": "10.0.0.21", "port": 22})
    session = Local([host], "unused")
    before = set(threading.enumerate())

    def interrupt_a_reader():
        time.sleep(0.5)
        reader = next(t for t in threading.enumerate()
                      if t not in before and t is not threading.current_thread())
        signal.pthread_kill(reader.ident, signal.SIGINT)

    started = time.monotonic()
    threading.Thread(target=interrupt_a_reader, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        session.stream([(host, "ignored")], lambda host, line: None)
    assert time.monotonic() - started < 60  # stopped it: did not wait for its end
