"""`ops status`: what each host answers to its probes (remote.status_probes), as lines.

Per host: reachable or not (named with the reason), disk use; app servers: the release
running (image id, slot, port), its health and uptime, the last releases recorded and the
images held (what a rollback can pin); the proxy: nginx, the upstream nginx routes to (each
server through the map of live slots, checked against the slot the server records; the
map's rules checked to be in force), the certificate's expiry and alerts
(djscale-certificate-status); the database: PostgreSQL, the last backup's time and size.
Then which release each app server runs, against the stack's `appImage`. Lines with a
problem start with `!`; nothing here prints a secret (no environment, no file but the
djscale state files named in remote.py).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Optional, Sequence

from components.config import StackConfig
from components.render.releases import parse_records, previous_release
from components.render.upstream_slots import SLOTS_MAP_PATH
from components.upstream_slots import MapError, parse_map, routes_in_force
from components.upstream_watch import STATE_TIME_FORMAT

from .logs import parse_time
from .session import Result
from .stack import OpsHost

_SECTION = re.compile(r"^### (.+)$")
_RC = re.compile(r"^### rc (\d+)$")
_UPSTREAM_SERVER = re.compile(r"^\s*server\s+\[?([0-9a-fA-F.:]+?)\]?:(\d+)\b")


@dataclass(frozen=True)
class Probed:
    rc: int
    lines: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.rc == 0


def parse_probes(stdout: str) -> dict[str, Probed]:
    """`### name` ... `### rc N` sections (remote.probe_script) -> name: (rc, lines)."""
    found: dict[str, Probed] = {}
    name: Optional[str] = None
    lines: list[str] = []
    for line in stdout.splitlines():
        rc = _RC.match(line)
        if rc and name is not None:
            found[name] = Probed(int(rc.group(1)), tuple(lines))
            name, lines = None, []
            continue
        section = _SECTION.match(line)
        if section and not rc:
            name, lines = section.group(1), []
        elif name is not None:
            lines.append(line)
    return found


def short(image: str) -> str:
    return image[:19] if image.startswith("sha256:") else image


def span(seconds: float) -> str:
    seconds = int(max(0, seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {seconds % 60}s" if minutes else f"{seconds}s"


def size(n_bytes: float) -> str:
    value = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


@dataclass(frozen=True)
class Container:
    name: str
    image: str
    state: str
    health: str
    started: Optional[datetime]


def parse_containers(lines: Sequence[str]) -> list[Container]:
    containers = []
    for line in lines:
        words = line.split()
        if len(words) == 5:
            containers.append(Container(words[0].lstrip("/"), words[1], words[2], words[3],
                                        parse_time(words[4])))
    return containers


def _now(probes: dict[str, Probed]) -> datetime:
    """The host's own clock (uptimes and ages are measured with it)."""
    probe = probes.get("now")
    if probe and probe.ok and probe.lines and probe.lines[0].strip().isdigit():
        return datetime.fromtimestamp(int(probe.lines[0].strip()), timezone.utc)
    return datetime.now(timezone.utc)


def _container_line(container: Container, now: datetime) -> str:
    health = "" if container.health == "none" else f" {container.health}"
    if container.health == "starting":
        health += " (Docker's healthcheck has not passed yet)"
    up = (f", up {span((now - container.started).total_seconds())}"
          if container.state == "running" and container.started else "")
    return f"{container.state}{health}{up}"


def _disk(probe: Optional[Probed]) -> str:
    """`df -P -k` lines -> "/ 40% of 19.6 GiB, /var/lib/docker 12% of ..." (one per
    filesystem)."""
    if probe is None:
        return "disk: not read"
    seen, parts = set(), []
    for line in probe.lines:
        words = line.split()
        if len(words) < 6 or not words[1].isdigit() or words[0] in seen:
            continue
        seen.add(words[0])
        parts.append(f"{words[5]} {words[4]} of {size(int(words[1]) * 1024)}")
    return "disk " + (", ".join(parts) if parts else "not read")


