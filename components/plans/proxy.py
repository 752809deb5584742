"""The proxy's plan: nginx load-balancing the app servers, with a Let's Encrypt certificate.

Docker and the firewall -> maintenance mode's page, switch and deploy-time state ->
djscale-upstream-watch (`nginx.hostChecks`): python3, the program and its unit, and the
step that restarts it: it probes the servers of the live nginx.conf and refuses nginx's
connections, on the proxy, to one that stopped answering (components/upstream_watch.py) ->
the release switch (below) -> HTTP-only nginx.conf (only while there is no certificate: it serves the ACME webroot) ->
the nginx container (host network; the config *directory* is
mounted, so a swapped file is seen without a new container; re-created only when its
settings or image change) -> `certbot certonly --webroot` (a no-op while the certificate is
valid) -> the TLS nginx.conf (staged, `nginx -t`, swapped in, reloaded, never restarted) ->
the certificate issued again when its names changed (domainAliases: the live TLS config
answers every name's challenge) -> renewal script, service and timer; djscale's alert unit
and script; the daily check of the certificate nginx serves (script, service, timer) and the
operator's status command; both timers enabled. A failed renewal or check raises the
alert (components/render/alerts.py). When the proxy leaves the stack, its nginx container goes and the timers stop; certificates
stay.

nginx.conf lists every app server on `app.port`, whatever slot its release runs in: the
release switch is `upstream-slots`, the map of each server's live slot (the deploy value
`port@<server>`, its start step's output), applied on the proxy as iptables rules that send
each new connection nginx opens to the live slot (components/upstream_slots.py): no nginx
reload, so no client connection is dropped by one. It waits for `@app-starts` (every app
server's start step): nginx switches to a new release once it is healthy everywhere. Both
nginx.conf items wait for it and for `@app-starts` too: a new app server joins the upstream
only once it is healthy and routed; a change of the servers themselves (one added or
removed) is an nginx.conf change, and reloads nginx.
"""
from __future__ import annotations

from components.config import StackConfig
from components.render import (alerts, certbot, containers, firewall, maintenance, nginx,
                               packages, upstream_slots, upstream_watch)

from .docker_host import docker_host_items
from .items import Deferred, File, HashOf, HostPlan, Item, Step, Teardown, enable_step


def proxy_plan(cfg: StackConfig) -> HostPlan:
    items: list[Item] = [*docker_host_items(cfg, firewall.proxy_rules(cfg), "proxy"),
                         *_maintenance(cfg), *_host_checks(cfg), *_switch(cfg),
                         *_serve_http(cfg), *_certificate(cfg), *_renewal(cfg)]
    return HostPlan(cfg.proxy.name, "proxy", tuple(items))


def slot_port_value(server: str) -> str:
    """The deploy value holding the host port `server`'s current release runs on."""
    return f"port@{server}"


def _upstream(cfg: StackConfig, tls: bool) -> str:
    """nginx.conf with each app server on `app.port` (the slots are the switch's business)."""
    return nginx.render_nginx_conf(
        cfg, [(host.private_address, cfg.app.port) for host in cfg.app_servers], tls=tls)


def _switch(cfg: StackConfig) -> list[Item]:
    """The release switch: each app server's live slot, routed on the proxy."""
    names = tuple(slot_port_value(host.name) for host in cfg.app_servers)
    routes = Deferred(lambda values: upstream_slots.render_slots_map(
        [(host.private_address, cfg.app.port, int(values[name]))
         for host, name in zip(cfg.app_servers, names)]), names)
    files = [
        File("slots-program", after=("watch-tools",), path=upstream_slots.SLOTS_PROGRAM_PATH,
             mode="0755", content=upstream_slots.render_slots_program(),
             source="upstream_slots.render_slots_program",
             what="djscale-upstream-slots: the map of live slots as iptables nat rules, "
                  "Python's standard library only (components/upstream_slots.py)"),
        File("slots-service", after=("watch-tools",), path=upstream_slots.SLOTS_SERVICE_PATH,
             content=upstream_slots.render_slots_service(),
             source="upstream_slots.render_slots_service",
             what="applies the map at boot, before Docker starts nginx"),
    ]
    return [
        *files,
        enable_step("slots-enable", files, script=upstream_slots.render_enable_slots_script(),
                    undo=upstream_slots.render_disable_slots_script(),
                    source="upstream_slots.render_enable_slots_script (undone by "
                           "render_disable_slots_script)",
                    what="`systemctl daemon-reload`, the unit enabled"),
        File("upstream-slots", after=("slots-enable", "firewall", "@app-starts"),
             path=upstream_slots.SLOTS_STAGED_MAP_PATH, installs_as=upstream_slots.SLOTS_MAP_PATH,
             content=routes,
             activate=upstream_slots.render_activate_slots_script(
                 reload_nginx=cfg.nginx.upstream_keepalive > 0,
                 nginx_container=nginx.NGINX_CONTAINER_NAME, nginx_conf=nginx.NGINX_CONF_PATH),
             source="upstream_slots.render_slots_map, "
                    "upstream_slots.render_activate_slots_script",
             what="the release switch: each app server's live slot (`app.port` or "
                  "`app.port + 1`), checked, put in place and applied in one iptables "
                  "transaction; new connections go to the new slots, open ones finish where "
                  "they are; nginx is not reloaded (it is with `nginx.upstreamKeepalive`)"),
    ]


