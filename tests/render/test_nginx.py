"""nginx.conf: exact text of every variant (the production form, for nginx 1.25.1 and
later). The activation script: exact text, and run with a stand-in `docker`. The real nginx
serving through the config: tests/render/test_nginx_real.py."""
from __future__ import annotations

import difflib
import os
import re
import subprocess
from pathlib import Path

import pytest

from components.config import (SECRET_KEYS, ConfigError, NginxConfig, parse_config,
                               read_stack_file)
from components.render.files import render_install_file_command, render_run_script_command
from components.render.nginx import (NGINX_STAGED_CONF_PATH, certificate_path,
                                     render_activate_nginx_conf_script,
                                     render_nginx_conf, render_nginx_conf_command)
from tests.render.conftest import assert_golden, check_shell, make_config

APPS = ["10.0.0.22", "10.0.0.21"]
DOMAIN = "shop.example.com"


def test_http_only_variant_before_the_certificate_exists(cfg):
    text = render_nginx_conf(cfg, APPS, tls=False)
    assert_golden("nginx-http-only.conf", text)
    assert "ssl_certificate" not in text
    assert "proxy_pass" not in text


def test_tls_variant(cfg):
    text = render_nginx_conf(cfg, APPS, tls=True)
    assert_golden("nginx-tls.conf", text)
    assert "keepalive " not in text.replace("keepalive_timeout", "")
    # HTTP/1.0 and a closed connection per request, whatever the image's nginx defaults to
    assert "proxy_http_version 1.0;\n" in text and "proxy_set_header Connection close;\n" in text


ALIASES = ("shop.example.net", "www.shop.example.net")


def test_aliases_that_redirect_are_on_port_80_and_get_their_own_tls_server():
    cfg = make_config(domain_aliases=ALIASES)
    text = render_nginx_conf(cfg, APPS, tls=True)
    assert_golden("nginx-tls-aliases.conf", text)
    names = "shop.example.com shop.example.net www.shop.example.net"
    # port 80: every name on the certificate answers challenges, then https on the same name
    assert f"        server_name {names};\n" in text
    assert "return 301 https://$host$request_uri;" in text
    # 443: the site under `domain` only; the aliases go to it, with the same HSTS header
    assert "        server_name shop.example.com;\n" in text
    assert "        server_name shop.example.net www.shop.example.net;\n" in text
    assert text.count("return 301 https://shop.example.com$request_uri;") == 1
    # (the site's, the maintenance page's, the redirecting aliases' server's)
    assert text.count('add_header Strict-Transport-Security "max-age=63072000" always;') == 3
    # before the certificate: the same port-80 server, no TLS server at all
    http_only = render_nginx_conf(cfg, APPS, tls=False)
    assert f"        server_name {names};\n" in http_only
    assert "listen 443 ssl;" not in http_only


def test_aliases_that_are_served_share_the_sites_server():
    cfg = make_config(domain_aliases=ALIASES, alias_mode="serve")
    text = render_nginx_conf(cfg, APPS, tls=True)
    names = "shop.example.com shop.example.net www.shop.example.net"
    assert text.count(f"        server_name {names};\n") == 2  # port 80 and the site's 443
    assert "return 301 https://shop.example.com$request_uri;" not in text
    assert text.count("proxy_pass http://djscale_app;") == 2  # `/` and the login path
    assert text == render_nginx_conf(make_config(domain_aliases=ALIASES), APPS, tls=True) \
        .replace("server_name shop.example.com;", f"server_name {names};") \
        .split("\n    # domainAliases (aliasMode: redirect)")[0] + "}\n"


def test_upstream_keepalive_only_when_configured():
    cfg = make_config(app_count=3, nginx=NginxConfig(upstream_keepalive=16))
    text = render_nginx_conf(cfg, ["10.0.0.100", "10.0.0.21", "10.0.0.3"], tls=True)
    assert """\
    upstream djscale_app {
        server 10.0.0.3:8000 max_fails=0;
        server 10.0.0.21:8000 max_fails=0;
        server 10.0.0.100:8000 max_fails=0;
        keepalive 16;
    }
""" in text
    assert """\
        # The app keeps connections open: reuse them.
        proxy_http_version 1.1;
        proxy_set_header Connection "";
""" in _site_server(text)
    assert "proxy_next_upstream_tries 3;\n" in text


