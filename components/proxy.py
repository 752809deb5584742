"""ProxyHost: nginx load-balancing the app servers, with a Let's Encrypt certificate.

Steps, in order:
  install Docker -> firewall (80/443 open, SSH from admin CIDRs) -> Docker provider
  -> HTTP-only nginx.conf (only while there is no certificate: it serves the ACME webroot)
  -> nginx container (network_mode host; mounts the config *directory*, so a new file is
     seen without replacing the container)
  -> `certbot certonly --webroot` in the certbot container (a no-op while the certificate
     is valid) -> the full TLS nginx.conf: staged, `nginx -t` against the staged file,
     swapped in, `nginx -s reload -c <nginx.conf>` (no restart)
  -> renewal script + systemd service/timer (twice daily; its deploy hook validates and
     reloads nginx).

The nginx config steps wait for the app containers: a new app server joins the upstream
only once its container is healthy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import pulumi
import pulumi_docker as docker

from components.config import StackConfig
from components.remote import (
    CONTAINER_LOG_OPTS, SshAccess, content_hash, remote_file, remote_input_step, remote_step,
)
from components.render import certbot, docker_install, firewall, nginx
from components.render.nginx import render_nginx_conf_command

NGINX_DIR = nginx.NGINX_CONF_DIR  # mounted as a directory: a swapped file is seen at once
NGINX_CONF = nginx.NGINX_CONF_PATH
NGINX_CONTAINER = nginx.NGINX_CONTAINER_NAME  # the renewal hook reloads it by this name
WEBROOT = nginx.WEBROOT
LETSENCRYPT_DIR = nginx.LETSENCRYPT_DIR
RENEW_SCRIPT = certbot.RENEW_SCRIPT_PATH
RENEW_SERVICE = certbot.RENEW_SERVICE_PATH
RENEW_TIMER = certbot.RENEW_TIMER_PATH


# --- the component ---------------------------------------------------------------------

@dataclass(frozen=True)
class ProxyHostArgs:
    cfg: StackConfig
    ssh: SshAccess
    app_private_addresses: Sequence[pulumi.Input[str]]
    app_containers: Sequence[pulumi.Resource] = field(default_factory=tuple)


class ProxyHost(pulumi.ComponentResource):
    def __init__(self, name: str, args: ProxyHostArgs,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("djscale:index:ProxyHost", name, None, opts)
        cfg = args.cfg
        host = cfg.proxy
        conn = args.ssh.connection(host)

        def after(*deps: pulumi.Resource, **kw) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, depends_on=list(deps), **kw)

        install = remote_step(
            f"{name}-install-docker", connection=conn,
            script=docker_install.render_install_docker_script(cfg.ssh.user), opts=after())
        fw = remote_step(
            f"{name}-firewall", connection=conn,
            script=firewall.render_ufw_script(firewall.proxy_rules(cfg)),
            opts=after(install))

        addresses = pulumi.Output.all(*args.app_private_addresses)
        http_conf = addresses.apply(lambda a: nginx.render_nginx_conf(cfg, a, tls=False))
        tls_conf = addresses.apply(lambda a: nginx.render_nginx_conf(cfg, a, tls=True))
        cert = nginx.certificate_path(cfg.domain, LETSENCRYPT_DIR)

        bootstrap_conf = remote_input_step(
            f"{name}-nginx-http-conf", connection=conn, content=http_conf,
            create=render_nginx_conf_command(unless_exists=cert),
            opts=after(install, *args.app_containers))

        provider = args.ssh.docker_provider(f"{name}-docker", host, depends_on=[install],
                                            parent=self)
        image = docker.RemoteImage(
            f"{name}-nginx-image", name=cfg.images.nginx, keep_locally=True,
            opts=pulumi.ResourceOptions(parent=self, provider=provider))
        self.container = docker.Container(
            f"{name}-nginx",
            name=NGINX_CONTAINER,
            image=image.image_id,
            command=["nginx", "-g", "daemon off;", "-c", NGINX_CONF],
            network_mode="host",
            restart="unless-stopped",
            log_driver="json-file", log_opts=CONTAINER_LOG_OPTS,  # bounded logs
            volumes=[
                docker.ContainerVolumeArgs(host_path=NGINX_DIR, container_path=NGINX_DIR,
                                           read_only=True),
                docker.ContainerVolumeArgs(host_path=LETSENCRYPT_DIR,
                                           container_path=LETSENCRYPT_DIR, read_only=True),
                docker.ContainerVolumeArgs(host_path=WEBROOT, container_path=WEBROOT,
                                           read_only=True),
            ],
            opts=pulumi.ResourceOptions(parent=self, provider=provider,
                                        depends_on=[bootstrap_conf, fw],
                                        delete_before_replace=True))

        obtain_script = certbot.render_certbot_obtain_script(
            cfg, certbot_image=cfg.images.certbot, webroot=WEBROOT,
            letsencrypt_dir=LETSENCRYPT_DIR)
        obtain = remote_step(
            f"{name}-certbot", connection=conn, script=obtain_script,
            opts=after(self.container, fw))

        tls = remote_input_step(
            f"{name}-nginx-tls-conf", connection=conn, content=tls_conf,
            create=render_nginx_conf_command(),
            # a re-run of the bootstrap or of certbot may leave the HTTP-only file: follow it
            extra_triggers=[content_hash(http_conf), content_hash(obtain_script)],
            opts=after(obtain, bootstrap_conf, *args.app_containers))

        renew_contents = {
            RENEW_SCRIPT: (certbot.render_renew_script(
                cfg, certbot_image=cfg.images.certbot, webroot=WEBROOT,
                letsencrypt_dir=LETSENCRYPT_DIR, nginx_container=NGINX_CONTAINER,
                nginx_conf=NGINX_CONF), "0755"),
            RENEW_SERVICE: (certbot.render_renew_service(RENEW_SCRIPT), "0644"),
            RENEW_TIMER: (certbot.render_renew_timer(), "0644"),
        }
        renew_files = [
            remote_file(f"{name}-renew-{step}", connection=conn, path=path, content=content,
                        mode=mode, opts=after(install))
            for step, (path, (content, mode)) in zip(
                ("script", "service", "timer"), renew_contents.items())
        ]
        self.renewal = remote_step(
            f"{name}-renew-enable", connection=conn,
            script=certbot.render_enable_renewal_script(RENEW_TIMER),
            triggers=[content_hash(c) for c, _ in renew_contents.values()],
            delete=certbot.render_disable_renewal_script(RENEW_TIMER),
            opts=after(tls, *renew_files))

        self.public_address = pulumi.Output.from_input(host.address)
        self.private_address = pulumi.Output.from_input(host.private_address)
        self.url = tls.urn.apply(lambda _: f"https://{cfg.domain}/")
        self.register_outputs({
            "publicAddress": self.public_address,
            "privateAddress": self.private_address,
            "url": self.url,
        })
