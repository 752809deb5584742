"""Containers do not reach the cloud metadata service (issue 9, item 8, egress), on the bed.

A stand-in metadata service: 169.254.169.254 on the client container, HTTP on port 80, and a
route to it through the client on each Docker host, as a cloud machine routes it to the
hypervisor. "Fails" is then meaningful: the host itself (root) reaches it. From inside the app
container, the certbot container (both on Docker's bridge: DOCKER-USER) and the nginx
container as its workers' user (host network: the proxy's output, matched by owner) the
connection fails, the link-local chain's DROP counter grows, and egress elsewhere works.

Written for the bed; run with `pytest -m testbed tests/testbed` (not run where this was
written: the bed's engine and hosts were in use)."""
from __future__ import annotations

import re
import shlex

import pytest

from components.render.nginx import NGINX_CONTAINER_NAME

from . import layout

METADATA = "169.254.169.254"
S3 = (layout.SERVICE_ADDRESSES["s3"], layout.S3_PORT)


@pytest.fixture
def metadata_service(bed, deployed):
    client = layout.SERVICE_ADDRESSES["client"]
    docker_hosts = [*bed.apps, "proxy"]
    bed.run_in("client", f"ip addr add {METADATA}/32 dev eth0 && "
                         f"(nohup python3 -m http.server 80 --bind {METADATA} "
                         ">/dev/null 2>&1 & echo $! > /tmp/metadata.pid)")
    try:
        for role in docker_hosts:
            bed.run_in(role, f"ip route replace {METADATA}/32 via {client}")
        for role in docker_hosts:  # the host itself, as root: the service is there
            assert bed.tcp_open(role, METADATA, 80), f"{role}: the stand-in does not answer"
        yield
    finally:
        for role in docker_hosts:
            bed.run_in(role, f"ip route del {METADATA}/32", check=False)
        bed.run_in("client", f"kill $(cat /tmp/metadata.pid); ip addr del {METADATA}/32 dev eth0",
                   check=False)


def _connect(address: str, port: int) -> str:
    """Python that exits 0 when a TCP connection opens within 3 s."""
    return shlex.quote(f"import socket; socket.create_connection(({address!r}, {port}), 3)")


def _drops(bed, role: str) -> int:
    saved = bed.sudo(role, "iptables-save -c -t filter").stdout
    match = re.search(r"^\[(\d+):\d+\] -A DJSCALE-LINK-LOCAL -j DROP$", saved, re.M)
    assert match, f"{role}: no link-local chain"
    return int(match.group(1))


def test_the_app_container_does_not_reach_the_metadata_service(bed, metadata_service):
    for app in bed.apps:
        dropped = _drops(bed, app)
        run = f"docker exec {bed.app_container(app)} python3 -c "
        assert bed.sudo(app, run + _connect(METADATA, 80), check=False).returncode != 0, app
        assert _drops(bed, app) > dropped, app
        assert bed.sudo(app, run + _connect(*S3), check=False).returncode == 0, app


def test_the_certbot_container_does_not_reach_the_metadata_service(bed, metadata_service):
    image = shlex.quote(bed.state.images["certbot"])
    run = f"docker run --rm --entrypoint python3 {image} -c "
    dropped = _drops(bed, "proxy")
    assert bed.sudo("proxy", run + _connect(METADATA, 80), check=False).returncode != 0
    assert _drops(bed, "proxy") > dropped
    assert bed.sudo("proxy", run + _connect(*S3), check=False).returncode == 0


def test_nginx_workers_do_not_reach_the_metadata_service(bed, metadata_service):
    """As the uid nginx's workers run as (read from the running workers), inside the nginx
    container: its network is the host's, so the proxy's OUTPUT rule is what decides."""
    uid = bed.sudo("proxy", "for p in /proc/[0-9]*; do "
                            "if tr '\\0' ' ' < $p/cmdline 2>/dev/null | grep -q '^nginx: worker'; "
                            "then stat -c %u $p; break; fi; done").stdout.strip()
    assert uid.isdigit() and uid != "0", f"nginx workers run as {uid!r}"
    dropped = _drops(bed, "proxy")

    def connects(address: str, port: int) -> bool:
        script = shlex.quote(f"exec 3<>/dev/tcp/{address}/{port}")
        return bed.sudo("proxy", f"docker exec -u {uid} {NGINX_CONTAINER_NAME} "
                                 f"timeout 3 bash -c {script}", check=False).returncode == 0

    assert not connects(METADATA, 80)
    assert _drops(bed, "proxy") > dropped
    assert connects(layout.app_address(1), layout.APP_PORT)  # its upstreams
    assert connects(*S3)                                     # and elsewhere
