"""The reachability matrix, every cell from real sockets: a TCP connect from the source's
own address (inside its container), bounded to a few seconds.

"closed" is only meaningful if something listens: each closed cell also checks that the
service listens on that host and that an allowed source gets through."""
from __future__ import annotations

import concurrent.futures
import socket

from . import layout

APP_PORT = layout.APP_PORT
DB_PORT = 5432


def _cells(bed):
    """(source, destination role, port, expected open?) for every cell of the matrix."""
    cells = [("client", "proxy", 80, True), ("client", "proxy", 443, True),
             ("client", "db", DB_PORT, False), ("proxy", "db", DB_PORT, False)]
    for app in bed.apps:
        cells += [("client", app, APP_PORT, False), ("proxy", app, APP_PORT, True),
                  ("db", app, APP_PORT, False), (app, "db", DB_PORT, True)]
        cells += [(other, app, APP_PORT, False) for other in bed.apps if other != app]
    roles = list(bed.roles)
    for i, role in enumerate(roles):  # SSH: only from the admin range (the machine)
        cells.append(("client", role, 22, False))
        cells.append((roles[(i + 1) % len(roles)], role, 22, False))  # nor from a peer
    return cells


def test_every_cell_of_the_reachability_matrix(bed, deployed):
    cells = _cells(bed)
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda c: bed.tcp_open(c[0], bed.address(c[1]), c[2]), cells))
    wrong = []
    for (src, dst, port, expected), got in zip(cells, results):
        if got != expected:
            wrong.append(f"{src} -> {dst}:{port} is {'open' if got else 'closed'}, "
                         f"expected {'open' if expected else 'closed'}")
    assert not wrong, "\n".join(wrong)


def test_closed_ports_have_listeners(bed, deployed):
    """The closed cells are closed by the firewall, not for want of a service."""
    assert bed.listening("db", DB_PORT)
    for app in bed.apps:
        assert bed.listening(app, APP_PORT), app  # Docker's published port on the host
    for role in bed.roles:
        assert bed.listening(role, 22), role


def test_ssh_is_open_from_the_admin_range(bed, deployed):
    for role, address in bed.roles.items():
        with socket.create_connection((address, 22), timeout=5) as sock:  # the machine
            assert sock.recv(64).startswith(b"SSH-2.0-"), role
        assert bed.ssh(role, "echo ok").stdout.strip() == "ok"


def test_the_app_container_is_not_reachable_by_routing_to_its_bridge_address(bed, deployed):
    """A neighbour on the private network routes to the container's own address through
    the app host (Docker enables forwarding): the DOCKER-USER block drops it too; the
    proxy, through the published port, still gets through."""
    for app in bed.apps:
        inner = bed.ssh(app, "sudo docker inspect -f "
                        "'{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "
                        f"{bed.app_container(app)}").stdout.strip()
        assert inner, f"{app}: no app container address"
        bed.run_in("client", f"ip route replace {inner}/32 via {bed.address(app)}")
        try:
            assert not bed.tcp_open("client", inner, APP_PORT), f"{app}: {inner} reachable"
        finally:
            bed.run_in("client", f"ip route del {inner}/32", check=False)
        assert bed.tcp_open("proxy", bed.address(app), APP_PORT), app
