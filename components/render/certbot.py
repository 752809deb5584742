"""Certificates on the proxy host: the first `certbot certonly --webroot`, the twice-daily
renewal (a host script run by a systemd timer) that reloads nginx after a renewal, the daily
check of the certificate nginx serves, and the operator's status command.

certbot runs in its own container (cfg.images.certbot); nginx serves the challenge files
from the shared webroot, so neither has to stop. A failed renewal or expiry check raises
djscale's alert (components/render/alerts.py): Let's Encrypt sends no expiry emails, and with
HSTS an expired certificate takes the site down.
"""
from __future__ import annotations

import posixpath
from typing import Optional, Sequence

from components.config import StackConfig
from components.render import alerts
from components.render.nginx import (LETSENCRYPT_DIR, NGINX_CONF_PATH, NGINX_CONTAINER_NAME,
                                     WEBROOT)
from components.render.templating import render_script, render_template

RENEW_SCRIPT_PATH = "/usr/local/sbin/djscale-certbot-renew"
RENEW_SERVICE_PATH = "/etc/systemd/system/djscale-certbot-renew.service"
RENEW_TIMER_PATH = "/etc/systemd/system/djscale-certbot-renew.timer"
CHECK_SCRIPT_PATH = "/usr/local/sbin/djscale-certificate-check"
CHECK_SERVICE_PATH = "/etc/systemd/system/djscale-certificate-check.service"
CHECK_TIMER_PATH = "/etc/systemd/system/djscale-certificate-check.timer"
STATUS_COMMAND_PATH = "/usr/local/sbin/djscale-certificate-status"
TIMER_PATHS = (RENEW_TIMER_PATH, CHECK_TIMER_PATH)


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
        docker_network=docker_network, name_args=_name_args(cfg))


def render_certbot_names_script(cfg: StackConfig, *, certbot_image: str,
                                webroot: str = WEBROOT,
                                letsencrypt_dir: str = LETSENCRYPT_DIR,
                                nginx_container: str = NGINX_CONTAINER_NAME,
                                nginx_conf: str = NGINX_CONF_PATH,
                                extra_ca_bundle: Optional[str] = None,
                                docker_network: Optional[str] = None) -> str:
    """Root script, run once the TLS config is live: the certificate issued again, under
    the same name, when its names are not `cfg.certificate_names` (certbot's
    --renew-with-new-domains), then nginx checked and reloaded; else nothing changes."""
    return render_script(
        "certbot-names.sh.j2", domain=cfg.domain, server=cfg.acme.directory_url,
        email=cfg.acme.email or None, image=certbot_image, webroot=webroot,
        letsencrypt_dir=letsencrypt_dir, nginx_container=nginx_container,
        nginx_conf=nginx_conf, extra_ca_bundle=extra_ca_bundle,
        docker_network=docker_network, name_args=_name_args(cfg))


def _name_args(cfg: StackConfig) -> list[str]:
    """`-d <name>` for each name on the certificate, `domain` first."""
    return [word for name in cfg.certificate_names for word in ("-d", name)]


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


def render_renew_service(script_path: str = RENEW_SCRIPT_PATH,
                         alert_script: str = alerts.ALERT_SCRIPT_PATH) -> str:
    return render_template("certbot-renew.service.j2",
                           script_path=alerts.systemd_exec_path(script_path),
                           **alerts.unit_hooks(alert_script))


def render_renew_timer() -> str:
    return render_template("certbot-renew.timer.j2")


def render_certificate_check_script(cfg: StackConfig, *, address: str = "127.0.0.1",
                                    port: int = 443) -> str:
    """The host script at CHECK_SCRIPT_PATH: fails when the certificate served on
    address:port for the domain expires within `acme.expiryWarningDays` days (nginx shares
    the host's network, so the production default is the proxy's own loopback)."""
    return render_script("certificate-check.sh.j2", domain=cfg.domain, address=address,
                         port=port, warning_days=cfg.acme.expiry_warning_days)


def render_certificate_check_service(script_path: str = CHECK_SCRIPT_PATH,
                                     alert_script: str = alerts.ALERT_SCRIPT_PATH) -> str:
    return render_template("certificate-check.service.j2",
                           script_path=alerts.systemd_exec_path(script_path),
                           **alerts.unit_hooks(alert_script))


def render_certificate_check_timer() -> str:
    return render_template("certificate-check.timer.j2")


def render_certificate_status_script(check_script: str = CHECK_SCRIPT_PATH,
                                     state_dir: str = alerts.ALERT_STATE_DIR) -> str:
    """The operator's command at STATUS_COMMAND_PATH (README, Operations)."""
    return render_script("certificate-status.sh.j2", check_script=check_script,
                         state_dir=state_dir,
                         renew_unit=posixpath.basename(RENEW_SERVICE_PATH),
                         check_unit=posixpath.basename(CHECK_SERVICE_PATH))


def render_enable_renewal_script(timer_paths: Sequence[str] = TIMER_PATHS) -> str:
    """Root script: reload systemd's units and start the certificate timers (now and at
    boot): the renewal and the expiry check."""
    return render_script("certbot-renew-enable.sh.j2", enable=True,
                         timer_units=[posixpath.basename(p) for p in timer_paths])


def render_disable_renewal_script(timer_paths: Sequence[str] = TIMER_PATHS) -> str:
    """Root script for the step's removal: stop the certificate timers, leave them disabled."""
    return render_script("certbot-renew-enable.sh.j2", enable=False,
                         timer_units=[posixpath.basename(p) for p in timer_paths])
