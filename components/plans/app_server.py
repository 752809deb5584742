"""An app server's plan: Docker, the firewall, the app image, its env file, the release (on
the first app server), the app container, and old images pruned.

Deploy values it needs: the database endpoint (db_host, db_port, db_name, db_user,
db_password), secret_key, s3_secret_key, superuser_password (first server only), and
app_image, which its own image build provides. Peers it waits for: `@release` (the first
server's release, for the others) and `@previous` (the previous server's container: a rollout
replaces one server at a time).
"""
from __future__ import annotations

from components.config import HostConfig, StackConfig
from components.render import appenv, firewall, images, release
from components.render.app_image import (APP_CONTEXT, CONTAINER_NAME, STOP_TIMEOUT,
                                         app_image_tag, healthcheck_command)

from .docker_host import docker_host_items
from .items import (Container, Deferred, File, HealthcheckSpec, HostPlan, ImageBuild, Item,
                    PortSpec, Step, ValueOf)

ENV_NEEDS = ("db_host", "db_port", "db_name", "db_user", "db_password", "secret_key",
             "s3_secret_key")


def app_server_plan(cfg: StackConfig, host: HostConfig, *, runs_release: bool) -> HostPlan:
    rules = firewall.app_rules(cfg, cfg.proxy.private_address, host)
    items: list[Item] = [*docker_host_items(cfg, rules, "app"), _image(cfg), _env_file(cfg)]
    if runs_release:
        items += _release(cfg)
    items += _serve(cfg, host, release_after="release" if runs_release else "@release")
    return HostPlan(host.name, "app", tuple(items))


def _image(cfg: StackConfig) -> ImageBuild:
    return ImageBuild("image", after=("docker",), tag=app_image_tag(), context=APP_CONTEXT,
                      dockerfile=f"{APP_CONTEXT}/Dockerfile",
                      build_args=(("BASE_IMAGE", cfg.images.app_base),), provides="app_image",
                      source="render.app_image.app_image_tag",
                      what="built on the server from `assets/app`; tag = hash of what the "
                           "build sees")


def _env(cfg: StackConfig, release_run: bool = False) -> Deferred:
    needs = ENV_NEEDS + (("superuser_password",) if release_run else ())
    return Deferred(lambda values: appenv.render_app_env(cfg, **values), needs)


def _env_file(cfg: StackConfig) -> File:
    return File("env-file", path=appenv.APP_ENV_PATH, content=_env(cfg), mode="0600",
                secret=True, source="appenv.render_app_env",
                what="the app containers' environment (secrets: root-only file)")


def _release(cfg: StackConfig) -> list[Item]:
    image = Deferred(lambda values: release.render_release_script(values["app_image"]),
                     ("app_image",))
    return [
        File("release-env-file", path=release.RELEASE_ENV_PATH, content=_env(cfg, True),
             mode="0600", secret=True, source="appenv.render_app_env(superuser_password=...)",
             what="the env file plus the superuser's credentials, for the release only"),
        Step("release", after=("release-env-file",), script=image,
             triggers=(ValueOf("app_image"),), source="release.render_release_script",
             what="once per image: `migrate`, `collectstatic`, `createsuperuser` (if missing) "
                  "in a one-off container"),
    ]


def _serve(cfg: StackConfig, host: HostConfig, release_after: str) -> list[Item]:
    port = cfg.app.port
    container = Container(
        "container", after=("env-file", "firewall", release_after, "@previous"),
        container_name=CONTAINER_NAME, image="app_image",
        ports=(PortSpec(internal=port, external=port, ip=host.private_address),),
        envs=Deferred(lambda values: "\n".join(appenv.parse_env_file(
            appenv.render_app_env(cfg, **values))), ENV_NEEDS),
        healthcheck=HealthcheckSpec(healthcheck_command(port), interval="10s", timeout="5s",
                                    retries=3, start_period="30s"),
        wait_timeout=180, stop_timeout=STOP_TIMEOUT,
        source="render.app_image.healthcheck_command",
        what="the app, published on the private address only; waits until healthy")
    prune = Step(
        "prune-images", after=("container",),
        script=Deferred(lambda values: images.render_prune_app_images_script(values["app_image"]),
                        ("app_image",)),
        triggers=(ValueOf("app_image"),), source="images.render_prune_app_images_script",
        what="once per image: old `djscale-app` images removed (keeps the current, the newest "
             "previous and any a container uses)")
    return [container, prune]
