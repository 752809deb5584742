"""Host firewalls: ufw rules per role, and the DOCKER-USER block for /etc/ufw/after.rules.

Why ufw commands and not a hand-written /etc/ufw/user.rules: ufw's commands keep its rule
files and the running tables consistent across ufw versions (0.36 on Ubuntu 22.04 and
Debian 12, 0.36.2 on 24.04), and `ufw show added` prints rules in a canonical form that
`Allow.ufw_rule` reproduces, so the script changes only the difference and a re-run is a
no-op. The rule list itself is exact text, tested.

Docker-published ports bypass ufw (DNAT, then FORWARD), so app and proxy hosts also get a
DOCKER-USER block. It names no interface of the host (eth0, ens3...): traffic from Docker's
own bridges (docker0, br-+) passes, NEW traffic from anywhere else must match an allowed
(source, published port) pair or is dropped.

The same block keeps containers away from link-local addresses (169.254.0.0/16: the cloud
metadata service, which hands out the machine's credentials), DNS and NTP excepted (some
clouds serve those there). Bridged containers are matched in DOCKER-USER by their bridge;
a container with the host's network (nginx on the proxy) sends from the host itself, so on
that host sockets not owned by root are matched in ufw's output chain (see
`render_docker_user_block`).

The SSH rules are also what the ufw script checks the deployer's address against before it
changes anything (`FirewallRules.ssh_sources`).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

from components.config import HostConfig, StackConfig
from components.render.templating import render_script, render_template

BLOCK_BEGIN = "# BEGIN djscale"
BLOCK_END = "# END djscale"
AFTER_RULES_PATH = "/etc/ufw/after.rules"
ANYWHERE = ("0.0.0.0/0", "::/0")
LINK_LOCAL = "169.254.0.0/16"
# What containers may still reach at link-local addresses: DNS (udp and tcp) and NTP. GCP
# serves both on 169.254.169.254 (its VPC resolver, which Docker copies into containers'
# resolv.conf), AWS on 169.254.169.253 and .123. The metadata API itself is HTTP.
LINK_LOCAL_UDP_PORTS = (53, 123)
LINK_LOCAL_TCP_PORTS = (53,)


def _source(value: str) -> str:
    """An address or network in ufw's canonical spelling (host networks as a bare address)."""
    network = ipaddress.ip_network(value, strict=True)
    if network.num_addresses == 1:
        return str(network.network_address)
    return str(network)


@dataclass(frozen=True)
class Allow:
    """Allow NEW tcp connections to `port`, from `source` (address/CIDR) or from anywhere."""

    port: int
    source: Optional[str] = None

    def __post_init__(self):
        if not 1 <= int(self.port) <= 65535:
            raise ValueError(f"port {self.port!r} is out of range")
        if self.source is not None:
            object.__setattr__(self, "source", _source(self.source))

    def ufw_rule(self) -> str:
        """The rule as `ufw show added` prints it (without the leading `ufw `)."""
        if self.source is None:
            return f"allow {int(self.port)}/tcp"
        return f"allow from {self.source} to any port {int(self.port)} proto tcp"


@dataclass(frozen=True)
class FirewallRules:
    """Everything one host's firewall allows.

    `docker_published`: None on a host without Docker (no DOCKER-USER block); otherwise the
    (source, published port) pairs that may open connections to containers (may be empty).
    """

    allows: tuple[Allow, ...]
    docker_published: Optional[tuple[Allow, ...]] = None
    ssh_port: Optional[int] = None  # the script refuses to run unless sshd listens there
    host_network_containers: bool = False  # a container uses the host's network (nginx)

    def ufw_rules(self) -> list[str]:
        return list(dict.fromkeys(a.ufw_rule() for a in self.allows))

    def ssh_sources(self) -> list[str]:
        """The networks these rules let reach the SSH port (CIDR spelling, /32 included):
        the deployer must be inside one of them, or the script changes nothing."""
        sources: list[str] = []
        for allow in self.allows:
            if allow.port != self.ssh_port:
                continue
            for source in ANYWHERE if allow.source is None else (allow.source,):
                network = str(ipaddress.ip_network(source))
                if network not in sources:
                    sources.append(network)
        return sources


def _ssh_port(cfg: StackConfig, host: Optional[HostConfig]) -> int:
    return cfg.ssh_port_for(host) if host is not None else cfg.ssh.port


def _ssh(cfg: StackConfig, host: Optional[HostConfig]) -> list[Allow]:
    """One rule per admin network. `0.0.0.0/0` or `::/0` is one rule from anywhere (IPv4
    and IPv6): ufw shows a source of 0.0.0.0/0 as `allow 22/tcp`, the same text as the rule
    for both families, so listing it as a source would make the script delete its own
    rule as a stranger on the next comparison."""
    if not cfg.firewall.admin_cidrs:
        raise ValueError("firewall.adminCidrs is empty: the firewall would shut SSH out")
    port = _ssh_port(cfg, host)
    if any(ipaddress.ip_network(c).prefixlen == 0 for c in cfg.firewall.admin_cidrs):
        return [Allow(port)]
    return [Allow(port, cidr) for cidr in cfg.firewall.admin_cidrs]


