"""Firewall renderers: exact text; the DOCKER-USER block through the real iptables-restore in
a fresh network namespace; the whole ufw script run for real in a network + mount namespace
with a private /etc/ufw, twice (the second run must change nothing)."""
from __future__ import annotations

import subprocess
import time

import pytest

from components.render import firewall
from components.render.firewall import (Allow, app_rules, database_rules,
                                        proxy_rules, render_after_rules,
                                        render_docker_user_block, render_ufw_script)
from tests.render.conftest import assert_golden, check_shell, make_config, replace
from tests.render.netns import UfwSandbox, connects, in_netns, user_input_accepts

APPS = ["10.0.0.21", "10.0.0.22"]
PROXY = "10.0.0.30"


def test_database_rules(cfg):
    assert database_rules(cfg, APPS).ufw_rules() == [
        "allow from 198.51.100.0/24 to any port 22 proto tcp",
        "allow from 192.0.2.7 to any port 22 proto tcp",
        "allow from 10.0.0.21 to any port 5432 proto tcp",
        "allow from 10.0.0.22 to any port 5432 proto tcp",
    ]
    assert database_rules(cfg, APPS).docker_published is None
    assert database_rules(cfg, APPS).ssh_port == 22


def test_no_admin_network_is_refused(cfg):
    with pytest.raises(ValueError, match="adminCidrs"):
        proxy_rules(replace(cfg, firewall=replace(cfg.firewall, admin_cidrs=())))


def test_app_rules_use_the_hosts_own_ssh_port(cfg):
    app1 = replace(cfg.app_servers[0], ssh_port=2200)
    rules = app_rules(cfg, PROXY, host=app1)
    assert rules.ufw_rules() == [
        "allow from 198.51.100.0/24 to any port 2200 proto tcp",
        "allow from 192.0.2.7 to any port 2200 proto tcp",
        "allow from 10.0.0.30 to any port 8000 proto tcp",
        "allow from 10.0.0.30 to any port 8001 proto tcp",  # the other slot (blue/green)
    ]
    assert rules.docker_published == (Allow(8000, PROXY), Allow(8001, PROXY))
    assert rules.ssh_port == 2200


def test_proxy_rules(cfg):
    rules = proxy_rules(cfg)
    assert rules.ufw_rules() == [
        "allow from 198.51.100.0/24 to any port 2222 proto tcp",
        "allow from 192.0.2.7 to any port 2222 proto tcp",
        "allow 80/tcp",
        "allow 443/tcp",
    ]
    assert rules.docker_published == ()


def test_ipv6_admin_networks_are_ssh_rules_like_the_others(cfg):
    cfg = replace(cfg, firewall=replace(cfg.firewall,
                                        admin_cidrs=("198.51.100.0/24", "2001:db8:1::/48")))
    assert proxy_rules(cfg).ufw_rules()[:2] == [
        "allow from 198.51.100.0/24 to any port 2222 proto tcp",
        "allow from 2001:db8:1::/48 to any port 2222 proto tcp",
    ]


@pytest.mark.parametrize("anywhere", ["0.0.0.0/0", "::/0"])
def test_an_admin_network_of_everything_is_one_rule_from_anywhere(cfg, anywhere):
    """ufw shows a 0.0.0.0/0 source as `allow 22/tcp`: as a source, the script would take its
    own rule for a stranger on the next run and delete it (see the real run below)."""
    cfg = replace(cfg, firewall=replace(cfg.firewall,
                                        admin_cidrs=("198.51.100.0/24", anywhere)))
    assert database_rules(cfg, APPS).ufw_rules() == [
        "allow 22/tcp",
        "allow from 10.0.0.21 to any port 5432 proto tcp",
        "allow from 10.0.0.22 to any port 5432 proto tcp",
    ]


def test_sources_with_host_bits_are_refused():
    with pytest.raises(ValueError):
        Allow(22, "198.51.100.7/24")


