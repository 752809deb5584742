"""An app server's drain before Docker stops (components/render/drain.py): the unit checked
by systemd itself and ordered before Docker at a shutdown; the script run for real in a
private network namespace with real iptables: `drain` refuses new connections to the app's
ports (once, however often it runs), waits while the app holds a connection and not after,
`open` takes them again; without Docker there is nothing to drain. On the bed:
`python3 -m bench.reboot` (README, Benchmarks)."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from components.render import drain
from tests.render.conftest import check_shell
from tests.render.netns import Namespaces, in_netns
from tests.render.stubs import make_stubs

PORTS = (18000, 18001)


def test_the_unit_stops_before_docker_and_systemd_accepts_it(tmp_path):
    unit = drain.render_drain_service()
    assert unit == """\
# managed by djscale, do not edit
# Stopped just before Docker (units stop in the reverse order of After=), at a shutdown or a
# reboot and, through PartOf=, when docker.service stops or restarts: the app server leaves
# the proxy's rotation and its requests in flight finish before the app container stops.
# Wanted by docker.service too, so a Docker started again (by hand, or by its socket) starts
# it, which takes connections again.
[Unit]
Description=djscale: drain the app server before Docker stops its app
Documentation=file:///usr/local/sbin/djscale-app-drain
After=docker.service
PartOf=docker.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/djscale-app-drain open
ExecStop=/usr/local/sbin/djscale-app-drain drain
TimeoutStopSec=45

[Install]
WantedBy=multi-user.target docker.service
"""
    path = tmp_path / "djscale-app-drain.service"
    path.write_text(drain.render_drain_service(script_path="/bin/true"))
    result = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True,
                            text=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_the_scripts_pass_shellcheck(tmp_path):
    for script in (drain.render_drain_script(PORTS, "djscale-app", 8000),
                   drain.render_enable_drain_script(), drain.render_disable_drain_script()):
        check_shell(script, tmp_path)
    assert "systemctl enable djscale-app-drain.service\n" in drain.render_enable_drain_script()
    assert "systemctl start djscale-app-drain.service\n" in drain.render_enable_drain_script()
    disable = drain.render_disable_drain_script()
    assert "systemctl disable --now djscale-app-drain.service" in disable
    assert "/usr/local/sbin/djscale-app-drain open" in disable


# --- for real, in a network namespace ----------------------------------------------------
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")


@pytest.fixture
def host(tmp_path):
    """An app server as a namespace with Docker's DOCKER-USER chain; `docker` stood in: one
    app container, whose network namespace is the one of `holder` (a process that listens
    on the container port and, while `connected` exists, holds one connection to it)."""
    spaces = Namespaces()
    try:
        name = spaces.add("app")
        in_netns(name, "iptables", "-w", "-N", "DOCKER-USER", check=True)
        in_netns(name, "iptables", "-w", "-A", "DOCKER-USER", "-j", "RETURN", check=True)
        connected = tmp_path / "connected"
        holder = spaces.start(name, sys.executable, "-c", f"""
import os, socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 8000)); s.listen(8)
c = socket.create_connection(("127.0.0.1", 8000)); a, _ = s.accept()
open({str(connected)!r}, "w").close()
print("up", flush=True)
while os.path.exists({str(connected)!r}):
    time.sleep(0.05)
c.close(); a.close()
time.sleep(600)
""", stdout=subprocess.PIPE, text=True)
        assert holder.stdout.readline() == "up\n"
        bin_dir = tmp_path / "bin"
        make_stubs(bin_dir, {"docker": f"""
case "$*" in
    "container ls --quiet --filter label=djscale.container=djscale-app") echo c0ffee ;;
    "container inspect --format {{{{.State.Pid}}}} c0ffee") echo {holder.pid} ;;
    *) exit 1 ;;
