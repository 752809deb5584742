"""The app's env file: exact text, its names from the env contract (app.envNames)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from components.config import AppConfig, SuperuserConfig, parse_config, read_stack_file
from components.config.env_contract import SUPERUSER_NAMES, EnvNamesConfig
from components.render import appenv
from components.render.appenv import parse_env_file, render_app_env
from tests.render.conftest import make_config, replace

SECRETS = dict(db_host="10.0.0.10", db_port=5432, db_name="django", db_user="django",
               db_password="<secret:database password>",
               secret_key="<secret:django secret key>",
               s3_secret_key="<secret:static storage secret key>")


def test_env_file_for_the_release_run_with_superuser(cfg):
    text = render_app_env(cfg, **SECRETS, superuser_password="<secret:superuser password>")
    assert text == """\
# managed by djscale, do not edit
# Environment of the djscale release's one-off container (migrate, collectstatic,
# createsuperuser): the app containers' settings plus the superuser's credentials.
# docker --env-file: the value is the rest of the line, taken literally. It holds secrets:
# the release step's stdin, handed to docker through a pipe, never stored in a file.
DJANGO_SECRET_KEY=<secret:django secret key>
DJANGO_DEBUG=false
DJANGO_ALLOWED_HOSTS=shop.example.com
DJANGO_CSRF_TRUSTED_ORIGINS=https://shop.example.com
DJANGO_LOGLEVEL=INFO
DATABASE_HOST=10.0.0.10
DATABASE_PORT=5432
DATABASE_NAME=django
DATABASE_USER=django
DATABASE_PASSWORD=<secret:database password>
DATABASE_SSLMODE=verify-full
DATABASE_SSLROOTCERT=/etc/djscale/db-ca.pem
AWS_STORAGE_BUCKET_NAME=shop-static
AWS_S3_ENDPOINT_URL=https://s3.example.net
AWS_S3_REGION_NAME=eu-west-1
AWS_ACCESS_KEY_ID=AKIAEXAMPLE
AWS_SECRET_ACCESS_KEY=<secret:static storage secret key>
AWS_S3_ADDRESSING_STYLE=virtual
AWS_DEFAULT_ACL=public-read
GUNICORN_WORKERS=3
GUNICORN_FORWARDED_ALLOW_IPS=10.0.0.30
DJANGO_SUPERUSER_USERNAME=admin
DJANGO_SUPERUSER_EMAIL=admin@example.com
DJANGO_SUPERUSER_PASSWORD=<secret:superuser password>
"""


def test_env_file_for_minio_with_debug_workers_extras_and_bucket_policy():
    cfg = make_config()
    cfg = replace(
        cfg,
        app=AppConfig(workers=5, extra_allowed_hosts=("www.shop.example.com", "10.0.0.30"),
                      debug=True, log_level="DEBUG",
                      superuser=SuperuserConfig(username="root", email="r@example.com")),
        static_storage=replace(cfg.static_storage, endpoint_url="http://10.0.0.40:9000",
                               path_style=True, public_read_acl=False,
                               custom_domain="static.example.com"),
    )
    text = render_app_env(cfg, **SECRETS)
    assert text == """\