def test_docker_user_block_text():
    assert render_docker_user_block({8000: ["10.0.0.30", "10.0.0.4/32"]}) == """\
# BEGIN djscale
# managed by djscale, do not edit: this block, between the markers, is replaced on every deploy.
# Docker-published ports are DNATed and reach containers through FORWARD, never INPUT, so
# ufw's own rules do not see them. Docker jumps from FORWARD to DOCKER-USER first: here NEW
# connections from anywhere but a Docker bridge are dropped, except the allowed sources to
# the allowed published ports (matched on the port before DNAT, --ctorigdstport).
# Containers do not reach link-local addresses (169.254.0.0/16: the cloud metadata service,
# which hands out credentials), DNS and NTP excepted. That jump comes first: it matches only
# what containers send to those addresses (replies to a container are addressed to the
# container), and it also cuts a connection opened before this block was loaded.
*filter
:DOCKER-USER - [0:0]
:DJSCALE-LINK-LOCAL - [0:0]
-A DJSCALE-LINK-LOCAL -p udp -m multiport --dports 53,123 -j RETURN
-A DJSCALE-LINK-LOCAL -p tcp -m multiport --dports 53 -j RETURN
-A DJSCALE-LINK-LOCAL -j DROP
-A DOCKER-USER -d 169.254.0.0/16 -i docker0 -j DJSCALE-LINK-LOCAL
-A DOCKER-USER -d 169.254.0.0/16 -i br-+ -j DJSCALE-LINK-LOCAL
-A DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
-A DOCKER-USER -i docker0 -j RETURN
-A DOCKER-USER -i br-+ -j RETURN
-A DOCKER-USER -s 10.0.0.4/32 -p tcp -m conntrack --ctstate NEW --ctorigdstport 8000 --ctdir ORIGINAL -j RETURN
-A DOCKER-USER -s 10.0.0.30/32 -p tcp -m conntrack --ctstate NEW --ctorigdstport 8000 --ctdir ORIGINAL -j RETURN
-A DOCKER-USER -m conntrack --ctstate NEW -j DROP
-A DOCKER-USER -j RETURN
COMMIT
# END djscale
"""


def test_a_host_with_host_network_containers_matches_their_sockets_on_output():
    """nginx on the proxy uses the host's network: its traffic is the host's OUTPUT."""
    plain = render_docker_user_block({})
    block = render_docker_user_block({}, host_network_containers=True)
    added = ("# A container with the host's network (nginx) sends from the host itself: OUTPUT, "
             "not\n# FORWARD, and no interface tells it apart. Its workers never run as root: "
             "sockets not owned\n# by root go through the same chain (ufw empties "
             "ufw-after-output on every reload).\n-A ufw-after-output -d 169.254.0.0/16 "
             "-m owner ! --uid-owner 0 -j DJSCALE-LINK-LOCAL\n")
    assert block == plain.replace("COMMIT\n", added + "COMMIT\n")
    assert firewall.docker_user_block(proxy_rules(make_config())) == render_docker_user_block(
        {}, host_network_containers=True)
    assert "ufw-after-output" not in firewall.docker_user_block(app_rules(make_config(), PROXY))


def test_after_rules_block_is_appended_then_replaced_in_place():
    block1 = render_docker_user_block({8000: ["10.0.0.30"]})
    block2 = render_docker_user_block({8000: ["10.0.0.31"]})
    original = "*filter\n:ufw-after-input - [0:0]\nCOMMIT"  # no final newline
    once = render_after_rules(original, block1)
    assert once == "*filter\n:ufw-after-input - [0:0]\nCOMMIT\n" + block1
    assert render_after_rules(once, block1) == once
    twice = render_after_rules(once + "# a local rule\n", block2)
    assert twice == "*filter\n:ufw-after-input - [0:0]\nCOMMIT\n# a local rule\n" + block2


@pytest.mark.parametrize("role", ["database", "app", "proxy"])
def test_ufw_scripts(cfg, role, tmp_path):
    rules = {"database": database_rules(cfg, APPS), "app": app_rules(cfg, PROXY),
             "proxy": proxy_rules(cfg)}[role]
    script = render_ufw_script(rules)
    assert_golden(f"ufw-{role}.sh", script)
    check_shell(script, tmp_path)


