"""djscale-upstream-slots (components/upstream_slots.py), the release switch: the map it
reads and refuses, the rules it writes; then the program and its activation script for real
in a private network namespace with real sockets and real iptables: new connections go to
the live slot, an open connection stays where it is, a switch is one transaction (a client
connecting meanwhile never finds no route), a bad map leaves the old one in force, and the
upstream watcher still refuses a silent server whose connections the map rewrites. The unit
is checked by systemd itself."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from components import upstream_slots as slots
from components import upstream_watch as watch
from components.render import upstream_slots as render
from tests.render.conftest import check_shell
from tests.render.netns import Namespaces, in_netns, link_with_silent_neighbours

MAP_HEAD = render.render_slots_map([])


def test_the_map_is_one_route_per_line_and_comments_are_ignored():
    text = render.render_slots_map([("10.0.0.21", 8000, 8001), ("10.0.0.22", 8000, 8000)])
    assert text == """\
# managed by djscale, do not edit
# nginx's connections to ADDRESS:PORT go to ADDRESS:SLOT_PORT, the app server's
# live release slot (djscale-upstream-slots; read at boot by its unit)
# ADDRESS PORT SLOT_PORT
10.0.0.21 8000 8001
10.0.0.22 8000 8000
"""
    assert slots.parse_map(text) == [("10.0.0.21", 8000, 8001), ("10.0.0.22", 8000, 8000)]
    assert slots.parse_map(MAP_HEAD) == []


@pytest.mark.parametrize("line,error", [
    ("10.0.0.21 8000", "line 5: want ADDRESS PORT SLOT_PORT, got '10.0.0.21 8000'"),
    ("10.0.0.300 8000 8001", "line 5: '10.0.0.300' is not an IPv4 address"),
    ("10.0.0.21 0 8001", "line 5: port '0' is not a port (1-65535)"),
    ("10.0.0.21 8000 70000", "line 5: slot port '70000' is not a port (1-65535)"),
    ("10.0.0.21 8000 -j", "line 5: slot port '-j' is not a port (1-65535)"),
])
def test_a_bad_line_is_named(line, error):
    with pytest.raises(slots.MapError) as raised:
        slots.parse_map(MAP_HEAD + line + "\n")
    assert str(raised.value) == error


def test_a_server_routed_twice_is_refused():
    with pytest.raises(slots.MapError, match=r"line 6: 10.0.0.21:8000 is routed twice"):
        slots.parse_map(MAP_HEAD + "10.0.0.21 8000 8001\n10.0.0.21 8000 8000\n")


def test_the_chain_routes_exactly_the_map():
    assert slots.chain_rules([("10.0.0.21", 8000, 8001), ("10.0.0.22", 8000, 8000)]) == (
        "*nat\n"
        ":DJSCALE-SLOTS - [0:0]\n"
        "-A DJSCALE-SLOTS -d 10.0.0.21/32 -p tcp -m tcp --dport 8000 "
        "-j DNAT --to-destination 10.0.0.21:8001\n"
        "-A DJSCALE-SLOTS -d 10.0.0.22/32 -p tcp -m tcp --dport 8000 "
        "-j DNAT --to-destination 10.0.0.22:8000\n"
        "COMMIT\n")


def test_the_scripts_and_the_unit(tmp_path):
    for script in (render.render_activate_slots_script(False),
                   render.render_activate_slots_script(True, "djscale-nginx", "/x/nginx.conf"),
                   render.render_enable_slots_script(), render.render_disable_slots_script()):
        check_shell(script, tmp_path)
    plain = render.render_activate_slots_script(False)
    assert "nginx -s reload" not in plain and "docker" not in plain
    keepalive = render.render_activate_slots_script(True, "djscale-nginx", "/x/nginx.conf")
    assert "container=djscale-nginx\nconf=/x/nginx.conf\n" in keepalive
    assert 'docker exec "$container" nginx -s reload -c "$conf"' in keepalive
    unit = render.render_slots_service(program_path="/bin/true")
    assert "Before=docker.service\n" in unit and "WantedBy=multi-user.target\n" in unit
    path = tmp_path / "djscale-upstream-slots.service"
    path.write_text(unit.replace("/usr/bin/python3 /bin/true", "/bin/true"))
    result = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True,
                            text=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr


# --- for real, in a network namespace ----------------------------------------------------
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")
ADDRESS, SILENT, SERVICE = "10.78.0.1", "10.78.0.9", 7000
SLOT_A, SLOT_B = 7001, 7002


# Each slot answers every connection with its name, then echoes: "a" or "b".
SERVE = """
import socket, sys, threading
def serve(port, name):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(128)
    while True:
        c, _ = s.accept()
        def echo(c=c):
            c.sendall(name)
            while data := c.recv(64):
                c.sendall(data)
            c.close()
        threading.Thread(target=echo, daemon=True).start()
