"""ProxyHost: nginx load-balancing the app servers, with a Let's Encrypt certificate.

What the proxy receives is its plan (components/plans/proxy.py); this component supplies the
peers it waits for: every app server's container, so that a new app server joins the
upstream only once it is healthy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import pulumi

from components.apply import PlanResources
from components.config import StackConfig
from components.plans import proxy_plan
from components.remote import SshAccess


@dataclass(frozen=True)
class ProxyHostArgs:
    cfg: StackConfig
    ssh: SshAccess
    app_containers: Sequence[pulumi.Resource] = field(default_factory=tuple)


class ProxyHost(pulumi.ComponentResource):
    def __init__(self, name: str, args: ProxyHostArgs,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("djscale:index:ProxyHost", name, None, opts)
        cfg = args.cfg
        steps = PlanResources(self, proxy_plan(cfg), ssh=args.ssh, host=cfg.proxy, values={},
                              peers={"@app-containers": list(args.app_containers)}).apply()

        self.container = steps["nginx"]
        self.renewal = steps["renew-enable"]
        self.public_address = pulumi.Output.from_input(cfg.proxy.address)
        self.private_address = pulumi.Output.from_input(cfg.proxy.private_address)
        self.url = steps["nginx-tls-conf"].urn.apply(lambda _: f"https://{cfg.domain}/")
        self.register_outputs({
            "publicAddress": self.public_address,
            "privateAddress": self.private_address,
            "url": self.url,
        })