def test_configured_timeouts_and_body_size():
    cfg = make_config(nginx=NginxConfig(connect_timeout="2s", read_timeout="90s",
                                        send_timeout="15s", client_max_body_size="100m",
                                        max_fails=3, fail_timeout="30s"))
    text = render_nginx_conf(cfg, ["10.0.0.21"], tls=True)
    for line in ["proxy_connect_timeout 2s;", "proxy_read_timeout 90s;",
                 "proxy_send_timeout 15s;", "client_max_body_size 100m;",
                 "server 10.0.0.21:8000 max_fails=3 fail_timeout=30s;",
                 "proxy_next_upstream_tries 1;"]:
        assert f"{line}\n" in text


def test_proxy_buffering_is_on_unless_turned_off(tmp_path):
    """nginx.proxyBuffering: the default leaves nginx's own (buffering on); false writes
    `proxy_buffering off;` into the proxied location, and the real nginx accepts it."""
    assert "proxy_buffering" not in render_nginx_conf(make_config(), APPS, tls=True)
    cfg = make_config(nginx=NginxConfig(proxy_buffering=False))
    text = render_nginx_conf(cfg, APPS, tls=True)
    assert text.count("proxy_buffering off;\n") == 1
    assert "        proxy_buffering off;\n" in _proxy_settings(text)  # for every location
    assert parse_config(_raw_with_nginx({"proxyBuffering": "false"}), SECRET_KEYS,
                        check_files=False).nginx.proxy_buffering is False
    assert "nginx.proxyBuffering: expected true or false, got 'sometimes'" in str(
        pytest.raises(ConfigError, parse_config, _raw_with_nginx({"proxyBuffering": "sometimes"}),
                      SECRET_KEYS, check_files=False).value)


def _site_server(text: str) -> str:
    """The TLS server block of the site (from its certificate to the end)."""
    return text[text.index("        ssl_certificate "):]


def _proxy_settings(text: str) -> str:
    """What the site's server sets for every location: between its certificate and the
    first location."""
    site = _site_server(text)
    return site[:site.index("        location ")]


def _raw_with_nginx(nginx: dict) -> dict:
    raw, _ = read_stack_file(Path(__file__).resolve().parents[1] / "fixtures" /
                             "stack_two_apps.yaml")
    return {**raw, "nginx": nginx}


@pytest.mark.parametrize("nginx", [NginxConfig(connect_timeout="1s; evil"),
                                   NginxConfig(client_max_body_size="10 m"),
                                   NginxConfig(read_timeout="}")])
def test_values_that_would_break_out_of_a_directive_are_refused(nginx):
    with pytest.raises(ValueError):
        render_nginx_conf(make_config(nginx=nginx), APPS, tls=True)


def test_no_app_server_is_refused(cfg):
    with pytest.raises(ValueError):
        render_nginx_conf(cfg, [], tls=True)


def test_tls_follows_mozillas_intermediate_profile(cfg):
    """Server Side TLS guidelines 6.0, intermediate (ssl-config.mozilla.org/guidelines/6.0.json)."""
    text = render_nginx_conf(cfg, APPS, tls=True)
    http = text[:text.index("upstream djscale_app")]
    for line in ["ssl_protocols TLSv1.2 TLSv1.3;",
                 "ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                 "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                 "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;",
                 "ssl_ecdh_curve X25519:prime256v1:secp384r1;",
                 "ssl_prefer_server_ciphers off;", "ssl_session_timeout 1d;",
                 "ssl_session_cache shared:djscale_tls:10m;"]:
        assert f"\n    {line}\n" in http, line
    assert "ssl_session_tickets" not in text  # on: nginx >= 1.23.2 rotates the keys
    # the site's, and the maintenance page's (a location with an add_header inherits none)
    assert text.count('add_header Strict-Transport-Security "max-age=63072000" always;\n') == 2