def _maintenance(cfg: StackConfig) -> list[Item]:
    """Before nginx serves the site: a stack deployed with maintenance.enabled comes up in
    maintenance mode."""
    return [
        File("maintenance-page", after=("install-docker",),
             path=maintenance.MAINTENANCE_PAGE_PATH,
             content=maintenance.render_maintenance_page(cfg),
             source="maintenance.render_maintenance_page",
             what="the page nginx answers with in maintenance mode (`maintenance.page`, or "
                  "djscale's)"),
        File("maintenance-command", after=("install-docker",),
             path=maintenance.MAINTENANCE_COMMAND_PATH, mode="0755",
             content=maintenance.render_maintenance_command(),
             source="maintenance.render_maintenance_command",
             what=f"the operator's switch: `on` makes `{maintenance.MAINTENANCE_FLAG}` "
                  f"(nginx answers 503 and the page to all but `firewall.adminCidrs`), "
                  f"`off` removes it, `status`"),
        Step("maintenance-mode", after=("maintenance-command",),
             script=maintenance.render_maintenance_mode_script(cfg),
             source="maintenance.render_maintenance_mode_script",
             what=f"`djscale-maintenance {'on' if cfg.maintenance.enabled else 'off'}` "
                  f"(`maintenance.enabled`), only when that value changes"),
    ]


def _serve_http(cfg: StackConfig) -> list[Item]:
    certificate = nginx.certificate_path(cfg.domain)
    return [
        File("nginx-http-conf", after=("install-docker", "upstream-slots", "@app-starts"),
             path=nginx.NGINX_STAGED_CONF_PATH, installs_as=nginx.NGINX_CONF_PATH,
             content=_upstream(cfg, tls=False),
             activate=nginx.render_activate_nginx_conf_script(unless_exists=certificate),
             source="nginx.render_nginx_conf(tls=False), "
                    "nginx.render_activate_nginx_conf_script(unless_exists=certificate)",
             what="HTTP-only config (ACME webroot), activated only while there is no "
                  "certificate"),
        Step("nginx", after=("nginx-http-conf", "firewall"),
             script=containers.render_run_container_script(nginx_container(cfg)),
             source="containers.render_run_container_script",
             what="nginx on the host network (image pulled when missing); config directory, "
                  "certificates and webroot mounted read-only"),
    ]


def nginx_container(cfg: StackConfig) -> containers.ContainerSpec:
    mounts = (nginx.NGINX_CONF_DIR, nginx.LETSENCRYPT_DIR, nginx.WEBROOT)
    return containers.ContainerSpec(
        name=nginx.NGINX_CONTAINER_NAME, image=cfg.images.nginx, pull=True,
        command=("nginx", "-g", "daemon off;", "-c", nginx.NGINX_CONF_PATH),
        network_mode="host", volumes=tuple(containers.Volume(d, d) for d in mounts),
        healthy_within=30)


def _certificate(cfg: StackConfig) -> list[Item]:
    return [
        Step("certbot", after=("nginx", "firewall"),
             script=certbot.render_certbot_obtain_script(cfg, certbot_image=cfg.images.certbot),
             source="certbot.render_certbot_obtain_script",
             what="`certbot certonly --webroot` in the certbot container (no-op while valid)"),
        File("nginx-tls-conf", after=("certbot", "nginx-http-conf", "upstream-slots",
                                      "@app-starts"),
             path=nginx.NGINX_STAGED_CONF_PATH, installs_as=nginx.NGINX_CONF_PATH,
             content=_upstream(cfg, tls=True),
             activate=nginx.render_activate_nginx_conf_script(),
             # a re-run of the bootstrap or of certbot may leave the HTTP-only file: follow it
             triggers=(HashOf("nginx-http-conf"), HashOf("certbot")),
             source="nginx.render_nginx_conf(tls=True), "
                    "nginx.render_activate_nginx_conf_script",
             what="the TLS config: staged, `nginx -t` in the running container, swapped in, "
                  "`nginx -s reload` (never a restart)"),
        # after the TLS config: it answers the challenges of every name, new ones included
        Step("certbot-names", after=("nginx-tls-conf",),
             script=certbot.render_certbot_names_script(cfg, certbot_image=cfg.images.certbot),
             source="certbot.render_certbot_names_script",
             what="the certificate issued again under the same name when its names are not "
                  "`domain` and `domainAliases` (`--renew-with-new-domains`), then `nginx -t` "
                  "and reload; a no-op otherwise"),
    ]


