"""The opening every Docker host's plan shares (app servers and the proxy): install Docker,
the firewall with its DOCKER-USER block, and the Docker provider that talks to the engine."""
from __future__ import annotations

from components.config import StackConfig
from components.render import docker_install, firewall
from components.render.firewall import AFTER_RULES_PATH, FirewallRules

from .items import DockerHost, Item, Step


def docker_host_items(cfg: StackConfig, rules: FirewallRules, role: str) -> list[Item]:
    block = firewall.docker_user_block(rules)
    return [
        Step("install-docker", script=docker_install.render_install_docker_script(cfg.ssh.user),
             source="docker_install.render_install_docker_script",
             what="distro `docker.io`, the SSH user in the docker group"),
        Step("firewall", after=("install-docker",), script=firewall.render_ufw_script(rules),
             writes=((AFTER_RULES_PATH, block, "0640"),) if block is not None else (),
             source=f"firewall.render_ufw_script({role}_rules), "
                    "firewall.docker_user_block",
             what=_firewall_summary(rules)),
        DockerHost("docker", after=("install-docker",),
                   what="Docker provider over `ssh://` (the engine exists only after the "
                        "install)"),
    ]


def _firewall_summary(rules: FirewallRules) -> str:
    allowed = ", ".join(rules.ufw_rules())
    block = " + DOCKER-USER block in after.rules" if rules.docker_published is not None else ""
    return f"ufw: {allowed}{block}"
