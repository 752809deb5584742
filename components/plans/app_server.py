"""An app server's plan: Docker, the firewall, the app image built from the uploaded context,
its env file, the release (on the first app server), the app container, old images pruned,
and what goes when the server leaves the stack.

Deploy values it needs: the database endpoint (db_host, db_port, db_name, db_user,
db_password, db_ca_cert: the certificate it verifies the database with), secret_key, s3_secret_key, superuser_password (first server only), and
app_image, which its own image step provides (its stdout). Peers it waits for: `@release`
(the first server's release, for the others) and `@previous` (the previous server's
container: a rollout replaces one server at a time).
"""
from __future__ import annotations

from dataclasses import replace

from components.config import HostConfig, StackConfig
from components.render import appenv, containers, firewall, images, release
from components.render.app_image import (APP_CONTEXT, CONTAINER_NAME, PROJECT_ROOT,
                                         STOP_TIMEOUT, UPLOAD_DIR, app_image_tag, build_files,
                                         context_name, healthcheck_command,
                                         render_build_image_script)

from .docker_host import docker_host_items
from .items import (Deferred, File, HashOf, HostPlan, Item, Step, Teardown, Upload, ValueOf)

ENV_NEEDS = ("db_host", "db_port", "db_name", "db_user", "db_password", "secret_key",
             "s3_secret_key")


def app_server_plan(cfg: StackConfig, host: HostConfig, *, runs_release: bool) -> HostPlan:
    rules = firewall.app_rules(cfg, cfg.proxy.private_address, host)
    items: list[Item] = [*docker_host_items(cfg, rules, "app"), *_image(cfg), _env_file(cfg),
                         _db_ca_file()]
    if runs_release:
        items += _release(cfg)
    items += _serve(cfg, host, release_after="release" if runs_release else "@release")
    return HostPlan(host.name, "app", tuple(items))


def _image(cfg: StackConfig) -> list[Item]:
    name = context_name()
    return [
        Upload("upload-context", after=("install-docker",), local_dir=APP_CONTEXT,
               files=tuple(build_files(PROJECT_ROOT / APP_CONTEXT)), remote_dir=UPLOAD_DIR,
               dir_name=name, source="app_image.build_files",
               what="what `docker build` would send from `assets/app` (no other file), "
                    "over SFTP"),
        Step("image", after=("upload-context",), provides="app_image",
             script=render_build_image_script(
                 tag=app_image_tag(), context=f"{UPLOAD_DIR}/{name}",
                 platform=cfg.images.platform, base_image=cfg.images.app_base),
             source="app_image.render_build_image_script",
             what="builds the image for `images.platform` unless the tag exists; prints its "
                  "id"),
    ]


def _env(cfg: StackConfig, release_run: bool = False) -> Deferred:
    needs = ENV_NEEDS + (("superuser_password",) if release_run else ())
    return Deferred(lambda values: appenv.render_app_env(cfg, **values), needs)


def _env_file(cfg: StackConfig) -> File:
    return File("env-file", path=appenv.APP_ENV_PATH, content=_env(cfg), mode="0600",
                secret=True, source="appenv.render_app_env",
                what="the app containers' environment (secrets: root-only file)")


def _db_ca_file() -> File:
    return File("db-ca-file", path=appenv.DB_CA_PATH,
                content=Deferred(lambda values: appenv.render_db_ca_file(values["db_ca_cert"]),
                                 ("db_ca_cert",)),
                source="appenv.render_db_ca_file",
                what="the database's certificate (public, from db-tls or the database "
                     "stack's `dbCaCert`): the app verifies the database with it "
                     "(sslmode=verify-full)")


def _release(cfg: StackConfig) -> list[Item]:
    script = Deferred(lambda values: release.render_release_script(values["app_image"]),
                      ("app_image",))
    return [
        Step("release", after=("db-ca-file",), script=script, stdin=_env(cfg, True),
             stdin_doc="the release's environment", secret=True,
             triggers=(ValueOf("app_image"),),
             source="release.render_release_script, appenv.render_app_env(superuser_password=...)",
             what="once per image (and environment): `migrate`, `collectstatic`, "
                  "`createsuperuser` (if missing) in a one-off container; its environment "
                  "(the app's, plus the superuser's credentials) reaches `docker run` "
                  "through a pipe, never a file"),
    ]


def app_container(cfg: StackConfig, host: HostConfig) -> containers.ContainerSpec:
    """The app container, its image left to fill in (the id the image step prints)."""
    port = cfg.app.port
    return containers.ContainerSpec(
        name=CONTAINER_NAME, image="", env_file=appenv.APP_ENV_PATH,
        volumes=(containers.Volume(appenv.DB_CA_PATH, appenv.DB_CA_PATH),),
        hashed_files=(appenv.DB_CA_PATH,),
        ports=(containers.Port(host.private_address, port, port),),
        healthcheck=containers.Healthcheck(healthcheck_command(port)),
        healthy_within=180, stop_timeout=STOP_TIMEOUT)


def _serve(cfg: StackConfig, host: HostConfig, release_after: str) -> list[Item]:
    spec = app_container(cfg, host)
    run = Deferred(lambda values: containers.render_run_container_script(
        replace(spec, image=values["app_image"])), ("app_image",))
    prune = Deferred(lambda values: images.render_prune_app_images_script(values["app_image"]),
                     ("app_image",))
    return [
        Step("container", after=("env-file", "db-ca-file", "firewall", release_after,
                                 "@previous"),
             script=run, triggers=(HashOf("env-file"), HashOf("db-ca-file")),
             source="containers.render_run_container_script",
             what="the app on the private address; replaced only when its settings change, "
                  "health-gated (the previous container comes back if the new one fails)"),
        Step("prune-images", after=("container",), script=prune,
             triggers=(ValueOf("app_image"),), source="images.render_prune_app_images_script",
             what="once per image: old `djscale-app` images removed (keeps the current, the "
                  "newest previous and any a container uses)"),
        Teardown("teardown", after=("install-docker",),
                 script=containers.render_teardown_script(
                     CONTAINER_NAME, STOP_TIMEOUT,
                     files=(appenv.APP_ENV_PATH, release.LEGACY_RELEASE_ENV_PATH,
                            appenv.DB_CA_PATH, UPLOAD_DIR)),
                 source="containers.render_teardown_script",
                 what="when the server leaves the stack: the app container stopped and "
                      "removed, its env file, the database certificate and the uploads "
                      "deleted"),
    ]
