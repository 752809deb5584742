"""The opening every Docker host's plan shares (app servers and the proxy): Docker installed,
then the firewall with its DOCKER-USER block."""
from __future__ import annotations

from components.config import StackConfig
from components.render import docker_install, firewall
from components.render.firewall import AFTER_RULES_PATH, FirewallRules

from .items import Item, Step


def docker_host_items(cfg: StackConfig, rules: FirewallRules, role: str) -> list[Item]:
    block = firewall.docker_user_block(rules)
    return [
        Step("install-docker", script=docker_install.render_install_docker_script(
                 cfg.ssh.user, buildkit=role == "app"),
             source="docker_install.render_install_docker_script",
             what="distro `docker.io`, running; an upload directory owned by the SSH user"
                  + ("; BuildKit (the distro's `docker-buildx` where Docker ≥ 23 needs it)"
                     if role == "app" else "")),
        Step("firewall", after=("install-docker",), script=firewall.render_ufw_script(rules),
             ssh_client=True,
             writes=((AFTER_RULES_PATH, block, "0640"),) if block is not None else (),
             source=f"firewall.render_ufw_script({role}_rules), "
                    "firewall.docker_user_block",
             what=_firewall_summary(rules)),
    ]


def _firewall_summary(rules: FirewallRules) -> str:
    allowed = ", ".join(rules.ufw_rules())
    block = (" + DOCKER-USER block in after.rules (containers kept from link-local "
             "addresses)" if rules.docker_published is not None else "")
    return f"ufw: {allowed}{block}"