esac"""})
        script = tmp_path / "djscale-app-drain"
        script.write_text(drain.render_drain_script(PORTS, "djscale-app", 8000,
                                                    drain_within=60))
        script.chmod(0o755)

        def run(action: str, **kw) -> subprocess.CompletedProcess:
            env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}",
                       STUB_LOG=str(tmp_path / "calls.log"))
            return subprocess.run(["ip", "netns", "exec", name, str(script), action],
                                  capture_output=True, text=True, env=env, timeout=120, **kw)

        yield name, run, connected
    finally:
        spaces.close()


def _refusals(ns: str) -> list[str]:
    return [line for line in in_netns(ns, "iptables", "-w", "-S", "DOCKER-USER").stdout.splitlines()
            if "djscale-drain" in line]


@needs_root
def test_drain_refuses_new_connections_and_waits_for_the_ones_in_flight(host):
    ns, run, connected = host
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(done=run("drain")))
    worker.start()  # the stand-in app holds a connection meanwhile
    deadline = time.monotonic() + 30
    while len(_refusals(ns)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    refusals = _refusals(ns)
    assert [line.split("--ctorigdstport ")[1].split()[0] for line in refusals] == \
        ["18001", "18000"], refusals  # inserted first: before Docker's own rules
    assert all("--ctstate NEW" in r and "--reject-with tcp-reset" in r for r in refusals)
    time.sleep(1)
    assert worker.is_alive()  # a connection is held: still waiting
    connected.unlink()  # the request in flight gets its answer
    worker.join(timeout=60)
    assert not worker.is_alive()  # done at the connection's end, well within the bound
    done = result["done"]
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "djscale: new connections to ports 18000 18001 refused: the proxy sends them on",
        "djscale: drained, 0 connection(s) left"]

    again = run("drain")  # again: still one refusal per port
    assert again.returncode == 0 and len(_refusals(ns)) == 2, again.stderr
    opened = run("open")
    assert opened.returncode == 0 and _refusals(ns) == [], opened.stderr
    assert opened.stdout == "djscale: new connections to the app's ports are taken\n"
    rules = in_netns(ns, "iptables", "-w", "-S", "DOCKER-USER").stdout
    assert rules == "-N DOCKER-USER\n-A DOCKER-USER -j RETURN\n"  # Docker's own, untouched


@needs_root
def test_a_refused_connection_is_reset_at_once_and_taken_again_once_open(host):
    """What nginx sees: a reset on connect (not a timeout), so it tries the next server.
    (DOCKER-USER sees the forwarded traffic of a published port; here, where client and
    listener share the namespace, the same chain is hooked into OUTPUT.)"""
    ns, run, connected = host
    connected.unlink()  # nothing in flight: the drain does not wait
    listener = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c",
                                 "import socket, time; s = socket.socket(); "
                                 f"s.bind(('127.0.0.1', {PORTS[0]})); s.listen(8); "
                                 "print('up', flush=True); time.sleep(600)"],
                                stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout.readline() == "up\n"
        in_netns(ns, "iptables", "-w", "-I", "OUTPUT", "-j", "DOCKER-USER", check=True)
        code = (f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {PORTS[0]}), "
                "3)\n    print('ok')\nexcept ConnectionRefusedError:\n    print('refused')\n"
                "except OSError:\n    print('timeout')\n")
        assert in_netns(ns, sys.executable, "-c", code).stdout.strip() == "ok"
        assert run("drain").returncode == 0
        assert in_netns(ns, sys.executable, "-c", code).stdout.strip() == "refused"
        assert run("open").returncode == 0
        assert in_netns(ns, sys.executable, "-c", code).stdout.strip() == "ok"
    finally:
        listener.kill()
        listener.wait(timeout=10)


@needs_root
def test_without_docker_there_is_nothing_to_drain(host):
    ns, run, _ = host
    in_netns(ns, "iptables", "-w", "-F", "DOCKER-USER", check=True)
    in_netns(ns, "iptables", "-w", "-X", "DOCKER-USER", check=True)
    result = run("drain")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ("djscale: no DOCKER-USER chain (Docker is not running): nothing "
                             "to drain\n")
    assert run("open").returncode == 0
    assert run("bogus").returncode == 2
