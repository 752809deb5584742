"""The plans, for people: the inspect command's files and listing, and the README table.

Deploy-time values are shown as placeholders (`<secret:database password>`,
`<output:app image id>`), so the output is safe to share and to diff.
"""
from __future__ import annotations

from dataclasses import dataclass
from components.config import StackConfig

from .items import (File, HashOf, HostPlan, Item, Local, Step, Teardown, Upload, ValueOf,
                    render_text)

SECRET_PLACEHOLDERS = {
    "db_password": "<secret:database password>",
    "secret_key": "<secret:django secret key>",
    "s3_secret_key": "<secret:static storage secret key>",
    "superuser_password": "<secret:superuser password>",
    "ssh_key": "<secret:ssh private key>",
    "backup_s3_secret_key": "<secret:backup storage secret key>",
    "backup_passphrase": "<secret:backup encryption passphrase>",
}
OUTPUT_PLACEHOLDERS = {"app_image": "<output:app image id>"}
CA_PLACEHOLDER = ("-----BEGIN CERTIFICATE-----\n<output:database certificate>\n"
                  "-----END CERTIFICATE-----\n")


def inspect_values(cfg: StackConfig) -> dict[str, object]:
    """Every deploy value: known config values, placeholders for secrets and outputs."""
    db = cfg.database
    if db.host is not None:
        endpoint = {"db_host": db.private_address, "db_port": db.port, "db_name": db.name,
                    "db_user": db.user, "db_ca_cert": CA_PLACEHOLDER}
    else:  # another stack's outputs (database.stack): known only at deploy time
        endpoint = {name: f"<output:{db.stack} {what}>" for name, what in (
            ("db_host", "privateAddress"), ("db_port", "port"), ("db_name", "dbName"),
            ("db_user", "dbUser"))}
        endpoint["db_ca_cert"] = CA_PLACEHOLDER.replace("database certificate",
                                                        f"{db.stack} dbCaCert")
    # which of its two ports a server's release runs on is known at deploy time only: the
    # listing shows app.port (the other slot is app.port + 1)
    ports = {f"port@{host.name}": cfg.app.port for host in cfg.app_servers}
    app_secrets = {name: f"<secret:appSecrets.{name}>" for name in cfg.app_secret_names}
    return {**endpoint, **SECRET_PLACEHOLDERS, **OUTPUT_PLACEHOLDERS, **ports,
            "slot_port": cfg.app.port, "app_secrets": app_secrets}


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
    `.<item name>` appended), scripts under steps/ numbered by plan position (a teardown
    script as steps/NN-<name>.sh too; a step's stdin as steps/NN-<name>.stdin), an upload as
    the list of its files."""
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
            if item.stdin is not None:  # from the placeholders (a verifier: of their text)
                written.append(Written(_step_path(number, item.name, ".stdin"),
                                       render_text(item.stdin, values)))
            written += [Written(path.lstrip("/"), content) for path, content, _ in item.writes]
        elif isinstance(item, Local):
            if item.stdin is not None:
                written.append(Written(f"local/{number:02d}-{item.name}.stdin",
                                       render_text(item.stdin, values)))
        elif isinstance(item, Teardown):
            written.append(Written(_step_path(number, item.name), item.script, True))
        elif isinstance(item, Upload):
            written.append(Written(f"uploads/{number:02d}-{item.name}.txt",
                                   "".join(f"{name}\n" for name in item.files)))
    return written


def _location(item: Item, number: int) -> str:
    if isinstance(item, File):
        return item.shown_path
    if isinstance(item, (Step, Teardown)):
        return _step_path(number, item.name)
    if isinstance(item, Upload):
        return f"{item.remote_dir}/{item.dir_name}/"
    if isinstance(item, Local):
        return f"operator: python3 -m {item.module}"
    raise TypeError(item)


def _detail(item: Item) -> str:
    if isinstance(item, File):
        return f"{item.mode} {item.owner}" + (" (staged, checked)" if item.activate else "")
    if isinstance(item, Step):
        if item.ssh_client:
            return "root, $1: $SSH_CLIENT"
        return f"root, stdin: {item.stdin_doc}" if item.stdin else "run as root"
    if isinstance(item, Teardown):
        return "root, when the host goes"
    if isinstance(item, Local):
        return "on the operator's machine"
    return f"{len(item.files)} files, SFTP"


def reruns(item: Item) -> str:
    """When the item's resource is run (or replaced) again, in words."""
    parts = []
    for trigger in getattr(item, "triggers", ()):
        if isinstance(trigger, ValueOf):
            parts.append(f"the {trigger.name.replace('_', ' ')} changes")
        elif isinstance(trigger, HashOf):
            parts.append(f"{trigger.name} changes")
    if getattr(item, "stdin", None) is not None:
        parts.append("its stdin changes")
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
                reruns(item) or _rerun_default(item),
                f"`{item.source}`" if item.source else "—"]) + " |")
    return "\n".join(rows) + "\n"


def _rerun_default(item: Item) -> str:
    if isinstance(item, Teardown):
        return "never (runs when the host leaves the stack)"
    if isinstance(item, Upload):
        return "the files change, or the address, port or pinned host key (a new machine)"
    return "its content changes"


def _peer(name: str, host: str) -> str:
    peers = {"@release": "app1-release", "@image": "app1-image",
             "@batch": "the previous batch's appK-start", "@switched": "proxy-upstream-slots, proxy-nginx-tls-conf",
             "@app-starts": "every appK-start"}
    return peers.get(name, f"{host}-{name}")