# managed by djscale, do not edit
# Environment of the djscale app containers (docker --env-file: the value is the rest of
# the line, taken literally). Readable by root only: it holds secrets.
DJANGO_SECRET_KEY=<secret:django secret key>
DJANGO_DEBUG=true
DJANGO_ALLOWED_HOSTS=shop.example.com,www.shop.example.com,10.0.0.30
DJANGO_CSRF_TRUSTED_ORIGINS=https://shop.example.com
DJANGO_LOGLEVEL=DEBUG
DATABASE_HOST=10.0.0.10
DATABASE_PORT=5432
DATABASE_NAME=django
DATABASE_USER=django
DATABASE_PASSWORD=<secret:database password>
DATABASE_SSLMODE=verify-full
DATABASE_SSLROOTCERT=/etc/djscale/db-ca.pem
AWS_STORAGE_BUCKET_NAME=shop-static
AWS_S3_ENDPOINT_URL=http://10.0.0.40:9000
AWS_S3_REGION_NAME=eu-west-1
AWS_ACCESS_KEY_ID=AKIAEXAMPLE
AWS_SECRET_ACCESS_KEY=<secret:static storage secret key>
AWS_S3_ADDRESSING_STYLE=path
AWS_S3_CUSTOM_DOMAIN=static.example.com
AWS_DEFAULT_ACL=
GUNICORN_WORKERS=5
GUNICORN_FORWARDED_ALLOW_IPS=10.0.0.30
"""


def _env_values(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in parse_env_file(text))


@pytest.mark.parametrize("mode, hosts, origins", [
    ("serve", "shop.example.com,shop.example.net,www.shop.example.net,10.0.0.30",
     "https://shop.example.com,https://shop.example.net,https://www.shop.example.net"),
    # redirected aliases never reach the app: nginx answers them
    ("redirect", "shop.example.com,www.shop.example.net,10.0.0.30", "https://shop.example.com"),
])
def test_allowed_hosts_and_csrf_origins_follow_the_served_names(cfg, mode, hosts, origins):
    cfg = replace(cfg, domain_aliases=("shop.example.net", "www.shop.example.net"),
                  alias_mode=mode,
                  app=replace(cfg.app, extra_allowed_hosts=("www.shop.example.net",
                                                            "10.0.0.30")))
    values = _env_values(render_app_env(cfg, **SECRETS))
    assert values["DJANGO_ALLOWED_HOSTS"] == hosts  # each name once
    assert values["DJANGO_CSRF_TRUSTED_ORIGINS"] == origins


def test_aws_without_endpoint_leaves_the_endpoint_unset(cfg):
    aws = replace(cfg, static_storage=replace(cfg.static_storage, endpoint_url=None))
    assert "AWS_S3_ENDPOINT_URL" not in render_app_env(aws, **SECRETS)


@pytest.mark.parametrize("bad", ["two\nlines", "cr\rhere", "nul\0"])
def test_values_that_the_env_file_format_cannot_carry_are_refused(cfg, bad):
    with pytest.raises(ValueError, match="DATABASE_PASSWORD"):
        render_app_env(cfg, **{**SECRETS, "db_password": bad})


def test_every_value_of_the_contract_is_written_under_its_default_name(cfg):
    text = render_app_env(cfg, **SECRETS, superuser_password="x")
    names = [line.split("=", 1)[0] for line in text.splitlines() if not line.startswith("#")]
    defaults = [name for field in fields(EnvNamesConfig)
                for name in getattr(EnvNamesConfig(), field.name)]
    assert set(names) == set(defaults + list(SUPERUSER_NAMES)) - {"AWS_S3_CUSTOM_DOMAIN"}
    assert set(appenv.provided_values(cfg, **SECRETS)) == {f.name for f in fields(EnvNamesConfig)}


def test_parse_env_file_reads_docker_env_file_lines_literally():
    text = "# managed by djscale\n\nA=1\nB=x=y \"q\"\nEMPTY=\n  # indented comment\n"
    assert appenv.parse_env_file(text) == ["A=1", 'B=x=y "q"', "EMPTY="]


def test_the_database_certificate_file_holds_one_certificate_and_nothing_else():
    cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
    assert appenv.render_db_ca_file(cert + "\n\n") == cert + "\n"
    key = "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n"
    for bad in ("", "not a certificate", key + cert, cert + "\n" + cert):
        with pytest.raises(ValueError, match="not one PEM certificate"):
            appenv.render_db_ca_file(bad)


# --- a project djscale did not shape ---------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
OWN_PROJECT = ROOT / "tests" / "fixtures" / "own_project"


def own_project_config():
    """tests/fixtures/stack_own_project.yaml, as `pulumi up` parses it."""
    raw, secrets = read_stack_file(ROOT / "tests" / "fixtures" / "stack_own_project.yaml")
    return parse_config(raw, secrets, check_files=False)


def test_the_digitalocean_tutorial_layout_needs_config_only():
    """The names the tutorial's settings read, each once; nothing it does not read; its
    constants; DEBUG empty (off) for `os.getenv("DEBUG", False)`; the project's own setting
    and secret."""
    cfg = own_project_config()
    text = render_app_env(cfg, **SECRETS, app_secrets={"API_TOKEN": "<secret:api token>"})
    assert text == """\