@dataclass
class HostReport:
    host: OpsHost
    lines: list[str] = field(default_factory=list)
    problems: int = 0
    reached: bool = False
    release: Optional[str] = None  # app servers: the image id nginx's slot runs
    slot: Optional[str] = None
    upstream: Optional[list[tuple[str, int]]] = None  # the proxy: nginx's upstream servers
    # the proxy: where djscale-upstream-slots sends nginx's connections to (address, port)
    routes: dict[tuple[str, int], int] = field(default_factory=dict)

    def say(self, text: str, problem: bool = False) -> None:
        self.lines.append(("! " if problem else "  ") + text)
        self.problems += problem


def report_host(cfg: StackConfig, result: Result) -> HostReport:
    host = result.host
    report = HostReport(host)
    if not result.reached:
        report.say(result.problem(), problem=True)
        return report
    report.reached = True
    probes = parse_probes(result.stdout)
    if not probes:
        said = (result.stderr.strip().splitlines() or ["no answer to the probes"])[-1]
        report.say(f"reachable, but the probes failed: {said}", problem=True)
        return report
    now = _now(probes)
    if host.role == "app":
        _report_app(cfg, report, probes, now)
    elif host.role == "proxy":
        _report_proxy(report, probes, now)
    else:
        _report_database(report, probes, now)
    report.say(_disk(probes.get("disk")))
    return report


def _report_app(cfg: StackConfig, report: HostReport, probes: dict[str, Probed],
                now: datetime) -> None:
    slot_probe = probes.get("slot")
    slot = slot_probe.lines[0].strip() if slot_probe and slot_probe.ok and slot_probe.lines \
        else None
    containers = parse_containers(probes["containers"].lines) if "containers" in probes else []
    active = next((c for c in containers if slot and c.name.endswith(f"-{slot}")), None)
    if active is None and len(containers) == 1:
        active = containers[0]
    if active is None:
        report.say("no app release runs" + (f" (slot {slot} recorded)" if slot else ""),
                   problem=True)
    else:
        port = cfg.app.port + (1 if active.name.endswith("-b") else 0)
        report.release, report.slot = active.image, slot
        # "starting": Docker has not run its first check yet (one interval after the
        # start; the release's start step ran the same command and saw it ready) or the
        # start period is not over: not yet a problem, said as such
        healthy = active.state == "running" and active.health in ("healthy", "none",
                                                                  "starting")
        report.say(f"release {active.image} ({active.name}, port {port}): "
                   f"{_container_line(active, now)}", problem=not healthy)
    for other in containers:
        if other is not active:
            report.say(f"also {other.name}: {short(other.image)} {_container_line(other, now)}"
                       " (a release in progress, or left over)")
    records = parse_records("\n".join(probes["releases"].lines)) \
        if "releases" in probes and probes["releases"].ok else []
    held = [line.split()[0] for line in probes.get("images", Probed(1, ())).lines
            if line.startswith("sha256:")]
    if records:
        report.say("releases recorded (newest last): " + "; ".join(
            f"{r.time} {short(r.image)} {r.origin}" for r in records[-3:]))
        before = previous_release(records)
        if before:
            report.say(f"app.release previous would be {before}"
                       + ("" if before in held else " (NOT held here: pruned)"))
    else:
        report.say("no release recorded yet (/var/lib/djscale/releases)")
    if held:
        report.say("images held: " + ", ".join(short(image) for image in held))