def database_rules(cfg: StackConfig, app_private_addresses: Sequence[str]) -> FirewallRules:
    """SSH from the admin networks; PostgreSQL only from each app server."""
    allows = _ssh(cfg, cfg.database.host)
    allows += [Allow(cfg.database.port, a) for a in app_private_addresses]
    return FirewallRules(tuple(allows), ssh_port=_ssh_port(cfg, cfg.database.host))


def app_rules(cfg: StackConfig, proxy_private_address: str,
              host: Optional[HostConfig] = None) -> FirewallRules:
    """SSH from the admin networks; the app's two ports (app.port and app.port + 1: a
    release starts beside the running one) only from the proxy (ufw and DOCKER-USER).

    `host` is the app server the rules are for (its own SSH port); without it, ssh.port.
    """
    proxy = tuple(Allow(port, proxy_private_address)
                  for port in (cfg.app.port, cfg.app.port + 1))
    return FirewallRules(tuple(_ssh(cfg, host) + list(proxy)), docker_published=proxy,
                         ssh_port=_ssh_port(cfg, host))


def proxy_rules(cfg: StackConfig) -> FirewallRules:
    """SSH from the admin networks; HTTP and HTTPS from anywhere. nginx uses the host's
    network, so no container port is published: DOCKER-USER lets nothing in, and nginx's
    own traffic to link-local addresses is matched on the host's output."""
    allows = _ssh(cfg, cfg.proxy) + [Allow(80), Allow(443)]
    return FirewallRules(tuple(allows), docker_published=(), ssh_port=_ssh_port(cfg, cfg.proxy),
                         host_network_containers=True)


def render_docker_user_block(allowed_sources_by_port: Mapping[int, Sequence[str]],
                             host_network_containers: bool = False) -> str:
    """The after.rules block (markers included): the DOCKER-USER chain, and the chain that
    keeps containers from link-local addresses.

    `host_network_containers`: a container on this host uses the host's network (nginx on
    the proxy). Its packets leave through OUTPUT like the host's own, with no interface to
    tell them apart, so the block matches them by the socket's owner: anything not root.
    nginx's workers, which open every upstream and outside connection, never run as root
    (`nginx` = uid 101 in the official image, `nobody` or `www-data` in distribution
    builds: djscale's nginx.conf names no user), so any of them matches, where a uid named
    here would tie the rule to one image. The host's root services (cloud-init, the cloud's
    agents) keep the metadata service; its non-root services keep link-local DNS and NTP
    (systemd-resolved, chrony, systemd-timesyncd); any other non-root access from the proxy
    host to a link-local address is dropped. The rule sits in ufw's `ufw-after-output`,
    which ufw empties and fills again on every reload, so it is never there twice."""
    allowed = []
    for port in sorted(allowed_sources_by_port):
        for source in sorted({_source(s) for s in allowed_sources_by_port[port]},
                             key=ipaddress.ip_network):
            network = ipaddress.ip_network(source)
            if network.version != 4:
                raise ValueError(f"{source}: the DOCKER-USER block is IPv4 (iptables) only")
            allowed.append((int(Allow(port).port), str(network)))
    return render_template(
        "docker-user.rules.j2", allowed=allowed, link_local=LINK_LOCAL,
        link_local_udp_ports=",".join(str(int(p)) for p in LINK_LOCAL_UDP_PORTS),
        link_local_tcp_ports=",".join(str(int(p)) for p in LINK_LOCAL_TCP_PORTS),
        host_network_containers=bool(host_network_containers))


def docker_user_block(rules: FirewallRules) -> Optional[str]:
    """The DOCKER-USER block the ufw script writes into after.rules, or None (no Docker)."""
    if rules.docker_published is None:
        return None
    by_port: dict[int, list[str]] = {}
    for allow in rules.docker_published:
        if allow.source is None:
            raise ValueError("a published container port must name its allowed sources")
        by_port.setdefault(allow.port, []).append(allow.source)
    return render_docker_user_block(by_port, rules.host_network_containers)


def render_after_rules(existing: str, block: str) -> str:
    """`existing` after.rules with our block replaced in place, or appended at the end.

    The same edit the ufw script makes on the server (with awk), kept here for tests and
    for the inspect command.
    """
    kept, skipping = [], False
    for line in existing.splitlines():
        if line == BLOCK_BEGIN:
            skipping = True
        elif line == BLOCK_END:
            skipping = False
        elif not skipping:
            kept.append(line)
    return "".join(f"{line}\n" for line in kept) + block


def render_ufw_script(rules: FirewallRules, prune: bool = True) -> str:
    """The firewall step's script. Its `$1` is the SSH session's `$SSH_CLIENT` (the step is
    run with `ssh_client`): it changes nothing unless that address may use SSH afterwards.
    `prune=False`: rules are only added (the database's first firewall step: a client
    leaving the stack keeps its rule until the proxy no longer routes to it)."""
    return render_script("ufw.sh.j2", rules=rules.ufw_rules(),
                         docker_user_block=docker_user_block(rules), ssh_port=rules.ssh_port,
                         ssh_sources=rules.ssh_sources(), prune=prune)
