"""AppServer: one server running the Django app in Docker behind gunicorn.

Steps, in order:
  install Docker -> firewall (ufw + DOCKER-USER block) -> Docker provider over ssh://
  -> image built on the server from assets/app (tag = content hash of assets/app)
  -> env file /etc/djscale/app.env (root, 0600, secret)
  -> [first server only] /etc/djscale/release.env (the same plus the superuser's
     credentials) and the release: migrate, collectstatic, createsuperuser in a one-off
     container of the new image; re-runs only when that image changes
  -> the app container, after the release and after the previous server's container: a
     rollout replaces one server at a time, each waiting until the new one is healthy
  -> old app images removed (all but the current and the newest previous one, never one a
     container uses); re-runs only when the image changes.

The container gets its environment as `envs`, parsed from the same rendered env file (a
secret Output: encrypted in the Pulumi state), so a changed setting or a rotated secret
replaces the container. The env file on the host is what operators' one-off
`docker run --env-file /etc/djscale/app.env ...` commands use.
"""
from __future__ import annotations

import fnmatch
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pulumi
import pulumi_docker as docker

from components.config import HostConfig, StackConfig
from components.database import DatabaseEndpoint
from components.remote import CONTAINER_LOG_OPTS, SshAccess, remote_file, remote_step
from components.render import appenv, docker_install, firewall
from components.render.images import render_prune_app_images_script
from components.render.release import RELEASE_ENV_PATH, render_release_script

PROJECT_ROOT = Path(__file__).resolve().parents[1]
APP_CONTEXT = "assets/app"  # relative to the project root, where `pulumi` runs the program
ENV_FILE = appenv.APP_ENV_PATH  # /etc/djscale/app.env: what the app containers get
RELEASE_ENV_FILE = RELEASE_ENV_PATH  # plus the superuser's credentials
CONTAINER_NAME = "djscale-app"
STOP_TIMEOUT = 30  # > gunicorn's graceful_timeout (20 s), see assets/app/gunicorn.conf.py


# --- pure helpers (no resources) ---------------------------------------------------------

def _dockerignore_patterns(context: Path) -> list[str]:
    ignore = context / ".dockerignore"
    if not ignore.exists():
        return []
    return [line.strip().rstrip("/") for line in ignore.read_text().splitlines()
            if line.strip() and not line.strip().startswith("#")]


