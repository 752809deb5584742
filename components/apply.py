"""One loop that turns a host's plan (components/plans/) into resources.

Each item becomes one resource named `<host>-<item name>`, a child of the host's component:

    File      remote.Command: an atomic install of its content, sent on stdin
    Step      remote.Command: `sudo -n bash -c <script>`, stdin free for data (its hash a
              trigger); with `provides`, its stdout becomes a deploy value (e.g. the id of
              the image it built); with `ssh_client`, the login shell's "$SSH_CLIENT" as its
              argument
    Upload    remote.CopyToRemote of a local staging directory (only the listed files)
    Local     local.Command on the operator's machine: `python3 -m <module>`, request on stdin
    Teardown  remote.Command with only a `delete`: runs when the host leaves the stack

`after` names become `depends_on`; `@name`s are peers' resources, given by the component.
Deferred text is rendered inside `Output.apply` from the deploy values (secret when any value
is). Every step re-runs only when its content hash or one of its triggers changes, or when
its connection changes (a new machine behind the address: pulumi-command's Update runs the
command again with the new inputs, provider/pkg/provider/remote/commandController.go).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Mapping, Optional, Sequence

import pulumi
from pulumi_command import local, remote

from components.config import HostConfig
from components.plans.items import (Deferred, File, HashOf, HostPlan, Item, Local, Step,
                                    Teardown, Text, Trigger, Upload)
from components.remote import SshAccess, content_hash, remote_input_step, remote_step
from components.render.files import render_install_file_command, render_run_script_command


class PlanResources:
    """The resources of one host's plan, created in plan order by `apply`."""

    def __init__(self, parent: pulumi.Resource, plan: HostPlan, *, ssh: SshAccess,
                 host: HostConfig, values: Mapping[str, pulumi.Input],
                 peers: Optional[Mapping[str, Sequence[pulumi.Resource]]] = None,
                 staging: Optional[Path] = None):
        self.parent, self.plan, self.host = parent, plan, host
        self.connection = ssh.connection(host)
        self.values = dict(values)
        self.peers = dict(peers or {})
        self.staging = staging
        self.created: dict[str, pulumi.Resource] = {}
        self.texts: dict[str, pulumi.Input[str]] = {}  # item -> its content, for HashOf
        provided = {getattr(i, "provides", "") for i in plan.items} - {""}
        missing = plan.needs() - self.values.keys() - provided
        if missing:
            raise ValueError(f"{plan.host}: the plan needs deploy values {sorted(missing)}")

    def apply(self) -> "PlanResources":
        """The plan's items up to `plan.later` (all of them when it has none)."""
        for item in self.plan.items:
            if item.name == self.plan.later:
                break
            self.created[item.name] = self._create(item)
        return self

    def apply_later(self, peers: Mapping[str, Sequence[pulumi.Resource]]) -> "PlanResources":
        """The items from `plan.later` on, once the peers they wait for exist."""
        self.peers.update(peers)
        for item in self.plan.items:
            if item.name not in self.created:
                self.created[item.name] = self._create(item)
        return self

    def __getitem__(self, name: str) -> pulumi.Resource:
        return self.created[name]

    # -- item by item ------------------------------------------------------------------
    def _create(self, item: Item) -> pulumi.Resource:
        name = f"{self.plan.host}-{item.name}"
        if isinstance(item, Step):
            return self._step(name, item)
        if isinstance(item, File):
            return self._file(name, item)
        if isinstance(item, Upload):
            return self._upload(name, item)
        if isinstance(item, Local):
            return self._local(name, item)
        if isinstance(item, Teardown):
            return remote.Command(name, connection=self.connection,
                                  delete=render_run_script_command(item.script),
                                  add_previous_output_in_env=False, opts=self._opts(item))
        raise TypeError(f"{name}: no resource for plan items of type {item.kind}")

    def _step(self, name: str, item: Step) -> pulumi.Resource:
        script = self._text(item.script)
        self.texts[item.name] = script
        triggers = [self._trigger(t) for t in item.triggers]
        stdin = None
        if item.stdin is not None:
            stdin = self._text(item.stdin)
            if item.secret:
                stdin = pulumi.Output.secret(stdin)
            # a changed stdin runs the step again (replaced, like any trigger), whatever
            # pulumi-command would do with a changed input on its own
            triggers.append(content_hash(stdin))
        command = remote_step(
            name, connection=self.connection, script=script, stdin=stdin,
            triggers=triggers, delete=item.undo, secret=item.secret,
            ssh_client=item.ssh_client, opts=self._opts(item))
        if item.provides:
            self.values[item.provides] = command.stdout
        return command

    def _file(self, name: str, item: File) -> pulumi.Resource:
        content = self._text(item.content)
        self.texts[item.name] = content
        owner, group = item.owner.split(":")
        create = render_install_file_command(item.path, item.mode, owner, group)
        if item.activate:
            create += " && " + render_run_script_command(item.activate)
        return remote_input_step(
            name, connection=self.connection, create=create, content=content,
            extra_triggers=[self._trigger(t) for t in item.triggers], secret=item.secret,
            opts=self._opts(item))

    def _upload(self, name: str, item: Upload) -> pulumi.Resource:
        if self.staging is None:
            raise ValueError(f"{name}: uploads need a local staging directory")
        local = stage(Path(item.local_dir), item.files, self.staging / item.dir_name)
        # CopyToRemote copies again only when the source's hash or the remote path changes
        # (pulumi-command v1.2.1 provider/pkg/provider/remote/copyController.go,
        # CopyToRemote.Update: `needCopy`), not when the connection does: the address, port
        # and pinned host key as triggers (replaceOnChanges) make a new machine get the
        # files too, also one behind the same address (only its key differs).
        return remote.CopyToRemote(
            name, connection=self.connection, source=pulumi.FileArchive(str(local)),
            remote_path=item.remote_dir,
            triggers=[self.host.address, self.connection.port,
                      self.connection.host_key or ""],
            opts=self._opts(item))

    def _local(self, name: str, item: Local) -> pulumi.Resource:
        stdin = pulumi.Output.secret(self._text(item.stdin)) if item.stdin is not None else None
        # `python3 -m <module>`: the module needs only the standard library, so any python3
        # will do, and the command is the same from every operator's machine (no interpreter
        # or checkout path in the state, so no update when a colleague deploys). No `dir`: the
        # provider runs commands in its own working directory (pulumi-command v1.2.1
        # local/commandOutputs.go: `cmd.Dir, err = os.Getwd()`), and the engine starts
        # providers in the project directory (pulumi sdk/go/common/resource/plugin/plugin.go
        # execPlugin: `cmd.Dir = pwd`, the plugin context's project directory).
        return local.Command(
            name, create=f"python3 -m {item.module}", stdin=stdin,
            triggers=[self._trigger(t) for t in item.triggers],
            logging=local.Logging.STDERR, add_previous_output_in_env=False,
            opts=pulumi.ResourceOptions.merge(self._opts(item), pulumi.ResourceOptions(
                additional_secret_outputs=["stdout", "stderr"])))

    # -- helpers -----------------------------------------------------------------------
    def _text(self, text: Text) -> pulumi.Input[str]:
        if isinstance(text, Deferred):
            return pulumi.Output.all(**{n: self.values[n] for n in text.needs}).apply(
                text.render)
        return text

    def _trigger(self, trigger: Trigger) -> pulumi.Input:
        if isinstance(trigger, HashOf):
            source = self.texts.get(trigger.name, self.values.get(trigger.name))
            if source is None:
                raise KeyError(f"{self.plan.host}: trigger on unknown {trigger.name!r}")
            return content_hash(source)
        return self.values[trigger.name]

    def _after(self, item: Item) -> list[pulumi.Resource]:
        deps: list[pulumi.Resource] = []
        for name in item.after:
            if name.startswith("@"):
                if name not in self.peers:
                    raise KeyError(f"{self.plan.host}-{item.name} waits for {name}, which the "
                                   "component did not supply")
                deps += list(self.peers[name])
            else:
                deps.append(self.created[name])
        return deps

    def _opts(self, item: Item) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self.parent, depends_on=self._after(item))


def stage(source: Path, files: Sequence[str], target: Path) -> Path:
    """`target` holding exactly `files` of `source` (a fresh copy: the upload's content)."""
    if target.exists():
        shutil.rmtree(target)
    for name in files:
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / name, destination)
    target.mkdir(parents=True, exist_ok=True)
    os.chmod(target, 0o755)
    return target