# --- real iptables / ufw ----------------------------------------------------------------



def test_docker_user_block_loads_in_iptables(netns):
    block = render_docker_user_block({8000: ["10.0.0.30"]})
    assert in_netns(netns, "iptables-restore", "--test", input=block).returncode == 0
    applied = in_netns(netns, "iptables-restore", "--noflush", input=block)
    assert applied.returncode == 0, applied.stderr
    chain = in_netns(netns, "iptables", "-S", "DOCKER-USER").stdout
    assert chain == """\
-N DOCKER-USER
-A DOCKER-USER -d 169.254.0.0/16 -i docker0 -j DJSCALE-LINK-LOCAL
-A DOCKER-USER -d 169.254.0.0/16 -i br-+ -j DJSCALE-LINK-LOCAL
-A DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
-A DOCKER-USER -i docker0 -j RETURN
-A DOCKER-USER -i br-+ -j RETURN
-A DOCKER-USER -s 10.0.0.30/32 -p tcp -m conntrack --ctstate NEW --ctorigdstport 8000 --ctdir ORIGINAL -j RETURN
-A DOCKER-USER -m conntrack --ctstate NEW -j DROP
-A DOCKER-USER -j RETURN
"""
    # Loading it again replaces the chain's rules instead of adding a second copy.
    assert in_netns(netns, "iptables-restore", "--noflush", input=block).returncode == 0
    assert in_netns(netns, "iptables", "-S", "DOCKER-USER").stdout == chain


def test_ufw_script_on_an_app_host_for_real(tmp_path, netns, sshd_stand_in):
    cfg = make_config()
    sshd_stand_in(22)
    sandbox = UfwSandbox(tmp_path, netns)
    # A host someone set up by hand: SSH and the app port open to all, an old djscale block.
    stale_block = render_docker_user_block({8000: ["10.0.0.99"]})
    after_rules = (sandbox.etc / "after.rules").read_text() + stale_block + "# local\n"
    (sandbox.etc / "after.rules").write_text(after_rules)
    seeded = sandbox.run("ufw allow 22/tcp && ufw allow 8000 && "
                         "ufw allow from 10.0.0.99 to any port 8000 proto tcp comment old")
    assert seeded.returncode == 0, seeded.stderr

    script = render_ufw_script(app_rules(cfg, PROXY, host=cfg.app_servers[0]))
    first = sandbox.step(script)
    assert first.returncode == 0, first.stderr
    assert "djscale: ufw delete: allow 22/tcp" in first.stdout
    assert "djscale: ufw delete: allow from 10.0.0.99 to any port 8000 proto tcp" in first.stdout

    shown = sandbox.run("ufw show added").stdout.splitlines()[1:]
    assert shown == ["ufw allow from 198.51.100.0/24 to any port 22 proto tcp",
                     "ufw allow from 192.0.2.7 to any port 22 proto tcp",
                     "ufw allow from 10.0.0.30 to any port 8000 proto tcp",
                     "ufw allow from 10.0.0.30 to any port 8001 proto tcp"]
    assert user_input_accepts(netns) == [
        "-A ufw-user-input -s 198.51.100.0/24 -p tcp -m tcp --dport 22 -j ACCEPT",
        "-A ufw-user-input -s 192.0.2.7/32 -p tcp -m tcp --dport 22 -j ACCEPT",
        "-A ufw-user-input -s 10.0.0.30/32 -p tcp -m tcp --dport 8000 -j ACCEPT",
        "-A ufw-user-input -s 10.0.0.30/32 -p tcp -m tcp --dport 8001 -j ACCEPT",
    ]
    assert user_input_accepts(netns, "ip6tables") == []
    policies = in_netns(netns, "iptables", "-S").stdout.splitlines()
    assert "-P INPUT DROP" in policies and "-P OUTPUT ACCEPT" in policies

    block = render_docker_user_block({8000: [PROXY], 8001: [PROXY]})
    assert (sandbox.etc / "after.rules").read_text() == render_after_rules(after_rules, block)
    docker_user = in_netns(netns, "iptables", "-S", "DOCKER-USER").stdout.splitlines()
    assert docker_user[6] == ("-A DOCKER-USER -s 10.0.0.30/32 -p tcp -m conntrack --ctstate NEW "
                              "--ctorigdstport 8000 --ctdir ORIGINAL -j RETURN")
    assert not any("10.0.0.99" in rule for rule in docker_user)

    before = (sandbox.etc / "user.rules").read_text(), (sandbox.etc / "after.rules").read_text()
    second = sandbox.step(script)
    assert second.returncode == 0, second.stderr
    assert "djscale: ufw" not in second.stdout and "updated" not in second.stdout
    assert ((sandbox.etc / "user.rules").read_text(),
            (sandbox.etc / "after.rules").read_text()) == before
    assert "Status: active" in sandbox.run("ufw status").stdout


