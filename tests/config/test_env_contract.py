"""components/config/env_contract.py: the env contract's defaults are the bundled app's names.

djscale never reads a file of the project it deploys; the bundled app keeps its own copy of
the names (assets/app/djsite/envvars.py), read here as the app reads it, and the two must
agree. And a project without any of the bundled app's files renders.
"""
from __future__ import annotations

import importlib.util
from dataclasses import fields
from pathlib import Path

from components.config.env_contract import SUPERUSER_NAMES, EnvNamesConfig

ROOT = Path(__file__).resolve().parents[2]
# EnvNamesConfig field -> the bundled app's constant
BUNDLED = {
    "secret_key": "SECRET_KEY", "debug": "DEBUG", "allowed_hosts": "ALLOWED_HOSTS",
    "csrf_trusted_origins": "CSRF_TRUSTED_ORIGINS", "log_level": "LOG_LEVEL",
    "db_host": "DB_HOST", "db_port": "DB_PORT", "db_name": "DB_NAME", "db_user": "DB_USER",
    "db_password": "DB_PASSWORD", "db_ssl_mode": "DB_SSLMODE",
    "db_ssl_root_cert": "DB_SSLROOTCERT", "static_bucket": "S3_BUCKET",
    "static_endpoint_url": "S3_ENDPOINT_URL", "static_region": "S3_REGION",
    "static_access_key_id": "S3_ACCESS_KEY_ID", "static_secret_key": "S3_SECRET_ACCESS_KEY",
    "static_addressing_style": "S3_ADDRESSING_STYLE",
    "static_custom_domain": "S3_CUSTOM_DOMAIN", "static_default_acl": "S3_DEFAULT_ACL",
    "gunicorn_workers": "GUNICORN_WORKERS",
    "gunicorn_forwarded_allow_ips": "GUNICORN_FORWARDED_ALLOW_IPS",
}
# read by the app, never written by djscale (the app's own defaults apply)
APP_ONLY = {"SECURE_HSTS_SECONDS", "DB_CONN_MAX_AGE"}


def _bundled_envvars():
    path = ROOT / "assets" / "app" / "djsite" / "envvars.py"
    spec = importlib.util.spec_from_file_location("bundled_envvars", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_defaults_are_the_bundled_apps_names():
    envvars = _bundled_envvars()
    defaults = EnvNamesConfig()
    assert set(BUNDLED) == {field.name for field in fields(EnvNamesConfig)}
    for field, constant in BUNDLED.items():
        assert getattr(defaults, field) == (getattr(envvars, constant),), field
    assert SUPERUSER_NAMES == (envvars.SUPERUSER_USERNAME, envvars.SUPERUSER_EMAIL,
                               envvars.SUPERUSER_PASSWORD)
    written = {getattr(envvars, c) for c in [*BUNDLED.values()]} | set(SUPERUSER_NAMES)
    assert set(envvars.ALL) - written == {getattr(envvars, c) for c in APP_ONLY}


def test_every_default_is_one_name_and_no_name_is_used_twice():
    names = [name for _, names in EnvNamesConfig().written() for name in names]
    assert len(names) == len(set(names)) == len(fields(EnvNamesConfig))
    assert not set(names) & set(SUPERUSER_NAMES)


def test_a_project_with_none_of_the_bundled_apps_files_renders(tmp_path):
    """The issue's crash: replacing djsite made rendering fail (appenv loaded
    djsite/envvars.py by path). A project that is only a Dockerfile renders every host's
    plan, its env file under the contract's names."""
    from components.config import parse_config
    from components.plans import stack_plans
    from components.plans.describe import host_files, inspect_values
    from tests.config.test_parse import BOTH_SECRETS, with_value

    (tmp_path / "Dockerfile").write_text("FROM python:3.12-slim\n")
    cfg = parse_config(with_value("app.source", str(tmp_path)), BOTH_SECRETS,
                       check_files=False)
    plans = stack_plans(cfg)
    written = {w.path: w.content for plan in plans if plan.host == "app1"
               for w in host_files(plan, inspect_values(cfg))}
    assert "DJANGO_SECRET_KEY=<secret:django secret key>\n" in written["etc/djscale/app.env"]
    upload = next(i for i in plans[1].items if i.name == "upload-context")
    assert upload.files == ("Dockerfile",)
