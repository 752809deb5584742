"""The app's env file: exact text, names from the shared envvars module."""
from __future__ import annotations

import pytest

from components.config import AppConfig, SuperuserConfig
from components.render import appenv
from components.render.appenv import envvars, render_app_env
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


def test_aws_without_endpoint_leaves_the_endpoint_unset(cfg):
    aws = replace(cfg, static_storage=replace(cfg.static_storage, endpoint_url=None))
    assert envvars.S3_ENDPOINT_URL not in render_app_env(aws, **SECRETS)


@pytest.mark.parametrize("bad", ["two\nlines", "cr\rhere", "nul\0"])
def test_values_that_the_env_file_format_cannot_carry_are_refused(cfg, bad):
    with pytest.raises(ValueError, match="DATABASE_PASSWORD"):
        render_app_env(cfg, **{**SECRETS, "db_password": bad})


def test_every_name_written_is_a_shared_constant(cfg):
    text = render_app_env(cfg, **SECRETS, superuser_password="x")
    names = [line.split("=", 1)[0] for line in text.splitlines() if not line.startswith("#")]
    assert set(names) <= set(envvars.ALL)


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
