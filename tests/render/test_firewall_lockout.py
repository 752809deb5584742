"""The firewall step cannot lock the deployer out (components/render/firewall.py,
assets/templates/ufw.sh.j2), run for real: a host namespace with ufw and a listener on its
SSH port, a LAN namespace holding the source addresses, joined by a veth link. The step
runs as a deploy runs it: its command line by the login shell (sh or bash) with sshd's
SSH_CLIENT, through a sudo that resets the environment (tests/render/netns.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from components.render.firewall import database_rules, proxy_rules, render_ufw_script
from tests.render.conftest import make_config, replace
from tests.render.netns import UfwSandbox, tcp_open, user_input_accepts

APPS = ["10.0.0.21", "10.0.0.22"]
HOST4, HOST6 = "10.0.0.21", "2001:db8::21"
ADMIN = "192.0.2.7"            # inside make_config()'s firewall.adminCidrs
OUTSIDER = "203.0.113.9"       # outside them
ADMIN6, OTHER6 = "2001:db8:1::5", "2001:db8:2::5"


@pytest.fixture
def link(namespaces):
    """(host, lan): the host at HOST4/HOST6, the LAN holding every source address."""
    host, lan = namespaces.add("host"), namespaces.add("lan")
    sources4 = [ADMIN, OUTSIDER, "198.51.100.5"]
    namespaces.setup(
        (host, f"ip link add eth0 type veth peer name lan0 netns {lan}"),
        (host, f"ip addr add {HOST4}/24 dev eth0 && ip -6 addr add {HOST6}/64 dev eth0 nodad "
               "&& ip link set eth0 up && ip route add default dev eth0 && "
               "ip -6 route add default dev eth0"),
        (lan, " && ".join([f"ip addr add {a}/32 dev lan0" for a in sources4] +
                          [f"ip -6 addr add {a}/128 dev lan0 nodad" for a in (ADMIN6, OTHER6)] +
                          ["ip link set lan0 up", "ip route add 10.0.0.0/24 dev lan0",
                           "ip -6 route add 2001:db8::/64 dev lan0"])),
    )
    return host, lan


def _admin_cidrs(*cidrs: str):
    cfg = make_config()
    return replace(cfg, firewall=replace(cfg.firewall, admin_cidrs=cidrs))


@pytest.mark.parametrize("login_shell", ["sh", "bash"])
def test_a_deployer_outside_the_admin_networks_changes_nothing(tmp_path, namespaces, link,
                                                               login_shell):
    host, lan = link
    namespaces.listen(host, 22)
    sandbox = UfwSandbox(tmp_path, host)
    # A server set up by hand: ufw on, SSH open to all.
    assert sandbox.run("ufw allow 22/tcp && ufw --force enable").returncode == 0
    files, tables = sandbox.files(), sandbox.tables()
    script = render_ufw_script(database_rules(make_config(), APPS))

    refused = sandbox.step(script, ssh_client=f"{OUTSIDER} 50522 22", login_shell=login_shell)
    assert refused.returncode == 1
    assert (f"djscale: refusing to change the firewall: this deploy connects from {OUTSIDER}, "
            "which firewall.adminCidrs (198.51.100.0/24, 192.0.2.7/32) does not include, so "
            f"SSH from it would be closed. Add {OUTSIDER} (or its network; with ssh.bastion, "
            "the bastion's address as this host sees it) to firewall.adminCidrs. "
            "Nothing was changed.\n") == refused.stderr
    assert refused.stdout == ""
    assert (sandbox.files(), sandbox.tables()) == (files, tables)
    assert tcp_open(lan, OUTSIDER, HOST4, 22)  # SSH as it was

    # From inside the admin networks the same step applies, and the outsider is out.
    applied = sandbox.step(script, ssh_client=f"{ADMIN} 50522 22", login_shell=login_shell)
    assert applied.returncode == 0, applied.stderr
    assert tcp_open(lan, ADMIN, HOST4, 22)
    assert not tcp_open(lan, OUTSIDER, HOST4, 22)


def test_without_ssh_client_the_step_changes_nothing(tmp_path, netns, sshd_stand_in):
    sshd_stand_in(22)
    sandbox = UfwSandbox(tmp_path, netns)
    files = sandbox.files()
    result = sandbox.step(render_ufw_script(database_rules(make_config(), APPS)),
                          ssh_client=None)
    assert result.returncode == 1
    assert "cannot tell where this deploy connects from" in result.stderr
    assert sandbox.files() == files
    assert sandbox.run("ufw status").stdout.strip() == "Status: inactive"


@pytest.mark.parametrize("ssh_client", ["$(touch /tmp/djscale-pwned) 1 22", "* 1 22",
                                        "10.0.0.300 1 22"])
def test_an_ssh_client_that_is_no_address_changes_nothing(tmp_path, netns, sshd_stand_in,
                                                          ssh_client):
    sshd_stand_in(22)
    sandbox = UfwSandbox(tmp_path, netns)
    result = sandbox.step(render_ufw_script(database_rules(make_config(), APPS)),
                          ssh_client=ssh_client)
    assert result.returncode == 1
    assert f"'{ssh_client.split()[0]}' (from $SSH_CLIENT) is not an IP address" in result.stderr
    assert sandbox.run("ufw status").stdout.strip() == "Status: inactive"
    assert not Path("/tmp/djscale-pwned").exists()  # the value was never run


def test_ipv6_ssh_is_closed_unless_an_ipv6_admin_network_allows_it(tmp_path, namespaces, link):
    host, lan = link
    namespaces.listen(host, 22)
    sandbox = UfwSandbox(tmp_path, host)
    ipv4_only = render_ufw_script(database_rules(make_config(), APPS))

    refused = sandbox.step(ipv4_only, ssh_client=f"{ADMIN6} 50000 22")
    assert refused.returncode == 1
    assert f"this deploy connects from {ADMIN6}, which firewall.adminCidrs" in refused.stderr
    assert sandbox.run("ufw status").stdout.strip() == "Status: inactive"

    assert sandbox.step(ipv4_only).returncode == 0  # from ADMIN, over IPv4
    assert tcp_open(lan, ADMIN, HOST4, 22)
    assert not tcp_open(lan, ADMIN6, HOST6, 22)  # default deny for IPv6 too
    assert user_input_accepts(host, "ip6tables") == []

    with_ipv6 = render_ufw_script(database_rules(_admin_cidrs(f"{ADMIN}/32", "2001:db8:1::/48"),
                                                 APPS))
    applied = sandbox.step(with_ipv6, ssh_client=f"{ADMIN6} 50000 22")
    assert applied.returncode == 0, applied.stderr
    assert user_input_accepts(host, "ip6tables") == [
        "-A ufw6-user-input -s 2001:db8:1::/48 -p tcp -m tcp --dport 22 -j ACCEPT"]
    assert tcp_open(lan, ADMIN6, HOST6, 22)
    assert not tcp_open(lan, OTHER6, HOST6, 22)
    assert tcp_open(lan, ADMIN, HOST4, 22)


def test_ipv6_is_turned_on_where_ufw_had_it_off(tmp_path, namespaces, link):
    """IPV6=no: ufw 0.36 drops all IPv6 but loopback (ufw-init-functions), the proxy's HTTP
    included. The step turns it on: then IPv6 gets the same default deny and rules."""
    host, lan = link
    for port in (2222, 80):  # the proxy's SSH port (make_config) and HTTP
        namespaces.listen(host, port)
    sandbox = UfwSandbox(tmp_path, host)
    ufw_defaults = sandbox.default / "ufw"
    ufw_defaults.write_text(ufw_defaults.read_text().replace("IPV6=yes", "IPV6=no"))
    assert sandbox.run("ufw allow 2222/tcp && ufw allow 80/tcp && ufw allow 443/tcp && "
                       "ufw --force enable").returncode == 0
    assert not tcp_open(lan, OTHER6, HOST6, 80)

    script = render_ufw_script(proxy_rules(make_config()))
    first = sandbox.step(script)
    assert first.returncode == 0, first.stderr
    assert "djscale: IPV6=yes in /etc/default/ufw" in first.stdout
    assert "\nIPV6=yes\n" in ufw_defaults.read_text()
    assert user_input_accepts(host, "ip6tables") == [
        "-A ufw6-user-input -p tcp -m tcp --dport 80 -j ACCEPT",
        "-A ufw6-user-input -p tcp -m tcp --dport 443 -j ACCEPT",
    ]
    assert tcp_open(lan, OTHER6, HOST6, 80)
    assert not tcp_open(lan, OTHER6, HOST6, 2222)
    assert tcp_open(lan, ADMIN, HOST4, 2222) and not tcp_open(lan, OUTSIDER, HOST4, 2222)

    files = sandbox.files()
    second = sandbox.step(script)
    assert second.returncode == 0, second.stderr
    assert "djscale:" not in second.stdout
    assert sandbox.files() == files
