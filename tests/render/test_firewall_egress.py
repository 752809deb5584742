"""Containers on app and proxy hosts do not reach link-local addresses (the cloud metadata
service), run for real (components/render/firewall.py, assets/templates/docker-user.rules.j2):
a "metadata service" at 169.254.169.254 (HTTP on 80, DNS's TCP port 53) on a LAN namespace,
reached by a host namespace through a gateway, as on a cloud machine. "Closed" is meaningful:
the host itself (root) reaches the same listener."""
from __future__ import annotations

import re

from components.render.firewall import (app_rules, docker_user_block, proxy_rules,
                                        render_ufw_script)
from tests.render.conftest import make_config
from tests.render.netns import UfwSandbox, in_netns, tcp_open

METADATA = "169.254.169.254"
PROXY, APP, DB, GATEWAY = "10.0.0.30", "10.0.0.21", "10.0.0.10", "10.0.0.1"
NGINX_UID, NOBODY = 101, 65534  # the official image's nginx workers; Debian builds' default


def _lan_with_metadata(namespaces, host: str, host_address: str, others: list[str]) -> str:
    """A LAN namespace: the gateway, the metadata address and `others`, with listeners."""
    lan = namespaces.add("lan")
    namespaces.setup(
        (host, f"ip link add eth0 type veth peer name lan0 netns {lan}"),
        (lan, f"ip addr add {GATEWAY}/24 dev lan0 && ip addr add {METADATA}/32 dev lan0 && " +
              "".join(f"ip addr add {a}/32 dev lan0 && " for a in others) +
              "ip link set lan0 up"),
        (host, f"ip addr add {host_address}/24 dev eth0 && ip link set eth0 up && "
               f"ip route add {METADATA}/32 via {GATEWAY}"),
    )
    for port in (80, 53):
        namespaces.listen(lan, port, METADATA)
    return lan


def _drops(ns: str) -> int:
    """Packets the link-local chain has dropped."""
    saved = in_netns(ns, "iptables-save", "-c", "-t", "filter").stdout
    match = re.search(r"^\[(\d+):\d+\] -A DJSCALE-LINK-LOCAL -j DROP$", saved, re.M)
    assert match, saved
    return int(match.group(1))


def test_a_bridged_container_does_not_reach_the_metadata_service(namespaces):
    """An app host as Docker sets it up (docker0, FORWARD through DOCKER-USER, NAT out), with
    the app host's DOCKER-USER block loaded; a container behind docker0."""
    app, ctr = namespaces.add("app"), namespaces.add("ctr")
    lan = _lan_with_metadata(namespaces, app, APP, [DB])
    namespaces.setup(
        (app, "ip link add docker0 type bridge && ip addr add 172.17.0.1/16 dev docker0 && "
              f"ip link set docker0 up && ip link add vethc type veth peer name eth0 netns {ctr} "
              "&& ip link set vethc master docker0 && ip link set vethc up && "
              "sysctl -qw net.ipv4.ip_forward=1"),
        (ctr, "ip addr add 172.17.0.2/16 dev eth0 && ip link set eth0 up && "
              "ip route add default via 172.17.0.1"),
    )
    block = docker_user_block(app_rules(make_config(), PROXY))
    loaded = in_netns(app, "iptables-restore", "--noflush", input=block)
    assert loaded.returncode == 0, loaded.stderr
    namespaces.setup((app, " && ".join([  # what dockerd adds
        "iptables -t nat -A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE",
        "iptables -P FORWARD DROP", "iptables -A FORWARD -j DOCKER-USER",
        "iptables -A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "iptables -A FORWARD -i docker0 ! -o docker0 -j ACCEPT"])))
    namespaces.listen(lan, 5432, DB)

    assert tcp_open(app, None, METADATA, 80)  # the host itself: the listener is there
    assert not tcp_open(ctr, None, METADATA, 80)
    assert _drops(app) >= 1
    assert tcp_open(ctr, None, METADATA, 53)  # DNS: GCP's resolver lives there
    assert tcp_open(ctr, None, DB, 5432)      # other egress as before


def test_nginx_on_the_host_network_does_not_reach_the_metadata_service(namespaces, tmp_path):
    """The proxy's firewall step, run for real: its block matches the host's OUTPUT by the
    socket's owner. nginx's workers (uid 101, or nobody) are dropped; root is not."""
    proxy = namespaces.add("proxy")
    lan = _lan_with_metadata(namespaces, proxy, PROXY, [APP])
    namespaces.listen(lan, 8000, APP)
    namespaces.listen(proxy, 2222)  # sshd: make_config()'s proxy SSH port
    sandbox = UfwSandbox(tmp_path, proxy)
    script = render_ufw_script(proxy_rules(make_config()))
    result = sandbox.step(script)
    assert result.returncode == 0, result.stderr

    for uid in (NGINX_UID, NOBODY):
        assert not tcp_open(proxy, None, METADATA, 80, uid=uid), uid
        assert tcp_open(proxy, None, METADATA, 53, uid=uid), uid   # DNS, NTP stay
        assert tcp_open(proxy, None, APP, 8000, uid=uid), uid      # the upstreams
    assert _drops(proxy) >= 2
    assert tcp_open(proxy, None, METADATA, 80)  # root: cloud agents keep the service

    # ufw empties its chains on reload and loads after.rules again: the rule stays, once.
    for command in ("ufw reload", "true"):
        assert sandbox.run(command).returncode == 0
        assert sandbox.step(script).returncode == 0
        output = in_netns(proxy, "iptables", "-S", "ufw-after-output").stdout.splitlines()
        assert output[1:] == ["-A ufw-after-output -d 169.254.0.0/16 -m owner ! --uid-owner 0 "
                              "-j DJSCALE-LINK-LOCAL"]
    assert not tcp_open(proxy, None, METADATA, 80, uid=NGINX_UID)
