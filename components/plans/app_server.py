"""An app server's plan: Docker, the firewall, the drain before Docker stops, the app image (built on the first app server
from the uploaded context, shipped from there to the others: one build per release), its env
file and the database's certificate, the release (first server only), the release's
container started beside the running one (blue/green), then, once nginx routes to it, the
old one retired (and the release recorded); old images pruned; and what goes when the
server leaves the stack.

With a pinned release (`app.release`: `previous` or an image id: a rollback), nothing is
uploaded or built: the first server's image step names an image it holds, which is shipped
and rolled out the same way; its release step migrates nothing.

Deploy values it needs: the database endpoint (db_host, db_port, db_name, db_user,
db_password, db_ca_cert), secret_key, s3_secret_key, app_secrets (appSecrets by name),
superuser_password (first server only),
app_image (the first server's image step prints it; the others get it with the image) and
ssh_key (to ship the image). Peers it waits for: `@image` (the first server's image, for the
others), `@release` (the first server's release), `@batch` (the previous batch's starts) and,
for the items from `retire` on (`HostPlan.later`), `@switched` (nginx routing to every
server's new slot).
"""
from __future__ import annotations

import json
from dataclasses import replace

from components.config import HostConfig, StackConfig
from components.render import appenv, containers, drain, firewall, images, release, releases
from components.render.app_image import (CONTAINER_NAME, STOP_TIMEOUT, UPLOAD_DIR,
                                         app_image_tag, build_files, context_name,
                                         healthcheck_command, render_build_image_script)

from .docker_host import docker_host_items
from .items import (Deferred, File, HashOf, HostPlan, Item, Local, Step, Teardown, Upload,
                    ValueOf, enable_step)

ENV_NEEDS = ("db_host", "db_port", "db_name", "db_user", "db_password", "secret_key",
             "s3_secret_key", "app_secrets")


def app_server_plan(cfg: StackConfig, host: HostConfig, *, runs_release: bool) -> HostPlan:
    """`runs_release`: the first app server, which builds the image and runs the release."""
    rules = firewall.app_rules(cfg, cfg.proxy.private_address, host)
    items: list[Item] = [*docker_host_items(cfg, rules, "app"), *_drain(cfg)]
    if not runs_release:
        items.append(_ship(cfg, host))
    elif cfg.app.pinned_release:
        items.append(_pinned_image(cfg))
    else:
        items += _image(cfg)
    items += [_env_file(cfg), _db_ca_file()]
    if runs_release:
        items += _release(cfg)
    items += _serve(cfg, host, release_after="release" if runs_release else "@release")
    return HostPlan(host.name, "app", tuple(items), later="retire")


def _drain(cfg: StackConfig) -> list[Item]:
    """Before Docker stops (a shutdown, a reboot, a restart of Docker), the server leaves the
    proxy's rotation and its requests in flight finish (components/render/drain.py)."""
    files = [
        File("drain-script", after=("firewall",), path=drain.DRAIN_SCRIPT_PATH, mode="0755",
             content=drain.render_drain_script((cfg.app.port, cfg.app.port + 1),
                                               CONTAINER_NAME, cfg.app.container_port),
             source="drain.render_drain_script",
             what="`djscale-app-drain drain`: new connections to the app's ports refused "
                  "(TCP reset, DOCKER-USER: the proxy sends the request elsewhere), then a "
                  "wait until the app holds no connection (bounded); `open` takes them again"),
        File("drain-service", after=("firewall",), path=drain.DRAIN_SERVICE_PATH,
             content=drain.render_drain_service(), source="drain.render_drain_service",
             what="stopped just before Docker (and with it: PartOf=): its stop drains"),
    ]
    return [
        *files,
        enable_step("drain-enable", files, script=drain.render_enable_drain_script(),
                    undo=drain.render_disable_drain_script(),
                    source="drain.render_enable_drain_script (undone by "
                           "render_disable_drain_script)",
                    what="`systemctl daemon-reload`, the drain unit enabled and started"),
    ]


def ssh_connection(cfg: StackConfig, host: HostConfig) -> dict:
    """How the operator's machine reaches `host` (components/ship_image.py's CONNECTION)."""
    bastion = cfg.ssh.bastion
    return {"host": host.address, "port": cfg.ssh_port_for(host), "user": cfg.ssh.user,
            "hostKey": cfg.ssh.host_key_for(host.address),
            "proxy": {"host": bastion.address, "port": bastion.port, "user": bastion.user,
                      "hostKey": cfg.ssh.host_key_for(bastion.address), "proxy": None}
            if bastion else None}


def _ship(cfg: StackConfig, host: HostConfig) -> Local:
    builder = cfg.app_servers[0]
    source, target = ssh_connection(cfg, builder), ssh_connection(cfg, host)
    request = Deferred(lambda values: json.dumps({
        "image": values["app_image"], "source": source, "target": target,
        "key": values["ssh_key"]}), ("app_image", "ssh_key"))
    return Local("image", after=("install-docker", "@image"), module="components.ship_image",
                 stdin=request, triggers=(ValueOf("app_image"),),
                 source="components/ship_image.py",
                 what=f"the image {builder.name} built, shipped through the operator's machine "
                      "(docker save there, docker load here) unless this server holds it")