def test_http2_is_switched_on_per_server_unless_rendered_for_an_old_nginx(cfg):
    """`listen ... http2` is deprecated since nginx 1.25.1; the legacy form is for this
    machine's nginx 1.22 (the tests), and differs in nothing else."""
    modern = render_nginx_conf(cfg, APPS, tls=True)
    assert modern.count("http2") == 1  # in the site's server only
    assert "        listen 443 ssl;\n        listen [::]:443 ssl;\n        http2 on;\n" in modern
    legacy = render_nginx_conf(cfg, APPS, tls=True, legacy_nginx=True)
    assert "http2 on" not in legacy
    changed = [line for line in difflib.unified_diff(modern.splitlines(), legacy.splitlines(),
                                                     lineterm="", n=0)
               if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed == [
        "-    # Session tickets stay on: with a shared cache nginx rotates their keys (1.23.2 "
        "and later).",
        "+    # nginx before 1.23.2 never rotates session ticket keys: no tickets.",
        "+    ssl_session_tickets off;",
        "-        listen 443 ssl default_server;",
        "-        listen [::]:443 ssl default_server;",
        "+        listen 443 ssl http2 default_server;",
        "+        listen [::]:443 ssl http2 default_server;",
        "-        listen 443 ssl;",
        "-        listen [::]:443 ssl;",
        "-        http2 on;",
        "+        listen 443 ssl http2;",
        "+        listen [::]:443 ssl http2;"]


def test_hsts_preload_adds_include_subdomains_and_preload():
    cfg = make_config(nginx=NginxConfig(hsts_preload=True))
    text = render_nginx_conf(cfg, APPS, tls=True)
    assert ('add_header Strict-Transport-Security '
            '"max-age=63072000; includeSubDomains; preload" always;\n') in text
    assert parse_config(_raw_with_nginx({"hstsPreload": True}), SECRET_KEYS,
                        check_files=False).nginx.hsts_preload is True
    assert parse_config(_raw_with_nginx({}), SECRET_KEYS,
                        check_files=False).nginx.hsts_preload is False


def test_limits_per_client_address(cfg):
    text = render_nginx_conf(cfg, APPS, tls=True)
    assert """\
    client_header_timeout 10s;
    client_body_timeout 10s;
""" in text
    assert """\
    map $request_method $djscale_login_client {
        GET "";
        HEAD "";
        default $binary_remote_addr;
    }
    limit_req_zone $binary_remote_addr zone=djscale_requests:10m rate=10r/s;
    limit_req_zone $djscale_login_client zone=djscale_login:10m rate=6r/m;
    limit_conn_zone $binary_remote_addr zone=djscale_connections:10m;
    limit_req_status 429;
    limit_conn_status 429;
""" in text
    assert """\
        limit_conn djscale_connections 10;
        limit_req zone=djscale_requests burst=20 nodelay;
""" in _proxy_settings(text)
    assert """\
        location / {
            if ($djscale_maintenance = "on:0") {
                return 503;
            }
            proxy_pass http://djscale_app;
        }

        # Login attempts: the strict budget on top of the general one (a location with its
        # own limit_req inherits none).
        location = /admin/login/ {
            if ($djscale_maintenance = "on:0") {
                return 503;
            }
            limit_req zone=djscale_requests burst=20 nodelay;
            limit_req zone=djscale_login burst=5 nodelay;
            proxy_pass http://djscale_app;
        }

        # The maintenance page""" in _site_server(text)


def test_configured_limits_and_login_paths():
    cfg = make_config(nginx=NginxConfig(
        request_rate="600r/m", request_burst=0, connections_per_client=3, login_rate="2r/m",
        login_burst=1, login_paths=("/accounts/login/", "/admin/login/"),
        client_header_timeout="5s", client_body_timeout="1m"))
    text = render_nginx_conf(cfg, APPS, tls=True)
    for line in ["client_header_timeout 5s;", "client_body_timeout 1m;",
                 "limit_req_zone $binary_remote_addr zone=djscale_requests:10m rate=600r/m;",
                 "limit_req_zone $djscale_login_client zone=djscale_login:10m rate=2r/m;",
                 "limit_conn djscale_connections 3;"]:
        assert f"{line}\n" in text, line
    assert re.findall(r"location = (\S+) \{", text) == [
        "/accounts/login/", "/admin/login/", "/__djscale_maintenance__.html"]
    assert text.count("limit_req zone=djscale_login burst=1 nodelay;\n") == 2
    assert text.count("limit_req zone=djscale_requests burst=0 nodelay;\n") == 3
    no_login = render_nginx_conf(make_config(nginx=NginxConfig(login_paths=())), APPS, tls=True)
    assert re.findall(r"location = (\S+) \{", no_login) == ["/__djscale_maintenance__.html"]
    assert "zone=djscale_login burst" not in no_login
    for bad in ("/a;b", "/a/../b", "a"):
        with pytest.raises(ValueError, match="nginx.loginPaths"):
            render_nginx_conf(make_config(nginx=NginxConfig(login_paths=(bad,))), APPS, tls=True)
    with pytest.raises(ValueError, match="nginx.requestRate"):
        render_nginx_conf(make_config(nginx=NginxConfig(request_rate="10r/s; x")), APPS, tls=True)


def test_retries_only_requests_no_server_took_and_never_marks_a_server_down(cfg):
    """A request goes to the next server only when this one did not take it, within
    next_upstream_timeout (shorter than the read timeout: a busy server's timeout is not
    retried); max_fails=0: no failure takes a server out (see the upstream's comment)."""
    text = render_nginx_conf(cfg, APPS, tls=True)
    assert """\
        proxy_next_upstream error timeout;
        proxy_next_upstream_timeout 5s;
        proxy_next_upstream_tries 2;
""" in _proxy_settings(text)
    assert "non_idempotent" not in text and "http_50" not in text
    assert "        server 10.0.0.21:8000 max_fails=0;\n" in text
    assert "fail_timeout" not in text  # meaningless without max_fails


def test_the_client_is_forwarded_as_nginx_saw_it_and_its_own_forwarding_headers_are_dropped(
        cfg):
    settings = _proxy_settings(render_nginx_conf(cfg, APPS, tls=True))
    assert """\
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;
""" in settings
    assert "$proxy_add_x_forwarded_for" not in settings
    assert re.findall(r'proxy_set_header (\S+) "";', settings) == [
        "Forwarded", "X-Forwarded-Host", "X-Forwarded-Port", "X-Forwarded-Prefix",
        "X-Forwarded-Protocol", "X-Forwarded-Scheme", "X-Forwarded-Ssl"]


def test_the_app_servers_hsts_header_is_hidden_behind_nginx_own(cfg):
    text = render_nginx_conf(cfg, APPS, tls=True)
    # the site's, and the same again for the maintenance page (no app behind it)
    assert _site_server(text).count("add_header Strict-Transport-Security ") == 2
    assert "proxy_hide_header Strict-Transport-Security;\n" in _proxy_settings(text)
    # no location sets proxy_* of its own, which would drop the inherited ones
    locations = _site_server(text)[len(_proxy_settings(text)):]
    assert re.findall(r"^\s+(proxy_\w+|add_header \S+)", locations, re.M) == [
        "proxy_pass", "proxy_pass", "add_header Retry-After", "add_header Cache-Control",
        "add_header Strict-Transport-Security"]


# --- activating a new nginx.conf ----------------------------------------------------------

def test_activation_script_for_the_tls_config(tmp_path):
    script = render_activate_nginx_conf_script()
    assert_golden("nginx-activate.sh", script)
    check_shell(script, tmp_path)
    assert 'nginx -s reload -c "$target"\n' in script
    assert "target=/etc/djscale/nginx/nginx.conf\n" in script  # what the container runs


def test_activation_script_for_the_bootstrap_config(tmp_path):
    script = render_activate_nginx_conf_script(unless_exists=certificate_path(DOMAIN))
    assert_golden("nginx-activate-unless-certificate.sh", script)
    check_shell(script, tmp_path)
    assert f"certificate=/etc/letsencrypt/live/{DOMAIN}/fullchain.pem\n" in script


def test_conf_command_installs_stdin_as_the_staged_file_then_activates_it():
    cert = certificate_path(DOMAIN)
    assert render_nginx_conf_command(unless_exists=cert) == " && ".join([
        render_install_file_command(NGINX_STAGED_CONF_PATH, "0644"),
        render_run_script_command(render_activate_nginx_conf_script(unless_exists=cert))])
    assert NGINX_STAGED_CONF_PATH == "/etc/djscale/nginx/nginx.conf.new"


# A stand-in `docker` playing the nginx container: records every call, answers `inspect`
# (running or not) and `nginx -t` (accept or reject) as the test says.
DOCKER_STUB = """#!/bin/sh
echo "$*" >> "$DOCKER_LOG"
case "$1 $2" in
  "container inspect") [ -n "$RUNNING" ] && echo true && exit 0; exit 1 ;;
esac
case "$*" in
  *"nginx -t"*) exit "${NGINX_T_RC:-0}" ;;
esac
exit 0
"""


@pytest.fixture
def box(tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(DOCKER_STUB)
    (bin_dir / "docker").chmod(0o755)
    conf_dir = tmp_path / "nginx"
    conf_dir.mkdir()
    return tmp_path, bin_dir, conf_dir


def _activate(box, *, running: bool, nginx_t_rc: int = 0, unless_exists=None):
    tmp, bin_dir, conf_dir = box
    script = render_activate_nginx_conf_script(
        container="djscale-nginx", staged=str(conf_dir / "nginx.conf.new"),
        target=str(conf_dir / "nginx.conf"), unless_exists=unless_exists)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}",
               DOCKER_LOG=str(tmp / "docker.log"), RUNNING="1" if running else "",
               NGINX_T_RC=str(nginx_t_rc))
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
    log = (tmp / "docker.log").read_text().splitlines() if (tmp / "docker.log").exists() else []
    return result, log


