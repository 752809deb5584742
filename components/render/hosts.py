"""What each server receives, host by host: every rendered file and script in one list.

Used by the inspect command (`python -m components.render`) and by the README table. The
components create the matching resources; the paths here are the ones they use.

Files are installed at `path` with `mode`. Steps are scripts a remote command runs as root
(`sudo -n bash -c <script>`); they are listed under `steps/` with the data they read on stdin.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from components.config import HostConfig, StackConfig
from components.render import (appenv, certbot, docker_install, firewall, images, nginx,
                               postgres, release)
from components.render.release import RELEASE_ENV_PATH

# The app image's id is known only once the image is built on the server.
APP_IMAGE_PLACEHOLDER = "<output:app image id>"


@dataclass(frozen=True)
class Secrets:
    """Secret values to render with: placeholders for inspect, real values inside apply."""

    db_password: str = "<secret:database password>"
    secret_key: str = "<secret:django secret key>"
    static_storage_secret_key: str = "<secret:static storage secret key>"
    superuser_password: str = "<secret:superuser password>"


PLACEHOLDERS = Secrets()


@dataclass(frozen=True)
class Rendered:
    path: str  # absolute server path for files; "steps/NN-name.sh" for scripts
    content: str
    renderer: str  # the function that produced it
    mode: str = "0644"
    owner: str = "root:root"
    stdin: Optional[str] = None  # for steps: what the command reads on stdin

    @property
    def is_step(self) -> bool:
        return self.path.startswith("steps/")


def _step(number: int, name: str, content: str, renderer: str,
          stdin: Optional[str] = None) -> Rendered:
    return Rendered(f"steps/{number:02d}-{name}.sh", content, renderer, "0755", stdin=stdin)


def database_host(cfg: StackConfig, client_addresses: list[str],
                  secrets: Secrets = PLACEHOLDERS) -> list[Rendered]:
    """`client_addresses`: every address the database admits (pg_hba and firewall)."""
    del secrets  # the password reaches the setup step on stdin, never a file
    return [
        _step(1, "install-postgres", postgres.render_install_postgres_script(cfg),
              "postgres.render_install_postgres_script"),
        Rendered(postgres.STAGED_CONF, postgres.render_postgresql_conf(cfg),
                 "postgres.render_postgresql_conf"),
        Rendered(postgres.STAGED_HBA, postgres.render_pg_hba(cfg, client_addresses),
                 "postgres.render_pg_hba", "0640"),
        _step(2, "configure-postgres", postgres.render_configure_postgres_script(cfg),
              "postgres.render_configure_postgres_script"),
        _step(3, "db-setup", postgres.render_db_setup_script(cfg),
              "postgres.render_db_setup_script", stdin="the database password"),
        _step(4, "firewall", firewall.render_ufw_script(
            firewall.database_rules(cfg, client_addresses)),
              "firewall.render_ufw_script(database_rules)"),
    ]


@dataclass(frozen=True)
class DatabaseEndpoint:
    """Where the app servers find the database (values or placeholders for outputs)."""

    host: str
    port: object  # int, or a placeholder when another stack provides it
    name: str
    user: str


def database_endpoint(cfg: StackConfig) -> DatabaseEndpoint:
    db = cfg.database
    if db.host is not None:
        return DatabaseEndpoint(db.host.private_address, db.port, db.name, db.user)
    # Another stack's outputs (database.stack): known only at deploy time.
    return DatabaseEndpoint(*(f"<output:{db.stack} {what}>"
                              for what in ("privateAddress", "port", "dbName", "dbUser")))


def app_host(cfg: StackConfig, host: HostConfig, *, database: DatabaseEndpoint,
             runs_release: bool, secrets: Secrets = PLACEHOLDERS,
             app_image: str = APP_IMAGE_PLACEHOLDER) -> list[Rendered]:
    env = dict(db_host=database.host, db_port=database.port, db_name=database.name,
               db_user=database.user, db_password=secrets.db_password,
               secret_key=secrets.secret_key,
               s3_secret_key=secrets.static_storage_secret_key)
    rules = firewall.app_rules(cfg, cfg.proxy.private_address, host)
    files = [
        _step(1, "install-docker", docker_install.render_install_docker_script(cfg.ssh.user),
              "docker_install.render_install_docker_script"),
        _step(2, "firewall", firewall.render_ufw_script(rules),
              "firewall.render_ufw_script(app_rules)"),
        Rendered("/etc/ufw/after.rules", firewall.render_docker_user_block(
            {cfg.app.port: [cfg.proxy.private_address]}),
                 "firewall.render_docker_user_block (the block between the djscale markers)",
                 "0640"),
        Rendered(appenv.APP_ENV_PATH, appenv.render_app_env(cfg, **env),
                 "appenv.render_app_env", "0600"),
    ]
    if runs_release:
        files.append(Rendered(
            RELEASE_ENV_PATH,
            appenv.render_app_env(cfg, **env, superuser_password=secrets.superuser_password),
            "appenv.render_app_env(superuser_password=...)", "0600"))
        files.append(_step(3, "release", release.render_release_script(app_image),
                           "release.render_release_script (once per app image)"))
    step = sum(item.is_step for item in files) + 1  # after the container
    files.append(_step(step, "prune-app-images",
                       images.render_prune_app_images_script(app_image),
                       "images.render_prune_app_images_script (after the container, once per "
                       "app image)"))
    return files


def proxy_host(cfg: StackConfig, app_private_addresses: list[str]) -> list[Rendered]:
    """Each nginx.conf is installed as nginx.conf.new by the command that then runs its
    activation step: the HTTP-only one only while there is no certificate, then the TLS one."""
    image = cfg.images.certbot
    return [
        _step(1, "install-docker", docker_install.render_install_docker_script(cfg.ssh.user),
              "docker_install.render_install_docker_script"),
        _step(2, "firewall", firewall.render_ufw_script(firewall.proxy_rules(cfg)),
              "firewall.render_ufw_script(proxy_rules)"),
        Rendered("/etc/ufw/after.rules", firewall.render_docker_user_block({}),
                 "firewall.render_docker_user_block (the block between the djscale markers)",
                 "0640"),
        Rendered(nginx.NGINX_CONF_PATH + ".http-only",
                 nginx.render_nginx_conf(cfg, app_private_addresses, tls=False),
                 "nginx.render_nginx_conf(tls=False): staged as nginx.conf.new, live until "
                 "the certificate exists"),
        _step(3, "activate-http-only-nginx-conf", nginx.render_activate_nginx_conf_script(
            unless_exists=nginx.certificate_path(cfg.domain)),
              "nginx.render_activate_nginx_conf_script(unless_exists=certificate)"),
        _step(4, "certbot-obtain", certbot.render_certbot_obtain_script(
            cfg, certbot_image=image), "certbot.render_certbot_obtain_script"),
        Rendered(nginx.NGINX_CONF_PATH,
                 nginx.render_nginx_conf(cfg, app_private_addresses, tls=True),
                 "nginx.render_nginx_conf(tls=True): staged as nginx.conf.new"),
        _step(5, "activate-tls-nginx-conf", nginx.render_activate_nginx_conf_script(),
              "nginx.render_activate_nginx_conf_script"),
        Rendered(certbot.RENEW_SCRIPT_PATH,
                 certbot.render_renew_script(cfg, certbot_image=image),
                 "certbot.render_renew_script", "0755"),
        Rendered(certbot.RENEW_SERVICE_PATH, certbot.render_renew_service(),
                 "certbot.render_renew_service"),
        Rendered(certbot.RENEW_TIMER_PATH, certbot.render_renew_timer(),
                 "certbot.render_renew_timer"),
        _step(6, "enable-renewal", certbot.render_enable_renewal_script(),
              "certbot.render_enable_renewal_script (undone by render_disable_renewal_script)"),
    ]


def every_host(cfg: StackConfig, secrets: Secrets = PLACEHOLDERS,
               app_image: str = APP_IMAGE_PLACEHOLDER) -> dict[str, list[Rendered]]:
    """{host name: what it receives}, for the whole stack, in deploy order."""
    app_addresses = [h.private_address for h in cfg.app_servers]
    hosts: dict[str, list[Rendered]] = {}
    if cfg.database.host is not None:  # own app servers + database.allowedClients
        hosts[cfg.database.host.name] = database_host(
            cfg, cfg.database_client_addresses(), secrets)
    database = database_endpoint(cfg)
    for index, host in enumerate(cfg.app_servers):
        hosts[host.name] = app_host(cfg, host, database=database, runs_release=index == 0,
                                    secrets=secrets, app_image=app_image)
    hosts[cfg.proxy.name] = proxy_host(cfg, app_addresses)
    return hosts
