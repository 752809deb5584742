"""djscale-upstream-watch (components/upstream_watch.py): what it reads from nginx.conf, when
it takes a server out and puts it back, the iptables rules it writes; then the program
itself in a private network namespace with real sockets and real iptables: a silent host is
refused locally, a busy one (a listener that never accepts) stays in, none is cut off when
all fail, and nothing is left when it stops. The same with the real nginx in front:
tests/render/test_nginx_real.py."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components import upstream_watch as watch
from components.render.nginx import render_nginx_conf
from tests.render.conftest import make_config
from tests.render.netns import Namespaces, in_netns, link_with_silent_neighbours

A, B, C = ("10.0.0.21", 8000), ("10.0.0.22", 8001), ("10.0.0.23", 8000)


def test_reads_the_upstream_servers_of_the_rendered_nginx_conf_with_their_slot_ports():
    conf = render_nginx_conf(make_config(), [("10.0.0.21", 8000), ("10.0.0.22", 8001)],
                             tls=True)
    assert watch.upstream_servers(conf) == [A, B]
    # only djscale's upstream block: a server line anywhere else is not an app server
    assert watch.upstream_servers("server {\n    server 10.9.9.9:80;\n}\n") == []
    assert watch.upstream_servers("") == []


def test_a_server_is_out_after_the_failures_in_a_row_and_back_after_the_recoveries():
    tracker = watch.Tracker(failures=2, recoveries=2)
    assert tracker.observe({A: True, B: False}) == set()       # one lost probe: still in
    assert tracker.observe({A: True, B: True}) == set()
    assert tracker.observe({A: True, B: False}) == set()       # the count starts again
    assert tracker.observe({A: True, B: False}) == {B}
    assert tracker.observe({A: True, B: True}) == {B}          # one good probe: still out
    assert tracker.observe({A: True, B: False}) == {B}
    assert tracker.observe({A: True, B: True}) == {B}
    assert tracker.observe({A: True, B: True}) == set()


def test_never_every_server_and_a_server_that_left_the_upstream_is_forgotten():
    tracker = watch.Tracker(failures=1, recoveries=1)
    assert tracker.observe({A: False, B: True}) == {A}
    assert tracker.observe({A: False, B: False}) == set()      # all fail: none cut off
    assert tracker.out == {A, B}                                # but both stay counted
    assert tracker.observe({A: False, B: True}) == {A}
    # a release moved B to its other slot; A left the stack
    assert tracker.observe({("10.0.0.22", 8000): True, C: False}) == {C}
    assert tracker.out == {C} and A not in tracker.failed


def test_the_chain_refuses_exactly_the_servers_out_and_never_the_probes():
    assert watch.chain_rules({B, A}) == (
        "*filter\n"
        ":DJSCALE-UPSTREAM - [0:0]\n"
        "-A DJSCALE-UPSTREAM -p tcp -m conntrack --ctorigdst 10.0.0.21/32 --ctorigdstport 8000 "
        "--ctdir ORIGINAL -m mark ! --mark 0x646a -j REJECT --reject-with tcp-reset\n"
        "-A DJSCALE-UPSTREAM -p tcp -m conntrack --ctorigdst 10.0.0.22/32 --ctorigdstport 8001 "
        "--ctdir ORIGINAL -m mark ! --mark 0x646a -j REJECT --reject-with tcp-reset\n"
        "COMMIT\n")
    assert watch.chain_rules(set()) == "*filter\n:DJSCALE-UPSTREAM - [0:0]\nCOMMIT\n"


# --- the program, for real, in a network namespace -------------------------------------------
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")
HEALTHY, SILENT, PORT = "10.77.0.1", "10.77.0.9", 8000


@pytest.fixture
def host(tmp_path):
    """A proxy host as a namespace: HEALTHY is its own address (a listener that never
    accepts: an app busy with every worker); SILENT is a neighbour on its link whose frames
    nobody takes (packets dropped: a host that is gone)."""
    spaces = Namespaces()
    try:
        name = spaces.add("proxy")
        link_with_silent_neighbours(name, HEALTHY, SILENT, "10.77.0.8")
        # backlog only: the kernel completes handshakes, nobody accepts
        busy = ("import socket, time; s = socket.socket(); "
                "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
                f"s.bind(('0.0.0.0', {PORT})); s.listen(64); time.sleep(600)")
        spaces.start(name, sys.executable, "-c", busy)
        conf = tmp_path / "nginx.conf"
        state = tmp_path / "state.json"

        def start(servers):
            conf.write_text("upstream djscale_app {\n" + "".join(
                f"    server {a}:{p} max_fails=0;\n" for a, p in servers) + "}\n")
            return spaces.start(
                name, sys.executable, watch.__file__, "--conf", str(conf), "--state",
                str(state), "--interval", "0.2", "--timeout", "0.3",
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

        yield name, start, state
    finally:
        spaces.close()


def _connect(ns: str, address: str) -> str:
    """What an unmarked connection (nginx's) to address:PORT gets: ok, refused or timeout."""
    code = (f"import socket\ntry:\n    socket.create_connection(({address!r}, {PORT}), 1.5)\n"
            "    print('ok')\nexcept ConnectionRefusedError:\n    print('refused')\n"
            "except OSError:\n    print('timeout')\n")
    return in_netns(ns, sys.executable, "-c", code).stdout.strip()


def _state(state: Path, want, deadline: float = 15) -> dict:
    """The watcher's state once `want(state)` holds (its rounds are 0.2 s apart)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if state.exists():
            current = json.loads(state.read_text())
            if want(current):
                return current
        time.sleep(0.1)
    raise AssertionError(f"the watcher never got there: {state.read_text() if state.exists() else None}")


@needs_root
def test_a_silent_host_is_refused_on_the_proxy_and_comes_back_when_it_answers(host):
    ns, start, state = host
    assert _connect(ns, SILENT) == "timeout" and _connect(ns, HEALTHY) == "ok"
    proc = start([(HEALTHY, PORT), (SILENT, PORT)])
    _state(state, lambda s: s["out"] == [f"{SILENT}:{PORT}"])
    assert _connect(ns, SILENT) == "refused"   # at once: nginx goes on to the next server
    assert _connect(ns, HEALTHY) == "ok"       # busy (nothing accepts) yet in
    rules = in_netns(ns, "iptables", "-S").stdout
    assert "-A OUTPUT -j DJSCALE-UPSTREAM" in rules

    in_netns(ns, "ip", "addr", "add", f"{SILENT}/32", "dev", "lo", check=True)  # answers again
    _state(state, lambda s: s["out"] == [])
    assert _connect(ns, SILENT) == "ok"
    # nothing left to refuse
    assert "DJSCALE-UPSTREAM" not in in_netns(ns, "iptables", "-S").stdout

    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=10)[0]
    assert f"{SILENT}:{PORT} did not take a connection 2 times in a row" in output
    assert f"{SILENT}:{PORT} answers again" in output
    assert "DJSCALE-UPSTREAM" not in in_netns(ns, "iptables", "-S").stdout


@needs_root
def test_when_every_server_is_silent_none_is_cut_off_and_a_stop_leaves_no_rule(host):
    ns, start, state = host
    proc = start([(SILENT, PORT), ("10.77.0.8", PORT)])
    _state(state, lambda s: len(s["servers"]) == 2)
    time.sleep(1.5)  # several rounds, each past the failures needed
    assert json.loads(state.read_text())["out"] == []
    assert _connect(ns, SILENT) == "timeout"   # nginx's own timeout applies, as without it

    # a watcher killed outright: the unit's ExecStopPost (--clear) removes what it left
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    in_netns(ns, "iptables", "-N", watch.CHAIN, check=True)
    in_netns(ns, "iptables", "-I", "OUTPUT", "-j", watch.CHAIN, check=True)
    cleared = in_netns(ns, sys.executable, watch.__file__, "--clear")
    assert cleared.returncode == 0, cleared.stderr
    assert "DJSCALE-UPSTREAM" not in in_netns(ns, "iptables", "-S").stdout


@needs_root
def test_a_probe_is_a_handshake_with_the_mark_nothing_more(host):
    """The probe reports a refused port as failed at once and carries the mark the rule
    exempts (else the watcher would see its own refusal and never put a server back)."""
    ns, _, _ = host
    code = (f"import json, sys; sys.path.insert(0, {str(Path(watch.__file__).parent)!r}); "
            "import upstream_watch as w; "
            f"r = w.probe_all([({HEALTHY!r}, {PORT}), ({HEALTHY!r}, 9), ({SILENT!r}, {PORT})], "
            "2.0); print(json.dumps(sorted(r.items())))")  # room for a loaded machine
    result = in_netns(ns, sys.executable, "-c", code)
    assert json.loads(result.stdout) == [[[HEALTHY, 9], False], [[HEALTHY, PORT], True],
                                         [[SILENT, PORT], False]]
    in_netns(ns, "iptables", "-I", "OUTPUT", "-d", HEALTHY, "-p", "tcp", "--dport", str(PORT),
             "-m", "mark", "!", "--mark", hex(watch.MARK), "-j", "REJECT", "--reject-with",
             "tcp-reset", check=True)
    assert _connect(ns, HEALTHY) == "refused"
    probed = json.loads(in_netns(ns, sys.executable, "-c", code).stdout)
    assert probed[1] == [[HEALTHY, PORT], True]
