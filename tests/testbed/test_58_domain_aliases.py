"""Several domains (issue 11, item 7): `domainAliases` go on the one certificate (certbot
issues it again, under the same name, when they change), each alias is redirected to the
domain or served as the config says, ALLOWED_HOSTS follows, and removing the aliases issues
the certificate for the domain alone again. challtestsrv resolves every name to the proxy,
so pebble validates each name's HTTP-01 challenge against the proxy's nginx.
"""
from __future__ import annotations

import re

import pytest

from . import layout
from .deploy import deploy_bed

pytestmark = pytest.mark.first_suite  # the hosts' release plays no part (conftest.py)

ALIASES = ["djscale.test", "shop.djscale.test"]
ENV_FILE = "/etc/djscale/app.env"


def _names_served(bed, servername: str) -> tuple[str, list[str]]:
    """(serial, DNS names) of the certificate the proxy serves for `servername`."""
    out = bed.run_in("client", (
        f"openssl s_client -connect {layout.PROXY_ADDRESS}:443 -servername {servername} "
        "</dev/null 2>/dev/null | openssl x509 -noout -serial -ext subjectAltName"),
        timeout=60).stdout
    serial = re.search(r"serial=(\S+)", out)
    return (serial.group(1) if serial else ""), sorted(re.findall(r"DNS:([^,\s]+)", out))


def _status(bed, url: str, host: str) -> str:
    return bed.curl(url, "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                    host=host).stdout


def _allowed_hosts(bed) -> str:
    return bed.sudo(bed.apps[0], f"sed -n 's/^DJANGO_ALLOWED_HOSTS=//p' {ENV_FILE}").stdout.strip()


def test_aliases_are_on_the_certificate_then_redirected_or_served(bed, deployed):
    before, names = _names_served(bed, layout.DOMAIN)
    assert names == [layout.DOMAIN]
    try:
        # redirect (the default): one new certificate, every name on it, same files
        deploy_bed(changes={"domainAliases": ALIASES})
        serial, names = _names_served(bed, layout.DOMAIN)
        assert serial != before and names == sorted([layout.DOMAIN, *ALIASES])
        for alias in ALIASES:
            assert _names_served(bed, alias) == (serial, names)  # curl below verifies it
            assert _status(bed, f"http://{alias}/mydb/?x=1", alias) == \
                f"301 https://{alias}/mydb/?x=1"
            assert _status(bed, f"https://{alias}/mydb/?x=1", alias) == \
                f"301 https://{layout.DOMAIN}/mydb/?x=1"
        assert _allowed_hosts(bed) == layout.DOMAIN
        live = bed.sudo("proxy", "ls /etc/letsencrypt/live").stdout.split()
        assert live == [layout.DOMAIN] or live == ["README", layout.DOMAIN], live

        # serve: the same certificate (same names), the site under every name
        deploy_bed(changes={"domainAliases": ALIASES, "aliasMode": "serve"})
        assert _names_served(bed, layout.DOMAIN)[0] == serial
        for alias in ALIASES:
            page = bed.curl(f"https://{alias}/mydb/", "-f", "-o", "-", host=alias)
            assert page.returncode == 0 and "My database" in page.stdout, page.stderr
        assert _allowed_hosts(bed) == ",".join([layout.DOMAIN, *ALIASES])
    finally:
        deploy_bed()  # the bed's own config: no aliases
    serial, names = _names_served(bed, layout.DOMAIN)
    assert names == [layout.DOMAIN]  # issued again for the domain alone
    for alias in ALIASES:  # an alias is an unknown name again: no certificate for it
        refused = bed.curl(f"https://{alias}/mydb/", "-k", "-o", "/dev/null", host=alias)
        assert refused.returncode == 35, (alias, refused.returncode, refused.stderr)
    assert _allowed_hosts(bed) == layout.DOMAIN