def _report_proxy(report: HostReport, probes: dict[str, Probed], now: datetime) -> None:
    nginx = parse_containers(probes["containers"].lines) if "containers" in probes else []
    if nginx:
        healthy = nginx[0].state == "running"
        report.say(f"nginx {_container_line(nginx[0], now)}", problem=not healthy)
    else:
        report.say("nginx: no container", problem=True)
    upstream = probes.get("upstream")
    if upstream and upstream.ok:
        report.upstream = [(m.group(1), int(m.group(2))) for m in
                           (_UPSTREAM_SERVER.match(line) for line in upstream.lines) if m]
    else:
        report.say("upstream: nginx.conf not read", problem=True)
    _report_slots(report, probes.get("slots"), probes.get("slot-rules"))
    _report_watcher(report, probes.get("watcher"), now)
    certificate = probes.get("certificate")
    if certificate is None or certificate.rc == 127:
        report.say("certificate: no djscale-certificate-status on this host")
        return
    served, alerts, section = [], [], None
    for line in certificate.lines:
        if line.startswith("== "):
            section = line[3:]
        elif section == "served certificate" and line.strip():
            served.append(line.strip().removeprefix("djscale: "))
        elif line.startswith("--- ") and line.endswith(".failed"):
            alerts.append(line[4:].rsplit("/", 1)[-1].removesuffix(".failed"))
    report.say("certificate: " + ("; ".join(served) or "not read"),
               problem=certificate.rc != 0 and not alerts)
    if alerts:
        report.say("alerts: " + ", ".join(alerts) + " (sudo djscale-certificate-status)",
                   problem=True)


def _report_database(report: HostReport, probes: dict[str, Probed], now: datetime) -> None:
    postgres = probes.get("postgresql")
    state = postgres.lines[0].strip() if postgres and postgres.lines else "unknown"
    report.say(f"postgresql {state}", problem=state != "active")
    backup = probes.get("backup")
    if backup is None or backup.rc == 127:
        report.say("last backup: none recorded (/var/lib/djscale/backup/last)")
        return
    if not backup.ok or not backup.lines:
        report.say("last backup: its record could not be read", problem=True)
        return
    modified = backup.lines[0].split()[0]
    fields = dict(line.split("=", 1) for line in backup.lines[1:] if "=" in line)
    when = parse_time(fields.get("time", "")) or (
        datetime.fromtimestamp(int(modified), timezone.utc) if modified.isdigit() else None)
    parts = [when.strftime("%Y-%m-%dT%H:%M:%SZ") + f" ({span((now - when).total_seconds())}"
             " ago)" if when else "time unknown"]
    if fields.get("size", "").strip().isdigit():
        parts.append(size(int(fields["size"])))
    if fields.get("object"):
        parts.append(fields["object"].strip())
    report.say("last backup " + ", ".join(parts))


def _report_slots(report: HostReport, slots: Optional[Probed],
                  rules: Optional[Probed]) -> None:
    """The map of live release slots (djscale-upstream-slots), and whether the rules in
    force are that map (a proxy rebooted without its unit would route to app.port)."""
    if slots is None or slots.rc == 127:  # a proxy djscale set up before the map existed
        return
    try:
        routes = parse_map("\n".join(slots.lines)) if slots.ok else None
    except MapError as err:
        routes, reason = None, str(err)
    else:
        reason = "not read"
    if routes is None:
        report.say(f"release slots: {SLOTS_MAP_PATH} {reason}", problem=True)
        return
    wanted = {(address, port): slot for address, port, slot in routes}
    if rules is None:  # not asked: the map is all there is
        report.routes = wanted
        return
    # what the kernel does is the truth the upstream lines show: the rules in force, or
    # none (each server reached on nginx.conf's own port)
    in_force = {(address, port): slot for address, port, slot in
                routes_in_force("\n".join(rules.lines))} if rules.ok else {}
    if in_force != wanted:
        report.say("release slots: " + ("the rules in force are not the map" if rules.ok
                                        else "no rules in force")
                   + " (sudo systemctl restart djscale-upstream-slots)", problem=True)
    report.routes = in_force


