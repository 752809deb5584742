"""Certificates on the proxy host: the first `certbot certonly --webroot`, and the twice-daily
renewal (a host script run by a systemd timer) that reloads nginx after a renewal.

certbot runs in its own container (cfg.images.certbot); nginx serves the challenge files
from the shared webroot, so neither has to stop.
"""
from __future__ import annotations

import posixpath
from typing import Optional

from components.config import StackConfig
from components.render.nginx import (LETSENCRYPT_DIR, NGINX_CONF_PATH, NGINX_CONTAINER_NAME,
                                     WEBROOT)
from components.render.templating import render_script, render_template

RENEW_SCRIPT_PATH = "/usr/local/sbin/djscale-certbot-renew"
RENEW_SERVICE_PATH = "/etc/systemd/system/djscale-certbot-renew.service"
RENEW_TIMER_PATH = "/etc/systemd/system/djscale-certbot-renew.timer"


def render_certbot_obtain_script(cfg: StackConfig, *, certbot_image: str,
                                 webroot: str = WEBROOT,
                                 letsencrypt_dir: str = LETSENCRYPT_DIR,
                                 extra_ca_bundle: Optional[str] = None,
                                 docker_network: Optional[str] = None) -> str:
    """`extra_ca_bundle`: a host path of a CA bundle for a private ACME server (mounted
    read-only, REQUESTS_CA_BUNDLE); `docker_network`: `docker run --network` for certbot."""
    return render_script(
        "certbot-obtain.sh.j2", domain=cfg.domain, server=cfg.acme.directory_url,
        email=cfg.acme.email or None, image=certbot_image, webroot=webroot,
        letsencrypt_dir=letsencrypt_dir, extra_ca_bundle=extra_ca_bundle,
        docker_network=docker_network)


def render_renew_script(cfg: StackConfig, *, certbot_image: str, webroot: str = WEBROOT,
                        letsencrypt_dir: str = LETSENCRYPT_DIR,
                        nginx_container: str = NGINX_CONTAINER_NAME,
                        nginx_conf: str = NGINX_CONF_PATH,
                        extra_ca_bundle: Optional[str] = None,
                        docker_network: Optional[str] = None) -> str:
    """The host script at RENEW_SCRIPT_PATH. `nginx_conf` is the config path inside the nginx
    container (nginx -t and -s reload read it: the pid file path comes from it)."""
    del cfg  # the renewal configs certbot wrote at issuance hold domain, server and webroot
    return render_script(
        "certbot-renew.sh.j2", image=certbot_image, webroot=webroot,
        letsencrypt_dir=letsencrypt_dir, nginx_container=nginx_container,
        nginx_conf=nginx_conf, extra_ca_bundle=extra_ca_bundle, docker_network=docker_network)


def render_renew_service(script_path: str = RENEW_SCRIPT_PATH) -> str:
    if not script_path.startswith("/") or any(c.isspace() for c in script_path):
        raise ValueError(f"{script_path!r}: ExecStart needs an absolute path without spaces")
    return render_template("certbot-renew.service.j2", script_path=script_path)


def render_renew_timer() -> str:
    return render_template("certbot-renew.timer.j2")


def render_enable_renewal_script(timer_path: str = RENEW_TIMER_PATH) -> str:
    """Root script: reload systemd's units and start the renewal timer (now and at boot)."""
    return render_script("certbot-renew-enable.sh.j2", enable=True,
                         timer_unit=posixpath.basename(timer_path))


def render_disable_renewal_script(timer_path: str = RENEW_TIMER_PATH) -> str:
    """Root script for the step's removal: stop the renewal timer and leave it disabled."""
    return render_script("certbot-renew-enable.sh.j2", enable=False,
                         timer_unit=posixpath.basename(timer_path))