def _renewal(cfg: StackConfig) -> list[Item]:
    image = cfg.images.certbot
    files = [
        File("renew-script", after=("install-docker",), path=certbot.RENEW_SCRIPT_PATH,
             mode="0755", content=certbot.render_renew_script(cfg, certbot_image=image),
             source="certbot.render_renew_script",
             what="`certbot renew`, then `nginx -t` and reload after a renewal"),
        File("renew-service", after=("install-docker",), path=certbot.RENEW_SERVICE_PATH,
             content=certbot.render_renew_service(), source="certbot.render_renew_service",
             what="runs the renewal script; a failure raises the alert, a success clears it"),
        File("renew-timer", after=("install-docker",), path=certbot.RENEW_TIMER_PATH,
             content=certbot.render_renew_timer(), source="certbot.render_renew_timer",
             what="twice a day, randomized delay, persistent"),
        *_alerts(),
        *_expiry_check(cfg),
    ]
    enable = enable_step(
        "renew-enable", files, after=("nginx-tls-conf",),
        script=certbot.render_enable_renewal_script(),
        undo=certbot.render_disable_renewal_script(),
        source="certbot.render_enable_renewal_script (undone by "
               "render_disable_renewal_script)",
        what="`systemctl daemon-reload`, enable and start the renewal and expiry-check "
             "timers")
    teardown = Teardown(
        "teardown", after=("install-docker",),
        script=containers.render_teardown_script(nginx.NGINX_CONTAINER_NAME),
        source="containers.render_teardown_script",
        what="when the proxy leaves the stack: the nginx container stopped and removed")
    return [*files, enable, teardown]


def _host_checks(cfg: StackConfig) -> list[Item]:
    """djscale-upstream-watch (`nginx.hostChecks`): probes the servers of the live nginx.conf
    and refuses nginx's connections, on the proxy, to one that stopped answering."""
    files = [
        File("watch-program", after=("watch-tools",), path=upstream_watch.WATCH_PROGRAM_PATH,
             mode="0755", content=upstream_watch.render_watch_program(),
             source="upstream_watch.render_watch_program",
             what="djscale-upstream-watch: TCP probes of the app servers, iptables rules "
                  "for the ones out, Python's standard library only "
                  "(components/upstream_watch.py)"),
        File("watch-service", after=("watch-tools",), path=upstream_watch.WATCH_SERVICE_PATH,
             content=upstream_watch.render_watch_service(),
             source="upstream_watch.render_watch_service",
             what="runs the watcher, restarted when it stops; its rules removed when it does"),
    ]
    return [
        Step("watch-tools", after=("firewall",),
             script=packages.render_install_packages_script(("python3",)),
             source="packages.render_install_packages_script",
             what="python3, for the watcher and the release switch (no-op when installed; "
                  "iptables comes with ufw)"),
        *files,
        enable_step("watch-enable", files, script=upstream_watch.render_enable_watch_script(cfg),
                    undo=upstream_watch.render_disable_watch_script(),
                    source="upstream_watch.render_enable_watch_script (undone by "
                           "render_disable_watch_script)",
                    what=("`systemctl restart djscale-upstream-watch`, done after its first "
                          "round of probes" if cfg.nginx.host_checks else
                          "the watcher stopped and disabled (`nginx.hostChecks: false`)")),
    ]


def _alerts() -> list[File]:
    return [
        File("alert-script", after=("install-docker",), path=alerts.ALERT_SCRIPT_PATH,
             mode="0755", content=alerts.render_alert_script(),
             source="alerts.render_alert_script",
             what=f"a failed unit: a critical journal entry and "
                  f"`{alerts.ALERT_STATE_DIR}/<unit>.failed`; a success removes it"),
        File("alert-unit", after=("install-docker",), path=alerts.ALERT_UNIT_PATH,
             content=alerts.render_alert_unit(), source="alerts.render_alert_unit",
             what="`OnFailure=` of the renewal and the expiry check: runs the alert script"),
    ]


def _expiry_check(cfg: StackConfig) -> list[File]:
    days = cfg.acme.expiry_warning_days
    return [
        File("expiry-script", after=("install-docker",), path=certbot.CHECK_SCRIPT_PATH,
             mode="0755", content=certbot.render_certificate_check_script(cfg),
             source="certbot.render_certificate_check_script",
             what=f"fails when the certificate nginx serves (127.0.0.1:443, SNI = domain) "
                  f"expires within {days} days (`acme.expiryWarningDays`), or none is served"),
        File("expiry-service", after=("install-docker",),
             path=certbot.CHECK_SERVICE_PATH,
             content=certbot.render_certificate_check_service(),
             source="certbot.render_certificate_check_service",
             what="runs the expiry check; a failure raises the alert, a success clears it"),
        File("expiry-timer", after=("install-docker",), path=certbot.CHECK_TIMER_PATH,
             content=certbot.render_certificate_check_timer(),
             source="certbot.render_certificate_check_timer",
             what="once a day, randomized delay, persistent"),
        File("status-command", after=("install-docker",),
             path=certbot.STATUS_COMMAND_PATH, mode="0755",
             content=certbot.render_certificate_status_script(),
             source="certbot.render_certificate_status_script",
             what="the operator's command: served certificate, last renewal and check, "
                  "timers, alerts"),
    ]