def test_ufw_script_refuses_an_after_rules_block_that_does_not_load(tmp_path, netns,
                                                                   sshd_stand_in):
    """A jump to a chain that does not exist passes `iptables-restore --test` (nf_tables)
    but fails `ufw reload` and the next boot: the script loads the new after.rules with
    ufw's own init in a scratch network namespace first, and changes nothing."""
    cfg = make_config()
    sshd_stand_in(22)
    sandbox = UfwSandbox(tmp_path, netns)
    assert sandbox.step(render_ufw_script(app_rules(cfg, PROXY))).returncode == 0
    files, tables = sandbox.files(), sandbox.tables()

    script = render_ufw_script(app_rules(cfg, "10.0.0.31"))  # a changed block...
    broken = script.replace("-A DOCKER-USER -j RETURN", "-A DOCKER-USER -j NO-SUCH-CHAIN")
    assert broken != script  # ...that jumps nowhere
    if "nf_tables" in subprocess.run(["iptables", "-V"], capture_output=True,
                                     text=True).stdout:
        block = render_docker_user_block({8000: ["10.0.0.31"]}).replace(
            "-j RETURN\nCOMMIT", "-j NO-SUCH-CHAIN\nCOMMIT")
        assert in_netns(netns, "iptables-restore", "--test", input=block).returncode == 0
    result = sandbox.step(broken)
    assert result.returncode == 1
    assert "djscale: refusing to change the firewall: the new /etc/ufw/after.rules does not " \
           "load" in result.stderr
    assert "djscale: ufw" not in result.stdout  # no rule was touched either
    assert (sandbox.files(), sandbox.tables()) == (files, tables)


def test_ufw_script_refuses_when_sshd_does_not_listen_on_the_ssh_port(tmp_path, netns,
                                                                      sshd_stand_in):
    sshd_stand_in(22)  # the proxy's SSH port in the stack is 2222
    proxy = UfwSandbox(tmp_path, netns)
    result = proxy.step(render_ufw_script(proxy_rules(make_config())))
    assert result.returncode == 1
    assert "nothing listens on SSH port 2222" in result.stderr
    assert proxy.run("ufw status").stdout.strip() == "Status: inactive"
    assert proxy.run("ufw show added").stdout.splitlines()[1:] == ["(None)"]


def test_ufw_script_on_a_proxy_host_for_real(tmp_path, netns, sshd_stand_in):
    cfg = make_config()
    sshd_stand_in(2222)
    proxy = UfwSandbox(tmp_path, netns)
    result = proxy.step(render_ufw_script(proxy_rules(cfg)))
    assert result.returncode == 0, result.stderr
    assert user_input_accepts(netns) == [
        "-A ufw-user-input -s 198.51.100.0/24 -p tcp -m tcp --dport 2222 -j ACCEPT",
        "-A ufw-user-input -s 192.0.2.7/32 -p tcp -m tcp --dport 2222 -j ACCEPT",
        "-A ufw-user-input -p tcp -m tcp --dport 80 -j ACCEPT",
        "-A ufw-user-input -p tcp -m tcp --dport 443 -j ACCEPT",
    ]
    assert user_input_accepts(netns, "ip6tables") == [
        "-A ufw6-user-input -p tcp -m tcp --dport 80 -j ACCEPT",
        "-A ufw6-user-input -p tcp -m tcp --dport 443 -j ACCEPT",
    ]
    docker_user = in_netns(netns, "iptables", "-S", "DOCKER-USER").stdout
    assert "-A DOCKER-USER -m conntrack --ctstate NEW -j DROP" in docker_user
    assert "--ctorigdstport" not in docker_user


