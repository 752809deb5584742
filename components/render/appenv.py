"""The app containers' environment file (`docker run --env-file` format).

Variable names come from assets/app/djsite/envvars.py, the one list shared with the Django
settings; it is loaded by path so this module needs neither Django nor the app package.

Docker's env-file format has no quoting: everything after the first `=` up to the end of
the line is the value, taken literally. So values are written as they are, and a value
with a line break (which the format cannot carry) is refused instead of being mangled.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Optional

from components.config import StackConfig
from components.render.templating import render_template

ENVVARS_PATH = Path(__file__).resolve().parents[2] / "assets" / "app" / "djsite" / "envvars.py"
APP_ENV_PATH = "/etc/djscale/app.env"
# The database's certificate (public): on the host, and at the same path in the containers
# (mounted read-only). The app connects with sslmode=verify-full against it.
DB_CA_PATH = "/etc/djscale/db-ca.pem"
DB_SSLMODE = "verify-full"


def _load_envvars() -> ModuleType:
    spec = importlib.util.spec_from_file_location("djscale_app_envvars", ENVVARS_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


envvars = _load_envvars()


def _line_value(name: str, value: str) -> str:
    if any(c in value for c in "\n\r\0"):
        raise ValueError(f"{name}: an env-file value cannot contain a line break or NUL")
    return value


def render_app_env(cfg: StackConfig, *, db_host: str, db_port: int, db_name: str,
                   db_user: str, db_password: str, secret_key: str, s3_secret_key: str,
                   superuser_password: Optional[str] = None) -> str:
    """KEY=value lines for the app container; secrets are plain str (call inside apply).

    `superuser_password=None` leaves the DJANGO_SUPERUSER_* lines out: only the one-off
    `createsuperuser --noinput` run needs them, the long-running containers do not.
    """
    storage = cfg.static_storage
    app = cfg.app
    values: dict[str, Optional[str]] = {
        envvars.SECRET_KEY: secret_key,
        envvars.DEBUG: "true" if app.debug else "false",
        envvars.ALLOWED_HOSTS: ",".join([cfg.domain, *app.extra_allowed_hosts]),
        envvars.CSRF_TRUSTED_ORIGINS: f"https://{cfg.domain}",
        envvars.LOG_LEVEL: app.log_level,
        envvars.DB_HOST: db_host,
        envvars.DB_PORT: str(db_port),
        envvars.DB_NAME: db_name,
        envvars.DB_USER: db_user,
        envvars.DB_PASSWORD: db_password,
        envvars.DB_SSLMODE: DB_SSLMODE,
        envvars.DB_SSLROOTCERT: DB_CA_PATH,
        envvars.S3_BUCKET: storage.bucket,
        envvars.S3_ENDPOINT_URL: storage.endpoint_url,
        envvars.S3_REGION: storage.region,
        envvars.S3_ACCESS_KEY_ID: storage.access_key_id,
        envvars.S3_SECRET_ACCESS_KEY: s3_secret_key,
        envvars.S3_ADDRESSING_STYLE: "path" if storage.path_style else "virtual",
        envvars.S3_CUSTOM_DOMAIN: storage.custom_domain,
        envvars.S3_DEFAULT_ACL: "public-read" if storage.public_read_acl else "",
        envvars.GUNICORN_WORKERS: str(app.workers),
        # The app port admits the proxy alone, and Docker's published port keeps its source
        # address (DNAT), so the container sees it as the peer: trust its X-Forwarded-*.
        envvars.GUNICORN_FORWARDED_ALLOW_IPS: cfg.proxy.private_address,
    }
    if superuser_password is not None:
        values[envvars.SUPERUSER_USERNAME] = app.superuser.username
        values[envvars.SUPERUSER_EMAIL] = app.superuser.email
        values[envvars.SUPERUSER_PASSWORD] = superuser_password
    lines = [(name, _line_value(name, value)) for name, value in values.items()
             if value is not None]
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
