"""AppServer: one server running the Django app in Docker behind gunicorn.

What the server receives is its plan (components/plans/app_server.py). This component
supplies the deploy values the plan needs (the database endpoint, the generated secrets, the
image the first server built) and the peers it waits for: the first server's image and
release, the previous batch's starts. `finish(switched)` adds the items that wait for nginx
to route to the new release (retire the old container, prune images): the proxy is made
after the app servers, since its upstream lists the ports their releases run on.

The container reads its environment from the env file (root-only, 0600): a changed setting
or a rotated secret changes the file's hash, which starts the release anew (its settings
label records that hash).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

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
    app_secrets: pulumi.Output[dict]  # appSecrets: {name: value}


@dataclass(frozen=True)
class AppServerArgs:
    cfg: StackConfig
    host: HostConfig
    ssh: SshAccess
    database: DatabaseEndpoint
    secrets: AppSecrets
    staging: Path  # local directory where uploads are staged (components/remote.state_dir)
    first: Optional["AppServer"] = None  # None: this is the first server (build, release)
    batch_before: Sequence["AppServer"] = ()  # the rollout batch that starts before this one


class AppServer(pulumi.ComponentResource):
    def __init__(self, name: str, args: AppServerArgs,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("djscale:index:AppServer", name, None, opts)
        cfg, host, first = args.cfg, args.host, args.first
        secrets = args.secrets
        values = {**args.database.values(), "secret_key": secrets.secret_key,
                  "s3_secret_key": secrets.static_storage_secret_key,
                  "app_secrets": secrets.app_secrets,
                  "ssh_key": args.ssh.private_key}
        if first is None:  # the superuser's password reaches only the first server
            values["superuser_password"] = secrets.superuser_password
        else:  # the image the first server built, shipped here
            values["app_image"] = first.image_id
        plan = app_server_plan(cfg, host, runs_release=first is None)
        peers = {"@image": [first.image] if first else [],
                 "@release": [first.release] if first else [],
                 "@batch": [server.start for server in args.batch_before]}
        self.steps = PlanResources(self, plan, ssh=args.ssh, host=host, values=values,
                                   peers=peers, staging=args.staging / host.name).apply()

        self.image = self.steps["image"]
        self.start = self.steps["start"]
        self.release = self.steps["release"] if first is None else None
        self.host_name = host.name
        self.private_address = pulumi.Output.from_input(host.private_address)
        self.image_id = self.steps.values["app_image"]
        self.slot_port = self.steps.values["slot_port"]  # nginx's upstream port for it
        self.register_outputs({
            "privateAddress": self.private_address,
            "imageId": self.image_id,
            "slotPort": self.slot_port,
        })

    def finish(self, switched: Sequence[pulumi.Resource]) -> None:
        """The items that wait for nginx to route to every server's new slot."""
        self.steps.apply_later({"@switched": list(switched)})