def app_content_hash(context: Path = PROJECT_ROOT / APP_CONTEXT) -> str:
    """sha256 over every file the image build sees (path + content), 16 hex digits.

    Files excluded by .dockerignore, and Python caches, do not count, so the image is rebuilt
    only when the app itself changes.
    """
    patterns = _dockerignore_patterns(context) + ["**/__pycache__", "__pycache__", "*.pyc"]
    digest = hashlib.sha256()
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        rel = path.relative_to(context).as_posix()
        parts = rel.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        if any(fnmatch.fnmatch(pre, pat) or fnmatch.fnmatch(part, pat)
               for pat in patterns for pre, part in zip(prefixes, parts)):
            continue
        digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def parse_env_file(text: str) -> list[str]:
    """`KEY=value` entries exactly as `docker run --env-file` reads them (no quote handling)."""
    return [line for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#") and "=" in line]


# --- the component ---------------------------------------------------------------------

@dataclass(frozen=True)
class AppServerArgs:
    cfg: StackConfig
    host: HostConfig
    ssh: SshAccess
    database: DatabaseEndpoint
    secret_key: pulumi.Output[str]
    superuser_password: pulumi.Output[str]
    static_storage_secret_key: pulumi.Output[str]
    proxy_private_address: str
    runs_release: bool  # the first app server runs migrations etc. for every release
    release: Optional[pulumi.Resource] = None  # the first server's release step
    previous: Optional[pulumi.Resource] = None  # previous server's container (rollout order)


class AppServer(pulumi.ComponentResource):
    def __init__(self, name: str, args: AppServerArgs,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("djscale:index:AppServer", name, None, opts)
        cfg, host = args.cfg, args.host
        conn = args.ssh.connection(host)
        child = pulumi.ResourceOptions(parent=self)

        install = remote_step(
            f"{name}-install-docker", connection=conn,
            script=docker_install.render_install_docker_script(cfg.ssh.user), opts=child)

        self.firewall = remote_step(
            f"{name}-firewall", connection=conn,
            script=firewall.render_ufw_script(
                firewall.app_rules(cfg, args.proxy_private_address, host)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[install]))

        provider = args.ssh.docker_provider(f"{name}-docker", host, depends_on=[install],
                                            parent=self)
        on_host = pulumi.ResourceOptions(parent=self, provider=provider)

        self.image = docker.Image(
            f"{name}-image",
            image_name=f"djscale-app:{app_content_hash()}",
            build=docker.DockerBuildArgs(
                context=APP_CONTEXT, dockerfile=f"{APP_CONTEXT}/Dockerfile",
                args={"BASE_IMAGE": cfg.images.app_base},
                builder_version=docker.BuilderVersion.BUILDER_V1,
            ),
            skip_push=True,
            opts=on_host)
        image_ref = self.image.repo_digest  # local image: its id, unique per build

        db = args.database
        env_inputs = pulumi.Output.all(
            db_host=db.private_address, db_port=db.port, db_name=db.name, db_user=db.user,
            db_password=db.password, secret_key=args.secret_key,
            s3_secret_key=args.static_storage_secret_key,
        )
        env_text = pulumi.Output.secret(
            env_inputs.apply(lambda v: appenv.render_app_env(cfg, **v)))
        self.env_file = remote_file(
            f"{name}-env-file", connection=conn, path=ENV_FILE, content=env_text, mode="0600",
            secret=True, opts=child)

        self.release = None
        if args.runs_release:
            # The superuser's password reaches only this server, in its own 0600 file.
            release_env = pulumi.Output.secret(pulumi.Output.all(
                env_inputs, args.superuser_password).apply(
                    lambda v: appenv.render_app_env(cfg, **v[0], superuser_password=v[1])))
            release_env_file = remote_file(
                f"{name}-release-env-file", connection=conn, path=RELEASE_ENV_FILE,
                content=release_env, mode="0600", secret=True, opts=child)
            self.release = remote_step(
                f"{name}-release", connection=conn,
                script=image_ref.apply(render_release_script),
                triggers=[image_ref],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[release_env_file]))
        release = self.release or args.release
        waits_for = [self.env_file, self.firewall]
        waits_for += [r for r in (release, args.previous) if r is not None]

        self.container = docker.Container(
            f"{name}-container",
            name=CONTAINER_NAME,
            image=image_ref,
            envs=pulumi.Output.secret(env_text.apply(parse_env_file)),
            restart="unless-stopped",
            log_driver="json-file", log_opts=CONTAINER_LOG_OPTS,  # bounded logs
            ports=[docker.ContainerPortArgs(internal=cfg.app.port, external=cfg.app.port,
                                            ip=host.private_address)],
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD", "python3", "-c",
                       "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen("
                       f"'http://127.0.0.1:{cfg.app.port}/healthz', timeout=4).status == 200"
                       " else 1)"],
                interval="10s", timeout="5s", retries=3, start_period="30s"),
            wait=True, wait_timeout=180,
            stop_timeout=STOP_TIMEOUT, destroy_grace_seconds=STOP_TIMEOUT,
            opts=pulumi.ResourceOptions(
                parent=self, provider=provider, depends_on=waits_for,
                # fixed name and host port: the old container must go before the new starts
                delete_before_replace=True))

        # Each release leaves an image behind; the server's disk would fill over months.
        self.prune_images = remote_step(
            f"{name}-prune-images", connection=conn,
            script=image_ref.apply(render_prune_app_images_script),
            triggers=[image_ref],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.container]))

        self.private_address = pulumi.Output.from_input(host.private_address)
        self.image_id = image_ref
        self.container_name = self.container.name
        self.register_outputs({
            "privateAddress": self.private_address,
            "imageId": self.image_id,
            "containerName": self.container_name,
        })