@pytest.mark.parametrize("admin_cidrs, v4_ssh, v6_ssh", [
    (("0.0.0.0/0",), ["-A ufw-user-input -p tcp -m tcp --dport 22 -j ACCEPT"],
     ["-A ufw6-user-input -p tcp -m tcp --dport 22 -j ACCEPT"]),
    (("198.51.100.0/24", "2001:db8:1::/48"),
     ["-A ufw-user-input -s 198.51.100.0/24 -p tcp -m tcp --dport 22 -j ACCEPT"],
     ["-A ufw6-user-input -s 2001:db8:1::/48 -p tcp -m tcp --dport 22 -j ACCEPT"]),
])
def test_ssh_rules_survive_a_second_run_for_real(tmp_path, netns, sshd_stand_in, admin_cidrs,
                                                  v4_ssh, v6_ssh):
    """Open to all, and IPv6 admin networks: the second run finds exactly its own rules
    (before, a 0.0.0.0/0 source was added, shown as `allow 22/tcp`, and deleted as a
    stranger by the next run: SSH closed)."""
    cfg = make_config()
    cfg = replace(cfg, firewall=replace(cfg.firewall, admin_cidrs=admin_cidrs))
    sshd_stand_in(22)
    db = UfwSandbox(tmp_path, netns)
    script = render_ufw_script(database_rules(cfg, APPS))
    for run in ("first", "second"):
        result = db.step(script, ssh_client="198.51.100.5 40000 22")
        assert result.returncode == 0, (run, result.stderr)
        accepts = user_input_accepts(netns)
        assert [r for r in accepts if "--dport 22 " in r] == v4_ssh, run
        assert user_input_accepts(netns, "ip6tables") == v6_ssh, run
    assert "djscale: ufw" not in result.stdout  # the second run changed nothing


def test_ufw_script_on_a_database_host_for_real(tmp_path, netns, sshd_stand_in):
    cfg = make_config()
    sshd_stand_in(22)
    db = UfwSandbox(tmp_path, netns)
    result = db.step(render_ufw_script(database_rules(cfg, APPS)))
    assert result.returncode == 0, result.stderr
    assert user_input_accepts(netns) == [
        "-A ufw-user-input -s 198.51.100.0/24 -p tcp -m tcp --dport 22 -j ACCEPT",
        "-A ufw-user-input -s 192.0.2.7/32 -p tcp -m tcp --dport 22 -j ACCEPT",
        "-A ufw-user-input -s 10.0.0.21/32 -p tcp -m tcp --dport 5432 -j ACCEPT",
        "-A ufw-user-input -s 10.0.0.22/32 -p tcp -m tcp --dport 5432 -j ACCEPT",
    ]
    assert in_netns(netns, "iptables", "-S", "DOCKER-USER").returncode != 0  # no block


def test_a_client_that_left_keeps_its_rule_until_the_step_that_prunes(tmp_path, netns,
                                                                       sshd_stand_in):
    """The database's `firewall` step only adds (prune=False); `firewall-revoke`, after
    nginx's switch, deletes the rule of the app server that left."""
    cfg = make_config()
    sshd_stand_in(22)
    db = UfwSandbox(tmp_path, netns)
    assert db.step(render_ufw_script(database_rules(cfg, APPS))).returncode == 0
    one_left = database_rules(cfg, APPS[:1])
    admit = db.step(render_ufw_script(one_left, prune=False))
    assert admit.returncode == 0, admit.stderr
    assert ("djscale: ufw kept until the proxy no longer routes to it: allow from 10.0.0.22 "
            "to any port 5432 proto tcp") in admit.stdout
    assert "-A ufw-user-input -s 10.0.0.22/32 -p tcp -m tcp --dport 5432 -j ACCEPT" in \
        user_input_accepts(netns)
    revoke = db.step(render_ufw_script(one_left))
    assert revoke.returncode == 0, revoke.stderr
    assert "djscale: ufw delete: allow from 10.0.0.22 to any port 5432 proto tcp" in \
        revoke.stdout
    assert [r for r in user_input_accepts(netns) if "5432" in r] == [
        "-A ufw-user-input -s 10.0.0.21/32 -p tcp -m tcp --dport 5432 -j ACCEPT"]


