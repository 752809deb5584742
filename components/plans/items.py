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
from typing import Callable, Mapping, Optional, Sequence, Union


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
    """A root script run over SSH; re-run when the script, its stdin or a trigger changes.

    `stdin`: data the script reads, rendered from deploy values (the role's password
    verifier, the release's environment); `stdin_doc` says what it is, for people.
    `undo`: script run when the step leaves the plan. `writes`: (path, content, mode) of
    files the script itself writes, for the inspect command. `provides`: the name of a
    deploy value that is the script's stdout (e.g. the id of the image it built).
    `ssh_client`: the script gets the SSH session's `$SSH_CLIENT` as `$1` (where the deploy
    connects from, as the host sees it; components/render/files.py, SSH_CLIENT_WORD)."""

    script: Text = ""
    stdin: Optional[Deferred] = None
    stdin_doc: Optional[str] = None
    triggers: tuple[Trigger, ...] = ()
    undo: Optional[str] = None
    secret: bool = False
    writes: tuple[tuple[str, str, str], ...] = ()
    provides: str = ""
    ssh_client: bool = False


def enable_step(name: str, files: Sequence[File], *, after: tuple[str, ...] = (),
                **step) -> Step:
    """The step that puts installed `files` to work (a unit and its program: enabled,
    started): after them (and `after`), run again whenever any of them changes."""
    names = tuple(f.name for f in files)
    return Step(name, after=(*after, *names), triggers=tuple(HashOf(n) for n in names), **step)


@dataclass(frozen=True)
class Upload(Item):
    """Local files copied to the host over SFTP, as the SSH user: `files` (paths relative to
    the local directory `local_dir`) land in `remote_dir/dir_name/`. Copied again when their
    content changes, and on a new machine behind the host's address."""

    local_dir: str = ""
    files: tuple[str, ...] = ()
    remote_dir: str = ""
    dir_name: str = ""


@dataclass(frozen=True)
class Local(Item):
    """A command on the operator's machine (pulumi-command's local.Command): `python3 -m
    module` in the project directory, `stdin` (Deferred, secret) as its request; replaced
    when a trigger changes. Used to ship the app image between servers."""

    module: str = ""
    stdin: Optional[Text] = None
    triggers: tuple[Trigger, ...] = ()


@dataclass(frozen=True)
class Teardown(Item):
    """A root script run only when the host leaves the stack (or the stack is destroyed):
    it takes away what must not stay (containers, secret files)."""

    script: str = ""


@dataclass(frozen=True)
class HostPlan:
    """One host: its name (resource name prefix), the config it is for, and its items.

    `later` starts the items that wait for peers made after this host's component (an app
    server's retire step waits for the proxy's switch): the component creates the items
    before it, then the rest once those peers exist."""

    host: str
    role: str  # "database", "app", "proxy"
    items: tuple[Item, ...] = field(default_factory=tuple)
    later: Optional[str] = None

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
                         getattr(item, "stdin", None)):
                if isinstance(text, Deferred):
                    names.update(text.needs)
        return names
