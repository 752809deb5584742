"""nginx on the proxy host: nginx.conf (assets/templates/nginx.conf.j2) and the script that
activates a new one (assets/templates/nginx-activate.sh.j2).

nginx.conf is rendered twice in a deploy: `tls=False` before the certificate exists (ACME
challenges on port 80, nothing that needs the certificate), then `tls=True`. Each is staged
next to the live file and activated: checked by the running nginx, swapped in, reloaded.
The paths are keyword arguments with production defaults so a test can point them into a
scratch directory and run the real nginx on the result.

The config is written for nginx 1.25.1 or later, as `images.nginx` requires (the default is
the 1.30 stable branch): HTTP/2 is switched on with `http2 on;` (the `http2` parameter of
`listen` is deprecated since 1.25.1). `legacy_nginx=True` renders the older forms instead,
for the one place that runs an older nginx: the renderer tests, which serve through the
config with this machine's Debian 12 nginx 1.22 (it rejects `http2 on;`). The test bed's
nginx image is Debian 13's nginx 1.26, so the bed deploys the production form.

TLS follows Mozilla's "intermediate" profile, Server Side TLS guidelines 6.0
(https://ssl-config.mozilla.org/guidelines/6.0.json; the generator's nginx output,
mozilla/ssl-config-generator src/js/helpers/nginx.js): TLS 1.2 and 1.3; for TLS 1.2 only
ECDHE key exchange with AES-GCM or ChaCha20-Poly1305; curves X25519, P-256, P-384; the
client's cipher order; a one-day shared session cache; HSTS for two years. Two deliberate
differences from the 6.0 lists: no X25519MLKEM768 group (OpenSSL before 3.5, such as
Debian 12's, refuses the whole curve list, and nginx with it), and tickets stay on only
where nginx rotates their keys itself (1.23.2 and later, with the shared cache), as the
generator does.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Optional, Sequence, Union

from components.config import StackConfig, rules
from components.render.files import render_install_file_command, render_run_script_command
from components.render.templating import render_script, render_template

# Where the proxy host keeps the config; the nginx container mounts the directory
# (not the file: an atomic replace makes a new inode that a file bind mount never sees).
NGINX_CONF_DIR = "/etc/djscale/nginx"
NGINX_CONF_PATH = f"{NGINX_CONF_DIR}/nginx.conf"  # the container runs `nginx -c` this file
NGINX_STAGED_CONF_PATH = f"{NGINX_CONF_PATH}.new"  # a new config waits here for its check
NGINX_CONTAINER_NAME = "djscale-nginx"
# Maintenance mode (components/render/maintenance.py): the flag nginx looks for on every
# request, and the page it answers with; both in the mounted config directory.
MAINTENANCE_FLAG = f"{NGINX_CONF_DIR}/maintenance.on"
MAINTENANCE_PAGE_PATH = f"{NGINX_CONF_DIR}/maintenance/index.html"
LETSENCRYPT_DIR = "/etc/letsencrypt"
WEBROOT = "/var/www/certbot"

# Mozilla intermediate (guidelines 6.0): the TLS 1.2 suites, in the profile's order (TLS 1.3's
# own suites are OpenSSL's defaults, all three in the profile), and the key exchange groups.
TLS_PROTOCOLS = ("TLSv1.2", "TLSv1.3")
TLS12_CIPHERS = ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
                 "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
                 "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305")
ECDH_CURVES = ("X25519", "prime256v1", "secp384r1")
HSTS_MAX_AGE = 63072000  # two years: the profile's hsts_min_age

# Request headers a client could send to make the app believe another scheme, host, port,
# path prefix or client: never passed on (X-Forwarded-For, X-Real-IP and X-Forwarded-Proto
# are set by nginx itself). Django reads X-Forwarded-Host/-Port when told to
# (USE_X_FORWARDED_HOST/PORT), gunicorn X-Forwarded-Protocol/-Ssl by default
# (secure_scheme_headers), other frameworks the rest; RFC 7239's Forwarded carries all of it.
# Spellings with underscores never pass: nginx drops them (underscores_in_headers off).
CLEARED_REQUEST_HEADERS = ("Forwarded", "X-Forwarded-Host", "X-Forwarded-Port",
                           "X-Forwarded-Prefix", "X-Forwarded-Protocol", "X-Forwarded-Scheme",
                           "X-Forwarded-Ssl")

# One nginx word: no whitespace, quotes, semicolons or braces can end a directive early.
_WORD = re.compile(r"[A-Za-z0-9._:/\[\]@+-]+")
# Times and sizes: the config's own rules (one definition, components/config/rules.py).
_SIZE = rules.NGINX_SIZE
_TIME = rules.NGINX_TIME
_RATE = rules.NGINX_RATE


def _word(what: str, value: str, pattern: re.Pattern = _WORD) -> str:
    if not pattern.fullmatch(value):
        raise ValueError(f"{what}: {value!r} is not valid in nginx.conf")
    return value


def _login_path(value: str) -> str:
    if rules.url_path_problem(value):
        raise ValueError(f"nginx.loginPaths: {value!r} is not valid in nginx.conf")
    return value


def _geo_networks(cidrs: Sequence[str]) -> list[str]:
    """`firewall.adminCidrs` as nginx's `geo` takes them. A whole address family is written
    as its two halves: `0.0.0.0/0` would repeat the block's default (nginx warns), and
    `default` covers both families. 255.255.255.255 is left out: nginx cannot parse that
    address (it is INADDR_NONE to inet_addr), and no client sends from it."""
    networks: list[str] = []
    for cidr in cidrs:
        network = ipaddress.ip_network(cidr)
        if network.prefixlen == 0:
            networks += [str(half) for half in network.subnets()]
        elif network != ipaddress.ip_network("255.255.255.255/32"):
            networks.append(str(network))
    return list(dict.fromkeys(networks))


def _upstream_servers(upstreams: Sequence[Union[str, tuple[str, int]]],
                      default_port: int) -> list[str]:
    """`address` (on `default_port`) or `(address, port)` entries, as nginx server lines'
    targets: one per address, sorted."""
    ports = {}
    for entry in upstreams:
        address, port = (entry, default_port) if isinstance(entry, str) else entry
        ports[ipaddress.ip_address(address)] = int(port)
    ips = sorted(ports, key=lambda ip: (ip.version, ip))
    return [f"[{ip}]:{ports[ip]}" if ip.version == 6 else f"{ip}:{ports[ip]}" for ip in ips]


def render_nginx_conf(cfg: StackConfig,
                      app_private_addresses: Sequence[Union[str, tuple[str, int]]], *, tls: bool,
                      letsencrypt_dir: str = LETSENCRYPT_DIR, webroot: str = WEBROOT,
                      pid_path: str = "/var/run/nginx.pid",
                      error_log: str = "/var/log/nginx/error.log",
                      access_log: str = "/var/log/nginx/access.log",
                      mime_types: str = "/etc/nginx/mime.types",
                      user: Optional[str] = None, ipv6: bool = True,
                      maintenance_flag: str = MAINTENANCE_FLAG,
                      maintenance_page: str = MAINTENANCE_PAGE_PATH,
                      legacy_nginx: bool = False) -> str:
    """The full nginx.conf. `user=None` leaves the worker user to the image's build default
    (`nginx` in the official image, `www-data`/`nobody` in distribution builds).
    `legacy_nginx=True`: for nginx older than 1.25.1, tests only (see the module docstring).
    `app_private_addresses`: each app server's address, or (address, port) with the host
    port of the slot its current release runs in (app.port or app.port + 1)."""
    if not app_private_addresses:
        raise ValueError("nginx needs at least one app server")
    nginx = cfg.nginx
    servers = _upstream_servers(app_private_addresses, cfg.app.port)
    return render_template(
        "nginx.conf.j2",
        tls=tls,
        ipv6=ipv6,
        legacy_nginx=bool(legacy_nginx),
        tls_protocols=" ".join(TLS_PROTOCOLS),
        tls12_ciphers=":".join(TLS12_CIPHERS),
        ecdh_curves=":".join(ECDH_CURVES),
        cleared_headers=CLEARED_REQUEST_HEADERS,
        hsts=f"max-age={HSTS_MAX_AGE}" + ("; includeSubDomains; preload"
                                          if nginx.hsts_preload else ""),
        user=_word("user", user) if user else None,
        domain=_word("domain", cfg.domain),
        certificate_names=[_word("domain", name) for name in cfg.certificate_names],
        served_names=[_word("domain", name) for name in cfg.served_names],
        redirected_names=[_word("domainAliases", name) for name in cfg.redirected_names],
        # with one name, $host is that name: written out, as the bootstrap always was
        http_redirect_host="$host" if cfg.domain_aliases else _word("domain", cfg.domain),
        upstream_servers=servers,
        next_upstream_tries=len(servers),
        max_fails=int(nginx.max_fails),
        fail_timeout=_word("nginx.failTimeout", nginx.fail_timeout, _TIME),
        upstream_keepalive=int(nginx.upstream_keepalive),
        proxy_buffering=bool(nginx.proxy_buffering),
        connect_timeout=_word("nginx.connectTimeout", nginx.connect_timeout, _TIME),
        read_timeout=_word("nginx.readTimeout", nginx.read_timeout, _TIME),
        send_timeout=_word("nginx.sendTimeout", nginx.send_timeout, _TIME),
        next_upstream_timeout=_word("nginx.nextUpstreamTimeout", nginx.next_upstream_timeout,
                                    _TIME),
        client_max_body_size=_word("nginx.clientMaxBodySize", nginx.client_max_body_size, _SIZE),
        client_header_timeout=_word("nginx.clientHeaderTimeout", nginx.client_header_timeout,
                                    _TIME),
        client_body_timeout=_word("nginx.clientBodyTimeout", nginx.client_body_timeout, _TIME),
        request_rate=_word("nginx.requestRate", nginx.request_rate, _RATE),
        request_burst=int(nginx.request_burst),
        connections_per_client=int(nginx.connections_per_client),
        login_paths=[_login_path(path) for path in nginx.login_paths],
        login_rate=_word("nginx.loginRate", nginx.login_rate, _RATE),
        login_burst=int(nginx.login_burst),
        letsencrypt_dir=_word("letsencrypt_dir", letsencrypt_dir.rstrip("/")),
        webroot=_word("webroot", webroot.rstrip("/")),
        pid_path=_word("pid_path", pid_path),
        error_log=_word("error_log", error_log),
        access_log=_word("access_log", access_log),
        mime_types=_word("mime_types", mime_types),
        admin_cidrs=_geo_networks(cfg.firewall.admin_cidrs),
        maintenance_flag=_word("maintenance_flag", maintenance_flag),
        maintenance_page=_word("maintenance_page", maintenance_page),
        retry_after=int(cfg.maintenance.retry_after),
    )


def certificate_path(domain: str, letsencrypt_dir: str = LETSENCRYPT_DIR) -> str:
    """The site's certificate as certbot writes it (its presence ends the bootstrap)."""
    return f"{letsencrypt_dir.rstrip('/')}/live/{domain}/fullchain.pem"


def render_activate_nginx_conf_script(*, container: str = NGINX_CONTAINER_NAME,
                                      staged: str = NGINX_STAGED_CONF_PATH,
                                      target: str = NGINX_CONF_PATH,
                                      unless_exists: Optional[str] = None) -> str:
    """Root script: check the staged config in the running nginx container, swap it in,
    reload nginx (`-c target`: the path the container runs nginx with).

    With `unless_exists` (the certificate), a present file means the TLS config is in charge:
    the staged bootstrap config is discarded.
    """
    return render_script("nginx-activate.sh.j2", container=container, staged=staged,
                         target=target, unless_exists=unless_exists)


def render_nginx_conf_command(*, unless_exists: Optional[str] = None) -> str:
    """One remote command: install stdin as the staged config, then activate it."""
    return " && ".join([
        render_install_file_command(NGINX_STAGED_CONF_PATH, "0644"),
        render_run_script_command(render_activate_nginx_conf_script(unless_exists=unless_exists)),
    ])
