"""The app containers' environment file (`docker run --env-file` format).

What it holds is the env contract (components/config/env_contract.py): each value djscale
provides, under the name(s) `app.envNames` gives it (by default the bundled app's), then the
project's own `app.env` and `appSecrets`. djscale reads no file of the project for this.

Docker's env-file format has no quoting: everything after the first `=` up to the end of
the line is the value, taken literally. So values are written as they are, and a value
with a line break (which the format cannot carry) is refused instead of being mangled.
"""
from __future__ import annotations

from dataclasses import fields
from typing import Mapping, Optional

from components.config import StackConfig
from components.config.env_contract import (SUPERUSER_EMAIL, SUPERUSER_PASSWORD,
                                            SUPERUSER_USERNAME, EnvNamesConfig)
from components.render.templating import render_template

APP_ENV_PATH = "/etc/djscale/app.env"
# The database's certificate (public): on the host, and at the same path in the containers
# (mounted read-only). The app connects with sslmode=verify-full against it.
DB_CA_PATH = "/etc/djscale/db-ca.pem"
DB_SSLMODE = "verify-full"


def _line_value(name: str, value: str) -> str:
    if any(c in value for c in "\n\r\0"):
        raise ValueError(f"{name}: an env-file value cannot contain a line break or NUL")
    return value


def provided_values(cfg: StackConfig, *, db_host: str, db_port: int, db_name: str,
                    db_user: str, db_password: str, secret_key: str,
                    s3_secret_key: str) -> dict[str, Optional[str]]:
    """Every value of the env contract ({EnvNamesConfig field: value}, None: not written)."""
    storage = cfg.static_storage
    app = cfg.app
    return {
        "secret_key": secret_key,
        "debug": app.debug_values.when_true if app.debug else app.debug_values.when_false,
        # the names nginx proxies (domain, and domainAliases that are served, not redirected)
        "allowed_hosts": ",".join(dict.fromkeys([*cfg.served_names, *app.extra_allowed_hosts])),
        "csrf_trusted_origins": ",".join(f"https://{name}" for name in cfg.served_names),
        "log_level": app.log_level,
        "db_host": db_host,
        "db_port": str(db_port),
        "db_name": db_name,
        "db_user": db_user,
        "db_password": db_password,
        "db_ssl_mode": DB_SSLMODE,
        "db_ssl_root_cert": DB_CA_PATH,
        "static_bucket": storage.bucket,
        "static_endpoint_url": storage.endpoint_url,
        "static_region": storage.region,
        "static_access_key_id": storage.access_key_id,
        "static_secret_key": s3_secret_key,
        "static_addressing_style": "path" if storage.path_style else "virtual",
        "static_custom_domain": storage.custom_domain,
        "static_default_acl": "public-read" if storage.public_read_acl else "",
        "gunicorn_workers": str(app.workers),
        # The app port admits the proxy alone, and Docker's published port keeps its source
        # address (DNAT), so the container sees it as the peer: trust its X-Forwarded-*.
        "gunicorn_forwarded_allow_ips": cfg.proxy.private_address,
    }


def render_app_env(cfg: StackConfig, *, db_host: str, db_port: int, db_name: str,
                   db_user: str, db_password: str, secret_key: str, s3_secret_key: str,
                   app_secrets: Optional[Mapping[str, str]] = None,
                   superuser_password: Optional[str] = None) -> str:
    """KEY=value lines for the app container; secrets are plain str (call inside apply).

    `app_secrets`: appSecrets' values by name (`cfg.app_secret_names` says which are set).
    `superuser_password=None` leaves the DJANGO_SUPERUSER_* lines out: only the one-off
    `createsuperuser --noinput` run needs them, the long-running containers do not.
    """
    provided = provided_values(
        cfg, db_host=db_host, db_port=db_port, db_name=db_name, db_user=db_user,
        db_password=db_password, secret_key=secret_key, s3_secret_key=s3_secret_key)
    names = cfg.app.env_names
    values = [(name, value) for field in fields(EnvNamesConfig)
              for value in [provided[field.name]] if value is not None
              for name in getattr(names, field.name)]
    values += list(cfg.app.env)
    values += [(name, (app_secrets or {})[name]) for name in cfg.app_secret_names]
    if superuser_password is not None:
        values += [(SUPERUSER_USERNAME, cfg.app.superuser.username),
                   (SUPERUSER_EMAIL, cfg.app.superuser.email),
                   (SUPERUSER_PASSWORD, superuser_password)]
    lines = [(name, _line_value(name, value)) for name, value in values]
    return render_template("app.env.j2", lines=lines, release=superuser_password is not None)


def render_db_ca_file(db_ca_cert: str) -> str:
    """DB_CA_PATH's content: the certificate the database host's TLS step printed, checked
    to be one PEM certificate and nothing else (never a key)."""
    text = db_ca_cert.strip()
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    if not (text.startswith(begin) and text.endswith(end) and text.count("-----BEGIN") == 1):
        raise ValueError("the database's certificate is not one PEM certificate")
    return text + "\n"


def parse_env_file(text: str) -> list[str]:
    """`KEY=value` entries exactly as `docker run --env-file` reads them (no quote handling)."""
    return [line for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#") and "=" in line]