# --- the DOCKER-USER block against real forwarded traffic ---------------------------------

def test_docker_user_block_lets_only_the_proxy_reach_the_published_port(namespaces):
    """An app host as Docker sets it up (docker0 bridge, DNAT of published ports, FORWARD
    through DOCKER-USER), a container behind it, and a private network with the proxy
    (10.0.0.30), another host (10.0.0.40) and the database (10.0.0.10)."""
    lan, app, ctr = namespaces.add("lan"), namespaces.add("app"), namespaces.add("ctr")
    setup = [
        (app, f"ip link add eth0 type veth peer name lan0 netns {lan}"),
        (lan, "ip addr add 10.0.0.30/24 dev lan0 && ip addr add 10.0.0.40/24 dev lan0 && "
              "ip addr add 10.0.0.10/24 dev lan0 && ip link set lan0 up"),
        (app, "ip addr add 10.0.0.21/24 dev eth0 && ip link set eth0 up && "
              "ip link add docker0 type bridge && ip addr add 172.17.0.1/16 dev docker0 && "
              f"ip link set docker0 up && ip link add vethc type veth peer name eth0 netns {ctr} "
              "&& ip link set vethc master docker0 && ip link set vethc up && "
              "sysctl -qw net.ipv4.ip_forward=1"),
        (ctr, "ip addr add 172.17.0.2/16 dev eth0 && ip link set eth0 up && "
              "ip route add default via 172.17.0.1"),
    ]
    for ns, command in setup:
        result = namespaces.sh(ns, command)
        assert result.returncode == 0, (command, result.stderr)
    block = render_docker_user_block({8000: [PROXY]})
    assert in_netns(app, "iptables-restore", "--noflush", input=block).returncode == 0
    # What dockerd adds for `-p 10.0.0.21:8000:8000` (and, here, `-p 10.0.0.21:8001:8000`).
    docker_rules = """
iptables -t nat -A PREROUTING -d 10.0.0.21 -p tcp --dport 8000 -j DNAT --to-destination 172.17.0.2:8000
iptables -t nat -A PREROUTING -d 10.0.0.21 -p tcp --dport 8001 -j DNAT --to-destination 172.17.0.2:8000
iptables -t nat -A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
iptables -P FORWARD DROP
iptables -A FORWARD -j DOCKER-USER
iptables -A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
iptables -A FORWARD -d 172.17.0.2 ! -i docker0 -o docker0 -p tcp --dport 8000 -j ACCEPT
iptables -A FORWARD -i docker0 ! -o docker0 -j ACCEPT
"""
    result = namespaces.sh(app, docker_rules.strip().replace("\n", " && "))
    assert result.returncode == 0, result.stderr
    namespaces.start(ctr, "python3", "-m", "http.server", "8000", "--bind", "172.17.0.2")
    namespaces.start(lan, "python3", "-m", "http.server", "5432", "--bind", "10.0.0.10")
    for _ in range(100):
        if connects(namespaces, app, "172.17.0.1", "172.17.0.2:8000", 1) and \
                connects(namespaces, lan, "10.0.0.10", "10.0.0.10:5432", 1):
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the stand-in container and database did not start")

    assert connects(namespaces, lan, PROXY, "10.0.0.21:8000")
    assert not connects(namespaces, lan, "10.0.0.40", "10.0.0.21:8000", 2)
    # The match is on the published port before DNAT: another published port is closed even
    # for the proxy, though it leads to the same container port.
    assert not connects(namespaces, lan, PROXY, "10.0.0.21:8001", 2)
    # The container still opens connections out (to the database).
    assert connects(namespaces, ctr, "172.17.0.2", "10.0.0.10:5432")