def test_first_deploy_installs_config_without_a_container(box):
    _, _, conf_dir = box
    (conf_dir / "nginx.conf.new").write_text("http-only\n")
    result, log = _activate(box, running=False)
    assert result.returncode == 0, result.stderr
    assert (conf_dir / "nginx.conf").read_text() == "http-only\n"
    assert not (conf_dir / "nginx.conf.new").exists()
    assert not any("exec" in line for line in log)  # nothing to validate against or reload


def test_running_nginx_validates_the_staged_file_then_reloads_its_config(box):
    _, _, conf_dir = box
    (conf_dir / "nginx.conf").write_text("old\n")
    (conf_dir / "nginx.conf.new").write_text("new\n")
    result, log = _activate(box, running=True)
    assert result.returncode == 0, result.stderr
    assert (conf_dir / "nginx.conf").read_text() == "new\n"
    execs = [line for line in log if line.startswith("exec")]
    assert execs == [f"exec djscale-nginx nginx -t -q -c {conf_dir}/nginx.conf.new",
                     f"exec djscale-nginx nginx -s reload -c {conf_dir}/nginx.conf"]


def test_rejected_config_keeps_the_old_one_and_fails(box):
    _, _, conf_dir = box
    (conf_dir / "nginx.conf").write_text("old\n")
    (conf_dir / "nginx.conf.new").write_text("broken\n")
    result, log = _activate(box, running=True, nginx_t_rc=1)
    assert result.returncode == 1
    assert "rejects" in result.stderr
    assert (conf_dir / "nginx.conf").read_text() == "old\n"
    assert not (conf_dir / "nginx.conf.new").exists()
    assert not any("reload" in line for line in log)


def test_bootstrap_config_is_discarded_once_a_certificate_exists(box):
    tmp, _, conf_dir = box
    cert = tmp / "fullchain.pem"
    cert.write_text("cert")
    (conf_dir / "nginx.conf").write_text("tls\n")
    (conf_dir / "nginx.conf.new").write_text("http-only\n")
    result, log = _activate(box, running=True, unless_exists=str(cert))
    assert result.returncode == 0, result.stderr
    assert (conf_dir / "nginx.conf").read_text() == "tls\n"
    assert not (conf_dir / "nginx.conf.new").exists()
    assert log == []


def test_bootstrap_config_is_installed_while_there_is_no_certificate(box):
    tmp, _, conf_dir = box
    (conf_dir / "nginx.conf").write_text("tls for another domain\n")
    (conf_dir / "nginx.conf.new").write_text("http-only\n")
    result, log = _activate(box, running=True, unless_exists=str(tmp / "missing.pem"))
    assert result.returncode == 0, result.stderr
    assert (conf_dir / "nginx.conf").read_text() == "http-only\n"
    assert log[-1] == f"exec djscale-nginx nginx -s reload -c {conf_dir}/nginx.conf"
