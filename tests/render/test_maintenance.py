"""Maintenance mode: the page, the operator's switch (run for real on a scratch flag file)
and the step that applies `maintenance.enabled`; what nginx does with them:
tests/render/test_nginx.py (text) and tests/render/test_nginx_real.py (served)."""
from __future__ import annotations

import re
import subprocess

import pytest

from components.config import MaintenanceConfig
from components.render.maintenance import (MAINTENANCE_FLAG, render_maintenance_command,
                                           render_maintenance_mode_script,
                                           render_maintenance_page)
from components.render.nginx import render_nginx_conf
from tests.render.conftest import assert_golden, check_shell, make_config

TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def test_maintenance_command(tmp_path):
    script = render_maintenance_command()
    assert_golden("maintenance.sh", script)
    check_shell(script, tmp_path)
    assert "\nflag=/etc/djscale/nginx/maintenance.on\n" in script
    assert MAINTENANCE_FLAG == "/etc/djscale/nginx/maintenance.on"


def test_the_command_switches_the_flag_file_and_says_so(tmp_path):
    flag = tmp_path / "nginx" / "maintenance.on"
    script = render_maintenance_command(str(flag))

    def run(*args):
        return subprocess.run(["bash", "-c", script, "djscale-maintenance", *args],
                              capture_output=True, text=True)

    assert (run().stdout, run("status").stdout) == ("off\n", "off\n")
    on = run("on")
    assert on.returncode == 0 and on.stdout.startswith("djscale: maintenance mode on: ")
    assert re.fullmatch(f"{TIME}\n", flag.read_text())
    assert oct(flag.stat().st_mode & 0o777) == "0o644"  # nginx's workers read it
    assert re.fullmatch(f"on since {TIME}\n", run("status").stdout)
    again = run("on")
    assert again.returncode == 0 and "already on (since " in again.stdout
    assert run("off").stdout == "djscale: maintenance mode off: every client reaches the app\n"
    assert not flag.exists()
    assert run("off").stdout == "djscale: maintenance mode is already off\n"
    wrong = run("maybe")
    assert (wrong.returncode, wrong.stderr) == (2, "usage: djscale-maintenance on|off|status\n")
    assert sorted(p.name for p in flag.parent.iterdir()) == []  # no temp file left


@pytest.mark.parametrize("enabled,action", [(False, "off"), (True, "on")])
def test_the_step_applies_maintenance_enabled(tmp_path, enabled, action):
    script = render_maintenance_mode_script(make_config(
        maintenance=MaintenanceConfig(enabled=enabled)))
    check_shell(script, tmp_path)
    assert script.endswith(f"\nset -euo pipefail\n/usr/local/sbin/djscale-maintenance {action}\n")


def test_djscales_page_names_the_site(cfg):
    page = render_maintenance_page(cfg)
    assert_golden("maintenance.html", page)
    assert "<h1>shop.example.com is down for maintenance</h1>" in page


def test_a_page_of_ones_own_is_installed_as_it_is(tmp_path):
    page = tmp_path / "down.html"
    page.write_text("<p>Wartung – bis 14 Uhr</p>\n", encoding="utf-8")
    cfg = make_config(maintenance=MaintenanceConfig(page=str(page)))
    assert render_maintenance_page(cfg) == "<p>Wartung – bis 14 Uhr</p>\n"


def test_nginx_lets_the_admin_networks_through_and_checks_the_flag_in_every_location(cfg):
    text = render_nginx_conf(cfg, ["10.0.0.21"], tls=True)
    assert """\
    geo $djscale_admin {
        default 0;
        198.51.100.0/24 1;
        192.0.2.7/32 1;
    }
""" in text
    assert """\
        set $djscale_maintenance off;
        if (-f /etc/djscale/nginx/maintenance.on) {
            set $djscale_maintenance on;
        }
        set $djscale_maintenance "$djscale_maintenance:$djscale_admin";
        error_page 503 /__djscale_maintenance__.html;
""" in text
    assert """\
        location = /__djscale_maintenance__.html {
            internal;
            alias /etc/djscale/nginx/maintenance/index.html;
            default_type text/html;
            charset utf-8;
            add_header Retry-After 300 always;
            add_header Cache-Control "no-store" always;
            add_header Strict-Transport-Security "max-age=63072000" always;
        }
""" in text
    check = '            if ($djscale_maintenance = "on:0") {\n                return 503;\n'
    # `location /` and each login path
    assert text.count(check) == 1 + len(cfg.nginx.login_paths) == text.count("proxy_pass ")
    assert "djscale_maintenance" not in render_nginx_conf(cfg, ["10.0.0.21"], tls=False)


def test_ipv6_admin_networks_and_the_retry_after_value(cfg):
    from components.config import FirewallConfig

    cfg = make_config(firewall=FirewallConfig(admin_cidrs=("2001:db8:1::/48", "0.0.0.0/0")),
                      maintenance=MaintenanceConfig(retry_after=86400))
    text = render_nginx_conf(cfg, ["10.0.0.21"], tls=True)
    assert "        2001:db8:1::/48 1;\n        0.0.0.0/1 1;\n        128.0.0.0/1 1;\n" in text
    assert "add_header Retry-After 86400 always;" in text


def test_networks_nginx_would_warn_about_or_refuse_are_written_so_it_takes_them():
    """A whole family as its two halves (`0.0.0.0/0` repeats `default`); 255.255.255.255,
    which nginx cannot parse and no client sends from, left out; the real nginx accepts the
    widest config (tests/plans/test_boundary_values.py)."""
    from components.config import FirewallConfig

    cfg = make_config(firewall=FirewallConfig(admin_cidrs=(
        "::/0", "255.255.255.255/32", "255.255.255.0/24", "0.0.0.0/0", "0.0.0.0/1")))
    text = render_nginx_conf(cfg, ["10.0.0.21"], tls=True)
    geo = text[text.index("geo $djscale_admin {"):]
    assert geo[:geo.index("}") + 1] == """\
geo $djscale_admin {
        default 0;
        ::/1 1;
        8000::/1 1;
        255.255.255.0/24 1;
        0.0.0.0/1 1;
        128.0.0.0/1 1;
    }"""
