"""One loop that turns a host's plan (components/plans/) into resources.

Each item becomes one resource named `<host>-<item name>`, a child of the host's component:

    File        remote.Command: an atomic install of its content, sent on stdin
    Step        remote.Command: `sudo -n bash -c <script>`, stdin free for data
    DockerHost  docker.Provider over ssh:// (after Docker is installed)
    ImageBuild  docker.Image built on the host     -> provides a deploy value (the image id)
    ImagePull   docker.RemoteImage                 -> provides a deploy value (the image id)
    Container   docker.Container, replaced delete-first (its name and port are fixed)

`after` names become `depends_on`; `@name`s are peers' resources, given by the component.
Deferred text is rendered inside `Output.apply` from the deploy values (secret when any value
is). Every remote step re-runs only when its content hash or one of its triggers changes.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import pulumi
import pulumi_docker as docker

from components.config import HostConfig
from components.plans.items import (Container, Deferred, DockerHost, File, HashOf, HostPlan,
                                    ImageBuild, ImagePull, Item, Step, Text, Trigger)
from components.remote import SshAccess, content_hash, remote_input_step, remote_step
from components.render.files import render_install_file_command, render_run_script_command


class PlanResources:
    """The resources of one host's plan, created in plan order by `apply`."""

    def __init__(self, parent: pulumi.Resource, plan: HostPlan, *, ssh: SshAccess,
                 host: HostConfig, values: Mapping[str, pulumi.Input],
                 peers: Optional[Mapping[str, Sequence[pulumi.Resource]]] = None):
        self.parent, self.plan, self.ssh, self.host = parent, plan, ssh, host
        self.connection = ssh.connection(host)
        self.values = dict(values)
        self.peers = dict(peers or {})
        self.created: dict[str, pulumi.Resource] = {}
        self.texts: dict[str, pulumi.Input[str]] = {}  # item -> its content, for HashOf
        self.provider: Optional[docker.Provider] = None
        missing = self.plan.needs() - self.values.keys() - self._provided()
        if missing:
            raise ValueError(f"{plan.host}: the plan needs deploy values {sorted(missing)}")

    def _provided(self) -> set[str]:
        return {getattr(i, "provides") for i in self.plan.items if getattr(i, "provides", "")}

    def apply(self) -> "PlanResources":
        for item in self.plan.items:
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
        if isinstance(item, DockerHost):
            self.provider = self.ssh.docker_provider(name, self.host, depends_on=self._after(item),
                                                     parent=self.parent)
            return self.provider
        if isinstance(item, ImageBuild):
            return self._image_build(name, item)
        if isinstance(item, ImagePull):
            return self._image_pull(name, item)
        if isinstance(item, Container):
            return self._container(name, item)
        raise TypeError(f"{name}: no resource for plan items of type {item.kind}")

    def _step(self, name: str, item: Step) -> pulumi.Resource:
        script = self._text(item.script)
        self.texts[item.name] = script
        return remote_step(
            name, connection=self.connection, script=script,
            stdin=self.values[item.stdin] if item.stdin else None,
            triggers=[self._trigger(t) for t in item.triggers], delete=item.undo,
            secret=item.secret, opts=self._opts(item))

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

    def _image_build(self, name: str, item: ImageBuild) -> pulumi.Resource:
        image = docker.Image(
            name, image_name=item.tag,
            build=docker.DockerBuildArgs(
                context=item.context, dockerfile=item.dockerfile, args=dict(item.build_args),
                builder_version=docker.BuilderVersion.BUILDER_V1),
            skip_push=True, opts=self._docker_opts(item))
        self.values[item.provides] = image.repo_digest  # local image: its id, unique per build
        return image

    def _image_pull(self, name: str, item: ImagePull) -> pulumi.Resource:
        image = docker.RemoteImage(name, name=item.reference, keep_locally=True,
                                   opts=self._docker_opts(item))
        self.values[item.provides] = image.image_id
        return image

    def _container(self, name: str, item: Container) -> pulumi.Resource:
        optional = {
            "command": list(item.command) or None,
            "network_mode": item.network_mode,
            "ports": [docker.ContainerPortArgs(internal=p.internal, external=p.external,
                                               ip=p.ip) for p in item.ports] or None,
            "volumes": [docker.ContainerVolumeArgs(host_path=v.host_path,
                                                   container_path=v.container_path,
                                                   read_only=v.read_only)
                        for v in item.volumes] or None,
            "envs": pulumi.Output.secret(pulumi.Output.from_input(self._text(item.envs))
                                         .apply(str.splitlines)) if item.envs else None,
            "healthcheck": docker.ContainerHealthcheckArgs(
                tests=list(item.healthcheck.test), interval=item.healthcheck.interval,
                timeout=item.healthcheck.timeout, retries=item.healthcheck.retries,
                start_period=item.healthcheck.start_period) if item.healthcheck else None,
            "wait": True if item.wait_timeout else None,
            "wait_timeout": item.wait_timeout,
            "stop_timeout": item.stop_timeout,
            "destroy_grace_seconds": item.stop_timeout,
        }
        return docker.Container(
            name, name=item.container_name, image=self.values[item.image],
            restart=item.restart, log_driver="json-file", log_opts=dict(item.log_opts),
            **{k: v for k, v in optional.items() if v is not None},
            # fixed name (and port): the old container must go before the new one starts
            opts=self._docker_opts(item, delete_before_replace=True))

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
            elif not isinstance(self.created[name], docker.Provider):
                deps.append(self.created[name])  # docker items reach the provider as provider
        return deps

    def _opts(self, item: Item) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self.parent, depends_on=self._after(item))

    def _docker_opts(self, item: Item, **options) -> pulumi.ResourceOptions:
        if self.provider is None:
            raise ValueError(f"{self.plan.host}-{item.name}: a docker item before the plan's "
                             "DockerHost")
        return pulumi.ResourceOptions(parent=self.parent, provider=self.provider,
                                      depends_on=self._after(item), **options)
