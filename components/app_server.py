"""AppServer: one server running the Django app in Docker behind gunicorn.

What the server receives is its plan (components/plans/app_server.py): Docker, the
firewall, the app's build context uploaded and the image built on the server, the env file,
the release (first server only), the app container and old images pruned. This component supplies the deploy values the plan
needs (the database endpoint, the generated secrets) and the peers it waits for: the first
server's release and the previous server's container (a rollout replaces one server at a
time, each waiting until its new container is healthy).

The container reads its environment from the env file (root-only, 0600): a changed setting
or a rotated secret changes the file's hash, which re-runs the container step, which
re-creates the container (its settings label records that hash).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pulumi

from components.apply import PlanResources
from components.config import HostConfig, StackConfig
from components.database import DatabaseEndpoint
from components.plans import app_server_plan
from components.remote import SshAccess


@dataclass(frozen=True)
class AppSecrets:
    secret_key: pulumi.Output[str]
    superuser_password: pulumi.Output[str]
    static_storage_secret_key: pulumi.Output[str]


@dataclass(frozen=True)
class AppServerArgs:
    cfg: StackConfig
    host: HostConfig
    ssh: SshAccess
    database: DatabaseEndpoint
    secrets: AppSecrets
    staging: Path  # local directory where uploads are staged (components/remote.state_dir)
    first: Optional["AppServer"] = None  # None: this is the first server, it runs the release
    previous: Optional["AppServer"] = None  # the server replaced just before this one


class AppServer(pulumi.ComponentResource):
    def __init__(self, name: str, args: AppServerArgs,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("djscale:index:AppServer", name, None, opts)
        cfg, host = args.cfg, args.host
        secrets = args.secrets
        values = {**args.database.values(), "secret_key": secrets.secret_key,
                  "s3_secret_key": secrets.static_storage_secret_key}
        if args.first is None:  # the superuser's password reaches only the first server
            values["superuser_password"] = secrets.superuser_password
        plan = app_server_plan(cfg, host, runs_release=args.first is None)
        peers = {"@release": [args.first.release] if args.first else [],
                 "@previous": [args.previous.container] if args.previous else []}
        steps = PlanResources(self, plan, ssh=args.ssh, host=host, values=values,
                              peers=peers, staging=args.staging / host.name).apply()

        self.container = steps["container"]
        self.release = steps["release"] if args.first is None else None
        self.private_address = pulumi.Output.from_input(host.private_address)
        self.image_id = steps.values["app_image"]
        self.register_outputs({
            "privateAddress": self.private_address,
            "imageId": self.image_id,
        })
