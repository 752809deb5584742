"""What each host receives, as data: one plan per host, the only source.

    items.py        the item types (File, Step, Upload, Teardown)
    database.py     the database host's plan
    app_server.py   an app server's plan (the first one also runs the release)
    proxy.py        the proxy's plan
    docker_host.py  the opening app servers and the proxy share
    describe.py     the inspect listing and the README table, from the plans

The components turn plans into resources with one loop (components/apply.py); the inspect
command (`python -m components.render`) writes the same plans. Nothing here imports pulumi.
"""
from __future__ import annotations

from components.config import StackConfig

from .app_server import app_server_plan
from .database import database_plan
from .items import HostPlan
from .proxy import proxy_plan


def stack_plans(cfg: StackConfig) -> list[HostPlan]:
    """Every host of the stack, in deploy order (no database when it is another stack's)."""
    plans = [database_plan(cfg)] if cfg.database.host is not None else []
    plans += [app_server_plan(cfg, host, runs_release=index == 0)
              for index, host in enumerate(cfg.app_servers)]
    return plans + [proxy_plan(cfg)]


__all__ = ["HostPlan", "app_server_plan", "database_plan", "proxy_plan", "stack_plans"]