# managed by djscale, do not edit
# Environment of the djscale app containers (docker --env-file: the value is the rest of
# the line, taken literally). Readable by root only: it holds secrets.
DJANGO_SECRET_KEY=<secret:django secret key>
DEBUG=
DJANGO_ALLOWED_HOSTS=own.example.com
DJANGO_LOGLEVEL=INFO
DATABASE_HOST=10.0.0.10
DATABASE_PORT=5432
DATABASE_NAME=django
DATABASE_USERNAME=django
DATABASE_PASSWORD=<secret:database password>
STATIC_BUCKET_NAME=own-static
STATIC_ENDPOINT_URL=https://nyc3.digitaloceanspaces.com
STATIC_ACCESS_KEY_ID=DO00EXAMPLEFIXTURE01
STATIC_SECRET_KEY=<secret:static storage secret key>
DATABASE_ENGINE=postgresql
DATABASE_OPTIONS={"sslmode": "verify-full", "sslrootcert": "/etc/djscale/db-ca.pem"}
SITE_GREETING=Hello from a project djscale did not shape
API_TOKEN=<secret:api token>
"""
    debug = replace(cfg, app=replace(cfg.app, debug=True))
    assert "\nDEBUG=True\n" in render_app_env(debug, **SECRETS, app_secrets={"API_TOKEN": "t"})


PROBE = """
import json, django
django.setup()
from django.conf import settings as s
from django.core.files.storage import storages
static = storages["staticfiles"]
print(json.dumps({
    "SECRET_KEY": s.SECRET_KEY, "DEBUG": bool(s.DEBUG), "ALLOWED_HOSTS": s.ALLOWED_HOSTS,
    "DATABASE": {k: s.DATABASES["default"][k] for k in
                 ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS")},
    "static": [static.bucket_name, static.endpoint_url, static.access_key, static.secret_key],
    "LOGLEVEL": s.LOGLEVEL, "SITE_GREETING": s.SITE_GREETING, "API_TOKEN": s.API_TOKEN,
    "login": django.contrib.auth.get_user_model().USERNAME_FIELD,
}))
"""


def test_the_projects_own_settings_read_what_the_env_file_says():
    """Django boots the fixture project (its settings unchanged) with exactly the rendered
    environment, as `docker run --env-file` gives it: every setting holds djscale's value."""
    cfg = own_project_config()
    text = render_app_env(cfg, **SECRETS, app_secrets={"API_TOKEN": "token-1"})
    env = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "mysite.settings",
           "PYTHONDONTWRITEBYTECODE": "1"}
    env.update(line.split("=", 1) for line in appenv.parse_env_file(text))
    probe = subprocess.run([sys.executable, "-c", PROBE], cwd=OWN_PROJECT, env=env,
                           capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout) == {
        "SECRET_KEY": "<secret:django secret key>", "DEBUG": False,
        "ALLOWED_HOSTS": ["own.example.com"],
        "DATABASE": {"ENGINE": "django.db.backends.postgresql", "NAME": "django",
                     "USER": "django", "PASSWORD": "<secret:database password>",
                     "HOST": "10.0.0.10", "PORT": "5432",
                     "OPTIONS": {"sslmode": "verify-full",
                                 "sslrootcert": "/etc/djscale/db-ca.pem"}},
        "static": ["own-static", "https://nyc3.digitaloceanspaces.com",
                   "DO00EXAMPLEFIXTURE01", "<secret:static storage secret key>"],
        "LOGLEVEL": "INFO", "SITE_GREETING": "Hello from a project djscale did not shape",
        "API_TOKEN": "token-1", "login": "email"}


def test_app_env_and_app_secrets_follow_the_contract_in_both_env_files(cfg):
    cfg = replace(cfg, app=replace(cfg.app, env=(("EMAIL_HOST", "smtp.example.com"),
                                                 ("FEATURE_X", ""))),
                  app_secret_names=("API_TOKEN", "SENTRY_DSN"))
    secrets = {"API_TOKEN": "<secret:t>", "SENTRY_DSN": "<secret:dsn>"}
    tail = "EMAIL_HOST=smtp.example.com\nFEATURE_X=\nAPI_TOKEN=<secret:t>\nSENTRY_DSN=<secret:dsn>\n"
    assert render_app_env(cfg, **SECRETS, app_secrets=secrets).endswith(
        "GUNICORN_FORWARDED_ALLOW_IPS=10.0.0.30\n" + tail)
    release = render_app_env(cfg, **SECRETS, app_secrets=secrets, superuser_password="pw")
    assert "GUNICORN_FORWARDED_ALLOW_IPS=10.0.0.30\n" + tail + "DJANGO_SUPERUSER_USERNAME=" \
        in release
    with pytest.raises(ValueError, match="SENTRY_DSN"):
        render_app_env(cfg, **SECRETS, app_secrets={**secrets, "SENTRY_DSN": "a\nb"})


def test_a_value_may_go_under_several_names_or_none(cfg):
    names = replace(cfg.app.env_names, db_user=("DATABASE_USER", "PGUSER"), db_ssl_mode=())
    cfg = replace(cfg, app=replace(cfg.app, env_names=names))
    text = render_app_env(cfg, **SECRETS)
    assert "DATABASE_USER=django\nPGUSER=django\nDATABASE_PASSWORD=" in text
    assert "SSLMODE" not in text