def upstream_lines(cfg: StackConfig, proxy: HostReport,
                   apps: Sequence[HostReport]) -> list[tuple[str, bool]]:
    """(text, problem) for each upstream server nginx has, routed (the proxy's map of live
    slots) to a port checked against the slot each app server records."""
    by_address = {report.host.config.private_address: report for report in apps}
    lines = []
    upstream = proxy.upstream or []
    for address, port in upstream:
        app = by_address.get(address)
        if app is None:
            lines.append((f"upstream {address}:{port}: not an app server of the stack", True))
            continue
        if app.slot not in ("a", "b"):
            lines.append((f"upstream {address}:{port} ({app.host.name}): its slot is unknown",
                          False))
            continue
        expected = cfg.app.port + (1 if app.slot == "b" else 0)
        routed = proxy.routes.get((address, port), port)
        lines.append((f"upstream {address}:{port} ({app.host.name}, slot {app.slot}"
                      + (f", routed to {routed})" if routed != port else ")")
                      + ("" if routed == expected else f": but its slot is on port {expected}"),
                      routed != expected))
    listed = {address for address, _ in upstream}
    missing = [app.host.name for app in apps if app.host.config.private_address not in listed]
    if missing:
        lines.append(("upstream lacks " + ", ".join(missing), True))
    return lines


def render(cfg: StackConfig, results: Sequence[Result], outputs: dict,
           outputs_source: str) -> tuple[str, int]:
    """(the status text, problems found)."""
    reports = [report_host(cfg, result) for result in results]
    apps = [r for r in reports if r.host.role == "app"]
    width = max(len(r.host.name) for r in reports)
    out = []
    for report in reports:
        state = "reachable" if report.reached else "NOT REACHED"
        out.append(f"{report.host.name:<{width}}  {report.host.where}  {state}")
        if report.host.role == "proxy" and report.upstream is not None:
            for text, problem in upstream_lines(cfg, report, apps):
                report.say(text, problem)
        out += [f"{'':<{width}}{line}" for line in report.lines]
    problems = sum(report.problems for report in reports)
    deployed = outputs.get("appImage")
    out.append("")
    out.append(f"stack outputs: {outputs_source}")
    out.append(f"appImage (the release the last update gave every app server): "
               f"{deployed or 'unknown'}")
    running: dict[Optional[str], list[str]] = {}
    for app in apps:
        running.setdefault(app.release, []).append(app.host.name)
    for image, names in running.items():
        if image is None:  # said above, host by host
            out.append(f"release unknown (not reached, or none running): {', '.join(names)}")
            continue
        mark = "" if deployed is None or image == deployed else "  ! not appImage"
        out.append(f"release {image}: {', '.join(names)}{mark}")
        problems += bool(mark)
    if len(running) > 1:
        out.append("! the app servers run different releases (a rollout in progress, or one "
                   "that stopped)")
        problems += 1
    return "\n".join(out) + "\n", problems


def _report_watcher(report: HostReport, watcher: Optional[Probed], now: datetime) -> None:
    """djscale-upstream-watch's state (nginx.hostChecks): the servers it took out, and
    whether it still runs (a round a second: a state older than a minute is a stopped one)."""
    if watcher is None or watcher.rc == 127:
        report.say("upstream watcher: no state (nginx.hostChecks is false, or it never ran)")
        return
    try:
        state = json.loads("\n".join(watcher.lines))
        checked = datetime.strptime(state["checked"], STATE_TIME_FORMAT)
        out = list(state["out"])
    except (ValueError, KeyError, TypeError):
        report.say("upstream watcher: state not read", problem=True)
        return
    if (now - checked).total_seconds() > 60:
        report.say(f"upstream watcher: last round {state['checked']}, stopped? "
                   f"(systemctl status djscale-upstream-watch)", problem=True)
    for server in out:
        report.say(f"upstream {server}: out, it does not take the proxy's connections "
                   f"(djscale-upstream-watch refuses nginx's to it until it answers)",
                   problem=True)
    if not out:
        report.say("upstream watcher: every server answers")
