"""What a host receives, as data: the items of a host's plan.

A plan is an ordered list of items; each becomes one resource named `<host>-<item name>`
(components/apply.py does that with one loop). Items name what they wait for (`after`:
items of the same plan, or `@...` names of peers' resources that the component supplies)
and when they re-run (`triggers`). Content is text, or `Deferred`: a pure function of
deploy-time values (secrets, the database's outputs, the image just built), rendered by the
component inside `Output.apply` and by the inspect command with placeholders.

Nothing here imports pulumi.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional, Union


@dataclass(frozen=True)
class Deferred:
    """Text known only at deploy time: `render(values)`, `values` holding each of `needs`."""

    render: Callable[[Mapping[str, object]], str]
    needs: tuple[str, ...]

    def with_values(self, values: Mapping[str, object]) -> str:
        return self.render({name: values[name] for name in self.needs})


Text = Union[str, Deferred]


def render_text(text: Text, values: Mapping[str, object]) -> str:
    return text.with_values(values) if isinstance(text, Deferred) else text


@dataclass(frozen=True)
class HashOf:
    """Re-run when the content of the item `name` (or the deploy value `name`) changes."""

    name: str


@dataclass(frozen=True)
class ValueOf:
    """Re-run when the deploy value `name` changes (the value itself is the trigger)."""

    name: str


Trigger = Union[HashOf, ValueOf]


@dataclass(frozen=True)
class Item:
    name: str
    after: tuple[str, ...] = ()
    source: str = ""  # the renderer(s) that produced it, for the inspect listing and README
    what: str = ""  # one line for the README table

    @property
    def kind(self) -> str:
        return type(self).__name__.lower()


@dataclass(frozen=True)
class File(Item):
    """`content` installed at `path` (stdin of an atomic install command: never on a
    command line). With `activate`, `path` is a staging path: the same command then runs
    the `activate` script, which checks the file and puts it in place at `installs_as`."""

    path: str = ""
    content: Text = ""
    mode: str = "0644"
    owner: str = "root:root"
    secret: bool = False
    activate: Optional[str] = None
    installs_as: Optional[str] = None
    triggers: tuple[Trigger, ...] = ()

    @property
    def shown_path(self) -> str:
        return self.installs_as or self.path


@dataclass(frozen=True)
class Step(Item):
    """A root script run over SSH; re-run when the script or a trigger changes.

    `stdin`: data the script reads (a deploy value's name, e.g. "db_password").
    `undo`: script run when the step leaves the plan. `writes`: (path, content, mode) of
    files the script itself writes, for the inspect command."""

    script: Text = ""
    stdin: Optional[str] = None
    stdin_doc: Optional[str] = None
    triggers: tuple[Trigger, ...] = ()
    undo: Optional[str] = None
    secret: bool = False
    writes: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True)
class DockerHost(Item):
    """The Docker provider for this host (docker over ssh://); docker items use it."""


@dataclass(frozen=True)
class ImageBuild(Item):
    """An image built on the host from a local context; its id becomes the value `provides`."""

    tag: str = ""
    context: str = ""  # relative to the Pulumi project
    dockerfile: str = ""
    build_args: tuple[tuple[str, str], ...] = ()
    provides: str = ""


@dataclass(frozen=True)
class ImagePull(Item):
    """An image pulled by reference; its id becomes the value `provides`."""

    reference: str = ""
    provides: str = ""


@dataclass(frozen=True)
class PortSpec:
    internal: int
    external: int
    ip: str


@dataclass(frozen=True)
class VolumeSpec:
    host_path: str
    container_path: str
    read_only: bool = True


@dataclass(frozen=True)
class HealthcheckSpec:
    test: tuple[str, ...]
    interval: str
    timeout: str
    retries: int
    start_period: str


@dataclass(frozen=True)
class Container(Item):
    """A long-running container, replaced (delete first: its name is fixed) on any change."""

    container_name: str = ""
    image: str = ""  # the deploy value holding the image id
    command: tuple[str, ...] = ()
    network_mode: Optional[str] = None
    ports: tuple[PortSpec, ...] = ()
    volumes: tuple[VolumeSpec, ...] = ()
    envs: Optional[Deferred] = None  # KEY=value lines; always secret
    healthcheck: Optional[HealthcheckSpec] = None
    wait_timeout: Optional[int] = None  # wait until healthy, at most this long
    stop_timeout: Optional[int] = None
    restart: str = "unless-stopped"
    # json-file logs grow without bound by default: keep ~50 MB per container
    log_opts: tuple[tuple[str, str], ...] = (("max-size", "10m"), ("max-file", "5"))


@dataclass(frozen=True)
class HostPlan:
    """One host: its name (resource name prefix), the config it is for, and its items."""

    host: str
    role: str  # "database", "app", "proxy"
    items: tuple[Item, ...] = field(default_factory=tuple)

    def item(self, name: str) -> Item:
        for item in self.items:
            if item.name == name:
                return item
        raise KeyError(f"{self.host} has no plan item {name!r}")

    def needs(self) -> set[str]:
        """Every deploy value some item of this plan needs."""
        names: set[str] = set()
        for item in self.items:
            for text in (getattr(item, "content", None), getattr(item, "script", None),
                         getattr(item, "envs", None)):
                if isinstance(text, Deferred):
                    names.update(text.needs)
        return names
