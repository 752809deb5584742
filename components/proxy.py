"""ProxyHost: nginx load-balancing the app servers, with a Let's Encrypt certificate.

What the proxy receives is its plan (components/plans/proxy.py); this component supplies
the port each app server's release runs on (their start steps' output) and waits for every
start: nginx switches to a release, and a new app server joins the upstream, only once it
is healthy. `upstream_switched` are the steps after which nginx routes to the new slots and
to exactly the stack's app servers (the app servers then retire their old containers, the
database forgets the servers that left).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import pulumi

from components.apply import PlanResources
from components.config import StackConfig
from components.plans import proxy_plan
from components.plans.proxy import slot_port_value
from components.remote import SshAccess


@dataclass(frozen=True)
class ProxyHostArgs:
    cfg: StackConfig
    ssh: SshAccess
    app_slot_ports: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    app_starts: Sequence[pulumi.Resource] = field(default_factory=tuple)


class ProxyHost(pulumi.ComponentResource):
    def __init__(self, name: str, args: ProxyHostArgs,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("djscale:index:ProxyHost", name, None, opts)
        cfg = args.cfg
        values = {slot_port_value(name): port for name, port in args.app_slot_ports.items()}
        steps = PlanResources(self, proxy_plan(cfg), ssh=args.ssh, host=cfg.proxy,
                              values=values, peers={"@app-starts": list(args.app_starts)}).apply()

        self.container = steps["nginx"]
        # the release switch (each server's live slot) and the TLS config, what nginx serves
        # once there is a certificate (every deploy but a first one's bootstrap): the servers
        self.upstream_switched = [steps["upstream-slots"], steps["nginx-tls-conf"]]
        self.renewal = steps["renew-enable"]
        self.public_address = pulumi.Output.from_input(cfg.proxy.address)
        self.private_address = pulumi.Output.from_input(cfg.proxy.private_address)
        self.url = steps["nginx-tls-conf"].urn.apply(lambda _: f"https://{cfg.domain}/")
        self.register_outputs({
            "publicAddress": self.public_address,
            "privateAddress": self.private_address,
            "url": self.url,
        })
