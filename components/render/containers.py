"""Long-running containers (the app on app servers, nginx on the proxy), run by a script.

`render_run_container_script(spec)` (assets/templates/run-container.sh.j2) makes the host run
exactly `spec`, whatever it ran before: the settings (every `docker run` argument, the image,
the content of the env file and of the other files it names) are hashed into a label, so any change re-creates the container and
an unchanged one is left alone; a container that never becomes ready is removed and the one
it replaced started again. `render_teardown_script` takes them away (destroy, scale-in).

Why a script and not pulumi-docker's `Container`: that resource updates `healthcheck`,
`restart`, `wait`, `must_run` and `destroy_grace_seconds` in place, and its update applies
only the restart policy and resource limits (kreuzwerker/terraform-provider-docker:
internal/provider/resource_docker_container.go, where those attributes lack ForceNew;
internal/provider/resource_docker_container_funcs.go, where resourceDockerContainerUpdate
calls ContainerUpdate with RestartPolicy and Resources only),
so a changed healthcheck never reached the container; a create whose wait failed left a
container the state did not know and every later `up` failed with "name already in use";
and its ssh:// provider needed key files on the operator's machine for destroy and refresh.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Optional

from components.render.templating import render_script

# Go templates for `docker --format`, passed as script values (the Jinja template never
# contains `{{` of its own).
_LABEL_FORMAT = '{{index .Config.Labels "djscale.settings"}}'
_STATE_FORMAT = "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}"
_ID_FORMAT = "{{.Id}}"
LOG_OPTS = (("max-size", "10m"), ("max-file", "5"))  # json-file logs: ~50 MB per container


@dataclass(frozen=True)
class Port:
    ip: str
    host_port: int
    container_port: int


@dataclass(frozen=True)
class Volume:
    host_path: str
    container_path: str
    read_only: bool = True


@dataclass(frozen=True)
class Healthcheck:
    command: str  # run by /bin/sh in the container (Docker's CMD-SHELL form)
    interval: str = "10s"
    timeout: str = "5s"
    retries: int = 3
    start_period: str = "30s"


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str  # an image id (built here) or a reference (pulled when missing)
    pull: bool = False
    ports: tuple[Port, ...] = ()
    volumes: tuple[Volume, ...] = ()
    env_file: Optional[str] = None  # root-only file on the host: secrets never in argv
    # Host files whose content is part of the settings, like the env file's: a change
    # re-creates the container (a file bind-mounted alone keeps showing the replaced inode).
    hashed_files: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    network_mode: Optional[str] = None
    healthcheck: Optional[Healthcheck] = None
    healthy_within: int = 180  # seconds until healthy (or running, without a healthcheck)
    stop_timeout: int = 10
    restart: str = "unless-stopped"
    log_opts: tuple[tuple[str, str], ...] = LOG_OPTS


def run_options(spec: ContainerSpec) -> list[tuple[str, str]]:
    """The `docker run` options of `spec` as (flag, value) pairs (besides name, labels, env
    file and image)."""
    options = [("--restart", spec.restart), ("--stop-timeout", str(int(spec.stop_timeout))),
               ("--log-driver", "json-file")]
    options += [("--log-opt", f"{key}={value}") for key, value in spec.log_opts]
    if spec.network_mode:
        options.append(("--network", spec.network_mode))
    for port in spec.ports:
        options.append(("--publish",
                        f"{port.ip}:{int(port.host_port)}:{int(port.container_port)}/tcp"))
    for volume in spec.volumes:
        options.append(("--volume", f"{volume.host_path}:{volume.container_path}"
                                    + (":ro" if volume.read_only else "")))
    health = spec.healthcheck
    if health:
        options += [("--health-cmd", health.command), ("--health-interval", health.interval),
                    ("--health-timeout", health.timeout),
                    ("--health-retries", str(int(health.retries))),
                    ("--health-start-period", health.start_period)]
    return options


def settings_hash(spec: ContainerSpec) -> str:
    """What the container's label records; the env file's hash is added on the host."""
    words = [spec.image, *(word for pair in run_options(spec) for word in pair), "--",
             *spec.command,
             f"env_file={spec.env_file or ''}"]
    if spec.hashed_files:  # (absent otherwise: running containers keep their label)
        words.append(f"hashed_files={','.join(spec.hashed_files)}")
    return hashlib.sha256(json.dumps(words).encode()).hexdigest()[:16]


def _health_values(health: Optional[Healthcheck]) -> dict:
    """What _ready.sh.j2 needs: whether there is a healthcheck, its command and timeout
    (given to Docker and to timeout(1), so one number and one unit both read alike)."""
    if health and not re.fullmatch(r"[1-9][0-9]*[smh]", health.timeout):
        raise ValueError(f"healthcheck timeout {health.timeout!r}: want a number of "
                         "seconds, minutes or hours, such as 5s")
    return {"healthcheck": health is not None,
            "health_cmd": health.command if health else "",
            "health_timeout": health.timeout if health else ""}


def render_run_container_script(spec: ContainerSpec) -> str:
    """Root script: the host runs `spec` (see the module docstring); fails, keeping the
    previous container in service, when the new one does not become ready."""
    return render_script(
        "run-container.sh.j2", name=spec.name, image=spec.image, pull=spec.pull,
        settings=settings_hash(spec), healthy_within=int(spec.healthy_within),
        stop_timeout=int(spec.stop_timeout), env_file=spec.env_file,
        hashed_files=[f for f in (spec.env_file, *spec.hashed_files) if f],
        **_health_values(spec.healthcheck), run_options=run_options(spec),
        command=list(spec.command), label_format=_LABEL_FORMAT, state_format=_STATE_FORMAT,
        id_format=_ID_FORMAT)


def render_teardown_script(name: str, stop_timeout: int = 10,
                           files: tuple[str, ...] = ()) -> str:
    """Root script for a host leaving the stack: every container of `name` (its label)
    stopped and removed, then `files` (absolute paths djscale owns) deleted."""
    for path in files:
        if not path.startswith("/etc/djscale/") and not path.startswith("/var/lib/djscale/"):
            raise ValueError(f"{path!r}: teardown deletes only djscale's own files")
    return render_script("teardown.sh.j2", name=name, stop_timeout=int(stop_timeout),
                         files=list(files))


# --- blue/green slots for the app -----------------------------------------------------------

SLOT_STATE_FILE = "/var/lib/djscale/app-slot"  # the slot nginx routes to, once switched
# one line per release put in service (components/render/releases.py reads it)
RELEASES_FILE = "/var/lib/djscale/releases"
RELEASE_ORIGINS = ("current", "previous", "pinned")
PID_FORMAT = "{{.State.Pid}}"  # for _connections.sh.j2 (retire, drain)
_IMAGE_FORMAT = "{{.Image}}"


@dataclass(frozen=True)
class SlotSpec:
    """The app on one server: `container` (its image, env file, healthcheck...; no ports),
    published on `address` at host port `ports[0]` or `ports[1]` (the two slots), to
    `container_port` inside."""

    container: ContainerSpec
    address: str
    container_port: int
    ports: tuple[int, int]
    drain_within: int = 60  # seconds to wait for the old slot's last connections
    state_file: str = SLOT_STATE_FILE
    releases_file: str = RELEASES_FILE


def render_start_slot_script(spec: SlotSpec) -> str:
    """Root script: this release in the slot nginx does not route to (unless a slot already
    runs it), healthy; prints that slot's host port. See start-slot.sh.j2."""
    container = spec.container
    return render_script(
        "start-slot.sh.j2", name=container.name, image=container.image,
        address=spec.address, container_port=int(spec.container_port),
        port_a=int(spec.ports[0]), port_b=int(spec.ports[1]), state_file=spec.state_file,
        settings=settings_hash(container), healthy_within=int(container.healthy_within),
        env_file=container.env_file, **_health_values(container.healthcheck),
        hashed_files=[f for f in (container.env_file, *container.hashed_files) if f],
        run_options=run_options(container), command=list(container.command),
        label_format=_LABEL_FORMAT, state_format=_STATE_FORMAT)


def render_retire_slot_script(spec: SlotSpec, active_port: int, origin: str = "current") -> str:
    """Root script, once nginx routes to `active_port`: the active slot recorded, its
    release appended to the record of releases (`origin`: how the stack named it, see
    components/render/releases.py), the other slot's container (and one of before slots)
    drained, stopped gracefully, removed."""
    if int(active_port) not in spec.ports:
        raise ValueError(f"{spec.container.name}: port {active_port} is neither of the app's "
                         f"ports {spec.ports[0]}, {spec.ports[1]}")
    if origin not in RELEASE_ORIGINS:
        raise ValueError(f"release origin {origin!r} is not one of {RELEASE_ORIGINS}")
    return render_script(
        "retire-slot.sh.j2", name=spec.container.name, active_port=int(active_port),
        port_a=int(spec.ports[0]), port_b=int(spec.ports[1]),
        container_port=int(spec.container_port), state_file=spec.state_file,
        drain_within=int(spec.drain_within), stop_timeout=int(spec.container.stop_timeout),
        releases_file=spec.releases_file, origin=origin, image_format=_IMAGE_FORMAT,
        pid_format=PID_FORMAT)