def _image(cfg: StackConfig) -> list[Item]:
    source, dockerfile = cfg.app.source_dir, cfg.app.dockerfile
    name = context_name(source, dockerfile)
    return [
        Upload("upload-context", after=("install-docker",), local_dir=str(source),
               files=tuple(build_files(source, dockerfile)), remote_dir=UPLOAD_DIR,
               dir_name=name, source="app_image.build_files",
               what="what `docker build` would send from `app.source` (no other file), "
                    "over SFTP"),
        Step("image", after=("upload-context",), provides="app_image",
             script=render_build_image_script(
                 tag=app_image_tag(source, dockerfile), context=f"{UPLOAD_DIR}/{name}",
                 platform=cfg.images.platform, base_image=cfg.images.app_base,
                 dockerfile=dockerfile),
             source="app_image.render_build_image_script",
             what="builds the image (`app.dockerfile`, BuildKit) for `images.platform` "
                  "unless the tag exists; prints its id"),
    ]


def _pinned_image(cfg: StackConfig) -> Step:
    return Step("image", after=("install-docker",), provides="app_image",
                script=releases.render_resolve_release_script(cfg.app.release),
                source="releases.render_resolve_release_script",
                what="with `app.release` pinned (a rollback), instead of the upload and "
                     "build: the pinned image's id (`previous`: read from the record of "
                     "releases), which this server must still hold; nothing is built")


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
    steps = release.PINNED_RELEASE_STEPS if cfg.app.pinned_release else release.RELEASE_STEPS
    script = Deferred(lambda values: release.render_release_script(values["app_image"],
                                                                   steps=steps),
                      ("app_image",))
    what = ("once per image (and environment): `migrate`, `collectstatic`, "
            "`createsuperuser` (unless a user has its login, by the model's "
            "`USERNAME_FIELD`) in a one-off container; its environment "
            "(the app's, plus the superuser's credentials) reaches `docker run` "
            "through a pipe, never a file")
    if cfg.app.pinned_release:
        what = ("once per image (and environment), for a pinned release: `migrate --check` "
                "(fails if the image has migrations the database lacks; nothing is applied "
                "or reversed) and `collectstatic` in a one-off container, its environment "
                "through a pipe")
    return [
        Step("release", after=("db-ca-file",), script=script, stdin=_env(cfg, True),
             stdin_doc="the release's environment", secret=True,
             triggers=(ValueOf("app_image"),),
             source="release.render_release_script, appenv.render_app_env(superuser_password=...)",
             what=what),
    ]


def app_slots(cfg: StackConfig, host: HostConfig) -> containers.SlotSpec:
    """The app on `host`, its image left to fill in (the id the first server's image step
    prints): published on the private address, on app.port or app.port + 1."""
    port = cfg.app.port
    container = containers.ContainerSpec(
        name=CONTAINER_NAME, image="", env_file=appenv.APP_ENV_PATH,
        volumes=(containers.Volume(appenv.DB_CA_PATH, appenv.DB_CA_PATH),),
        hashed_files=(appenv.DB_CA_PATH,),
        healthcheck=containers.Healthcheck(healthcheck_command(cfg.app.container_port)),
        healthy_within=180, stop_timeout=STOP_TIMEOUT)
    return containers.SlotSpec(container, address=host.private_address,
                               container_port=cfg.app.container_port, ports=(port, port + 1))


def _serve(cfg: StackConfig, host: HostConfig, release_after: str) -> list[Item]:
    slots = app_slots(cfg, host)
    start = Deferred(lambda values: containers.render_start_slot_script(
        replace(slots, container=replace(slots.container, image=values["app_image"]))),
        ("app_image",))
    origin = releases.release_origin(cfg.app.release)
    retire = Deferred(lambda values: containers.render_retire_slot_script(
        slots, int(values["slot_port"]), origin), ("slot_port",))
    prune = Deferred(lambda values: images.render_prune_app_images_script(values["app_image"]),
                     ("app_image",))
    return [
        Step("start", after=("env-file", "db-ca-file", "firewall", "image", release_after,
                             "@batch"),
             script=start, triggers=(HashOf("env-file"), HashOf("db-ca-file")),
             provides="slot_port", source="containers.render_start_slot_script",
             what="this release's container in the slot nginx does not route to (app.port "
                  "or app.port + 1), healthy, beside the running one; prints its port (a "
                  "new container that never gets healthy is removed: the running one keeps "
                  "serving)"),
        Step("retire", after=("start", "@switched"), script=retire,
             source="containers.render_retire_slot_script",
             what="once nginx routes to the new slot: the release recorded "
                  f"(`{containers.RELEASES_FILE}`: time, image id, `current`, `previous` or "
                  "`pinned`), the old container drained (no connection left), stopped "
                  "gracefully, removed"),
        Step("prune-images", after=("retire",), script=prune,
             triggers=(ValueOf("app_image"),), source="images.render_prune_app_images_script",
             what="once per image: old `djscale-app` images removed (keeps the current, the "
                  "newest previous, the release recorded before the current one and any a "
                  "container uses)"),
        Teardown("teardown", after=("install-docker",),
                 script=containers.render_teardown_script(
                     CONTAINER_NAME, STOP_TIMEOUT,
                     files=(appenv.APP_ENV_PATH, release.LEGACY_RELEASE_ENV_PATH,
                            appenv.DB_CA_PATH, UPLOAD_DIR, containers.SLOT_STATE_FILE,
                            containers.RELEASES_FILE)),
                 source="containers.render_teardown_script",
                 what="when the server leaves the stack: the app containers stopped and "
                      "removed, its env file, the database certificate and the uploads "
                      "deleted"),
    ]
