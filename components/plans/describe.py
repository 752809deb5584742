"""The plans, for people: the inspect command's files and listing, and the README table.

Deploy-time values are shown as placeholders (`<secret:database password>`,
`<output:app image id>`), so the output is safe to share and to diff.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from components.config import StackConfig

from .items import (Container, File, HashOf, HostPlan, ImageBuild, ImagePull, Item, Step,
                    ValueOf, render_text)

SECRET_PLACEHOLDERS = {
    "db_password": "<secret:database password>",
    "secret_key": "<secret:django secret key>",
    "s3_secret_key": "<secret:static storage secret key>",
    "superuser_password": "<secret:superuser password>",
}
OUTPUT_PLACEHOLDERS = {"app_image": "<output:app image id>",
                       "nginx_image": "<output:nginx image id>"}


def inspect_values(cfg: StackConfig) -> dict[str, object]:
    """Every deploy value: known config values, placeholders for secrets and outputs."""
    db = cfg.database
    if db.host is not None:
        endpoint = {"db_host": db.private_address, "db_port": db.port, "db_name": db.name,
                    "db_user": db.user}
    else:  # another stack's outputs (database.stack): known only at deploy time
        endpoint = {name: f"<output:{db.stack} {what}>" for name, what in (
            ("db_host", "privateAddress"), ("db_port", "port"), ("db_name", "dbName"),
            ("db_user", "dbUser"))}
    return {**endpoint, **SECRET_PLACEHOLDERS, **OUTPUT_PLACEHOLDERS}


@dataclass(frozen=True)
class Written:
    """One file the inspect command writes for a host: `path` under the host's directory."""

    path: str
    content: str
    executable: bool = False


def _step_path(number: int, name: str, suffix: str = ".sh") -> str:
    return f"steps/{number:02d}-{name}{suffix}"


def host_files(plan: HostPlan, values: dict[str, object]) -> list[Written]:
    """What `python -m components.render` writes for one host, in plan order.

    Files at their server path (an earlier version of a path that a later item replaces gets
    `.<item name>` appended), scripts under steps/ numbered by plan position, containers as
    JSON under docker/."""
    last_at = {}
    for item in plan.items:
        if isinstance(item, File):
            last_at[item.shown_path] = item.name
    written: list[Written] = []
    for number, item in enumerate(plan.items, start=1):
        if isinstance(item, File):
            path = item.shown_path.lstrip("/")
            if last_at[item.shown_path] != item.name:
                path += f".{item.name}"
            written.append(Written(path, render_text(item.content, values)))
            if item.activate:
                written.append(Written(_step_path(number, f"{item.name}-activate"),
                                       item.activate, True))
        elif isinstance(item, Step):
            written.append(Written(_step_path(number, item.name),
                                   render_text(item.script, values), True))
            written += [Written(path.lstrip("/"), content) for path, content, _ in item.writes]
        elif isinstance(item, Container):
            written.append(Written(f"docker/{number:02d}-{item.name}.json",
                                   _container_json(item, values)))
    return written


def _container_json(item: Container, values: dict[str, object]) -> str:
    spec = {
        "name": item.container_name, "image": values[item.image], "restart": item.restart,
        "command": list(item.command) or None, "networkMode": item.network_mode,
        "ports": [f"{p.ip}:{p.external}->{p.internal}/tcp" for p in item.ports] or None,
        "volumes": [f"{v.host_path}:{v.container_path}{':ro' if v.read_only else ''}"
                    for v in item.volumes] or None,
        "envs": render_text(item.envs, values).splitlines() if item.envs else None,
        "healthcheck": item.healthcheck.__dict__ | {"test": list(item.healthcheck.test)}
        if item.healthcheck else None,
        "waitUntilHealthySeconds": item.wait_timeout, "stopTimeout": item.stop_timeout,
        "logOpts": dict(item.log_opts),
    }
    return json.dumps({k: v for k, v in spec.items() if v is not None}, indent=2) + "\n"


def _location(item: Item, number: int) -> str:
    if isinstance(item, File):
        return item.shown_path
    if isinstance(item, Step):
        return _step_path(number, item.name)
    if isinstance(item, Container):
        return f"container {item.container_name}"
    if isinstance(item, ImageBuild):
        return f"image {item.tag}"
    if isinstance(item, ImagePull):
        return f"image {item.reference}"
    return "docker over ssh://"


def _detail(item: Item) -> str:
    if isinstance(item, File):
        return f"{item.mode} {item.owner}" + (" (staged, checked)" if item.activate else "")
    if isinstance(item, Step):
        return f"root, stdin: {item.stdin_doc}" if item.stdin else "run as root"
    return item.kind


def reruns(item: Item) -> str:
    """When the item's resource is run (or replaced) again, in words."""
    parts = []
    for trigger in getattr(item, "triggers", ()):
        if isinstance(trigger, ValueOf):
            parts.append(f"the {trigger.name.replace('_', ' ')} changes")
        elif isinstance(trigger, HashOf):
            parts.append(f"{trigger.name} changes")
    return ", ".join(parts)


def summary(plans: list[HostPlan]) -> str:
    lines = []
    for plan in plans:
        lines.append(f"{plan.host}:")
        for number, item in enumerate(plan.items, start=1):
            after = f"after {', '.join(item.after)}" if item.after else "first"
            lines.append(f"  {number:02d} {item.name:<17} {_location(item, number):<50} "
                         f"{_detail(item):<28} {after}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- README

TABLE_BEGIN = ("<!-- BEGIN plan table: generated from components/plans/ by "
               "`python -m components.docs --write` -->")
TABLE_END = "<!-- END plan table -->"


def _what(item: Item) -> str:
    if isinstance(item, File):
        where = f"`{item.shown_path}` ({item.mode}"
        where += f", staged as `{item.path}`)" if item.activate else ")"
        return f"{where}: {item.what}"
    if isinstance(item, Step) and item.stdin:
        return f"{item.what} (stdin: {item.stdin_doc})"
    return item.what


def readme_table(plans: list[HostPlan]) -> str:
    """One row per item of the database host, the first app server, one more app server
    (the items the first one alone has are marked) and the proxy."""
    apps = [p for p in plans if p.role == "app"]
    shown = [p for p in plans if p.role != "app" or p is apps[0]]
    only_first = set()
    if len(apps) > 1:
        only_first = {i.name for i in apps[0].items} - {i.name for i in apps[1].items}
    rows = ["| Host | Resource | Kind | What | Waits for | Re-runs when | Rendered by |",
            "|---|---|---|---|---|---|---|"]
    for plan in shown:
        host = "appK" if plan.role == "app" else plan.host
        for item in plan.items:
            label = f"{host} (first only)" if item.name in only_first else host
            rows.append("| " + " | ".join([
                label, f"`{host}-{item.name}`", item.kind, _what(item),
                ", ".join(_peer(a, host) for a in item.after) or "—",
                reruns(item) or ("its content changes" if isinstance(item, (File, Step))
                                 else "its inputs change"),
                f"`{item.source}`" if item.source else "—"]) + " |")
    return "\n".join(rows) + "\n"


def _peer(name: str, host: str) -> str:
    peers = {"@release": "app1-release", "@previous": "app(K-1)-container",
             "@app-containers": "every appK-container"}
    return peers.get(name, f"{host}-{name}")