for port, name in ((%d, b"a"), (%d, b"b")):
    threading.Thread(target=serve, args=(port, name), daemon=True).start()
print("up", flush=True)
threading.Event().wait()
""" % (SLOT_A, SLOT_B)


@pytest.fixture
def proxy(tmp_path):
    """A proxy as a namespace: ADDRESS is its own address with both slots listening (an app
    server's two containers) and nothing on SERVICE; SILENT a neighbour that drops all."""
    spaces = Namespaces()
    try:
        name = spaces.add("proxy")
        link_with_silent_neighbours(name, ADDRESS, SILENT)
        server = spaces.start(name, sys.executable, "-c", SERVE, stdout=subprocess.PIPE,
                              text=True)
        assert server.stdout.readline() == "up\n"
        yield name, tmp_path, spaces
    finally:
        spaces.close()


def _program(ns: str, tmp_path, routes, action: str = "apply") -> subprocess.CompletedProcess:
    path = tmp_path / "upstream-slots"
    path.write_text(render.render_slots_map(routes))
    return in_netns(ns, sys.executable, slots.__file__, action, "--map", str(path))


def _slot_of_new_connection(ns: str) -> str:
    code = (f"import socket\ntry:\n    s = socket.create_connection(({ADDRESS!r}, {SERVICE}), 2)"
            "\n    print(s.recv(1).decode())\nexcept ConnectionRefusedError:\n"
            "    print('refused')\n")
    return in_netns(ns, sys.executable, "-c", code).stdout.strip()


@needs_root
def test_new_connections_go_to_the_live_slot_and_open_ones_stay(proxy):
    ns, tmp_path, spaces = proxy
    assert _slot_of_new_connection(ns) == "refused"  # no route: the service port is empty
    applied = _program(ns, tmp_path, [(ADDRESS, SERVICE, SLOT_A)])
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout == f"{ADDRESS}:{SERVICE} -> {ADDRESS}:{SLOT_A}\n"
    assert _slot_of_new_connection(ns) == "a"
    # a connection opened on slot a (nginx's, with a request in flight) ...
    held = spaces.start(
        ns, sys.executable, "-c",
        f"import socket, sys\ns = socket.create_connection(({ADDRESS!r}, {SERVICE}), 2)\n"
        "print(s.recv(1).decode(), flush=True)\nsys.stdin.readline()\n"
        "s.sendall(b'after'); print(s.recv(5).decode(), flush=True)\n",
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert held.stdout.readline() == "a\n"
    assert _program(ns, tmp_path, [(ADDRESS, SERVICE, SLOT_B)]).returncode == 0  # the switch
    assert _slot_of_new_connection(ns) == "b"
    held.stdin.write("go\n")
    held.stdin.flush()
    assert held.stdout.readline() == "after\n"  # ... finishes on slot a
    rules = in_netns(ns, "iptables", "-t", "nat", "-S").stdout
    assert rules.count("-A OUTPUT -j DJSCALE-SLOTS") == 1  # hooked once, however often applied
    assert f"--to-destination {ADDRESS}:{SLOT_B}" in rules and f":{SLOT_A}" not in rules
    shown = in_netns(ns, sys.executable, slots.__file__, "show").stdout
    assert f"-A DJSCALE-SLOTS -d {ADDRESS}/32 -p tcp -m tcp --dport {SERVICE} -j DNAT " \
           f"--to-destination {ADDRESS}:{SLOT_B}" in shown
    assert slots.routes_in_force(shown) == [(ADDRESS, SERVICE, SLOT_B)]  # what ops reads


@needs_root
def test_a_switch_is_one_transaction_a_client_never_finds_no_route(proxy):
    """Connections made while the map flips back and forth all reach a slot: at no moment
    is the chain empty (the service port itself refuses)."""
    ns, tmp_path, _ = proxy
    assert _program(ns, tmp_path, [(ADDRESS, SERVICE, SLOT_A)]).returncode == 0
    stop = tmp_path / "stop"
    code = (f"import os, socket\nseen = {{}}\n"
            f"while not os.path.exists({str(stop)!r}):\n"
            "    try:\n"
            f"        s = socket.create_connection(({ADDRESS!r}, {SERVICE}), 2)\n"
            "        got = s.recv(1).decode(); s.close()\n"
            "    except OSError as err:\n"
            "        got = type(err).__name__\n"
            "    seen[got] = seen.get(got, 0) + 1\n"
            "print(seen)\n")
    client = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", code],
                              stdout=subprocess.PIPE, text=True)
    try:
        for flip in range(20):
            slot = SLOT_B if flip % 2 == 0 else SLOT_A
            assert _program(ns, tmp_path, [(ADDRESS, SERVICE, slot)]).returncode == 0
    finally:
        stop.touch()
    seen = eval(client.communicate(timeout=60)[0])  # a dict the client printed
    assert set(seen) == {"a", "b"}, seen  # both slots served, nothing refused or reset


@needs_root
def test_a_bad_map_is_refused_and_the_routes_in_force_stay(proxy):
    ns, tmp_path, _ = proxy
    program = tmp_path / "djscale-upstream-slots"
    program.write_text(render.render_slots_program())
    staged, target = tmp_path / "upstream-slots.new", tmp_path / "upstream-slots"
    script = tmp_path / "activate.sh"
    script.write_text(render.render_activate_slots_script(
        False, program_path=str(program), staged=str(staged), target=str(target)))

    staged.write_text(render.render_slots_map([(ADDRESS, SERVICE, SLOT_B)]))
    done = in_netns(ns, "bash", str(script))
    assert done.returncode == 0, done.stderr
    assert not staged.exists() and _slot_of_new_connection(ns) == "b"

    staged.write_text(MAP_HEAD + f"{ADDRESS} {SERVICE}\n")
    refused = in_netns(ns, "bash", str(script))
    assert refused.returncode == 1
    assert f"djscale-upstream-slots: {staged}: line 5: want ADDRESS PORT SLOT_PORT" in \
        refused.stderr
    assert "djscale: the new map of release slots is refused; the old one stays" in \
        refused.stderr
    assert not staged.exists()
    assert slots.parse_map(target.read_text()) == [(ADDRESS, SERVICE, SLOT_B)]
    assert _slot_of_new_connection(ns) == "b"


@needs_root
def test_the_upstream_watcher_refuses_a_silent_server_the_map_routes(proxy):
    """The watcher's rule matches the destination nginx asked for, not the slot the nat
    rule rewrote it to: a silent server is refused at once (not a connect timeout), while
    the watcher's marked probes still reach it."""
    ns, tmp_path, spaces = proxy
    assert _program(ns, tmp_path, [(SILENT, SERVICE, SLOT_B)]).returncode == 0
    restored = in_netns(ns, "iptables-restore", "-w", "--noflush",
                        input=watch.chain_rules({(SILENT, SERVICE)}))
    assert restored.returncode == 0, restored.stderr
    assert in_netns(ns, "iptables", "-I", "OUTPUT", "1", "-j", watch.CHAIN).returncode == 0
    def connect(mark: int) -> str:
        code = (f"import socket\ns = socket.socket()\ns.settimeout(1.5)\n"
                f"s.setsockopt(socket.SOL_SOCKET, {watch.SO_MARK}, {mark})\ntry:\n"
                f"    s.connect(({SILENT!r}, {SERVICE}))\n    print('ok')\n"
                "except ConnectionRefusedError:\n    print('refused')\n"
                "except OSError:\n    print('timeout')\n")
        return in_netns(ns, sys.executable, "-c", code).stdout.strip()

    assert connect(0) == "refused"  # nginx's: at once, the request goes to the next server
    assert connect(watch.MARK) == "timeout"  # the probe's: through to the silent server
