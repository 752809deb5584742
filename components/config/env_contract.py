"""The env contract: every value djscale gives the app's containers, and the names it
writes it under (`app.envNames`).

Each value is one key, declared once below with the name the bundled app reads as its
default. A project that reads other names maps them in its stack config, without code
changes: a value may go under several names, or under none (`[]`: not written). Constants
a project needs besides (`DATABASE_ENGINE=postgresql`) are `app.env`; its own secrets are
`appSecrets`.

djscale never reads a file of the project it deploys. The bundled app keeps its own copy of
these names (assets/app/djsite/envvars.py); tests/config/test_env_contract.py checks that
the two agree.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from . import rules
from .keys import Names, Text, setting

NAMES = Names(rules.env_name_problem)
# Read by Django's `createsuperuser --noinput` (its own names: not mappable), written only
# into the release's environment.
SUPERUSER_USERNAME = "DJANGO_SUPERUSER_USERNAME"
SUPERUSER_EMAIL = "DJANGO_SUPERUSER_EMAIL"
SUPERUSER_PASSWORD = "DJANGO_SUPERUSER_PASSWORD"
SUPERUSER_NAMES = (SUPERUSER_USERNAME, SUPERUSER_EMAIL, SUPERUSER_PASSWORD)


def _names(key: str, default: str, doc: str):
    return setting(key, NAMES, (default,), doc)


@dataclass(frozen=True)
class EnvNamesConfig:
    secret_key: tuple[str, ...] = _names(
        "secretKey", "DJANGO_SECRET_KEY", "Django's `SECRET_KEY` (generated; secret).")
    debug: tuple[str, ...] = _names(
        "debug", "DJANGO_DEBUG", "`app.debug`, spelled as `app.debugValues` says.")
    allowed_hosts: tuple[str, ...] = _names(
        "allowedHosts", "DJANGO_ALLOWED_HOSTS",
        "`domain` and `app.extraAllowedHosts`, comma-separated.")
    csrf_trusted_origins: tuple[str, ...] = _names(
        "csrfTrustedOrigins", "DJANGO_CSRF_TRUSTED_ORIGINS", "`https://<domain>`.")
    log_level: tuple[str, ...] = _names("logLevel", "DJANGO_LOGLEVEL", "`app.logLevel`.")
    db_host: tuple[str, ...] = _names(
        "dbHost", "DATABASE_HOST", "The database's private address.")
    db_port: tuple[str, ...] = _names("dbPort", "DATABASE_PORT", "The database's port.")
    db_name: tuple[str, ...] = _names("dbName", "DATABASE_NAME", "The database's name.")
    db_user: tuple[str, ...] = _names("dbUser", "DATABASE_USER", "The database role.")
    db_password: tuple[str, ...] = _names(
        "dbPassword", "DATABASE_PASSWORD", "The role's password (generated; secret).")
    db_ssl_mode: tuple[str, ...] = _names(
        "dbSslMode", "DATABASE_SSLMODE",
        "`verify-full` (libpq's `sslmode`): the database takes TLS connections only.")
    db_ssl_root_cert: tuple[str, ...] = _names(
        "dbSslRootCert", "DATABASE_SSLROOTCERT",
        "`/etc/djscale/db-ca.pem` (libpq's `sslrootcert`): the database's certificate, "
        "mounted read-only.")
    static_bucket: tuple[str, ...] = _names(
        "staticBucket", "AWS_STORAGE_BUCKET_NAME", "`staticStorage.bucket`.")
    static_endpoint_url: tuple[str, ...] = _names(
        "staticEndpointUrl", "AWS_S3_ENDPOINT_URL",
        "`staticStorage.endpointUrl` (not written when `null`).")
    static_region: tuple[str, ...] = _names(
        "staticRegion", "AWS_S3_REGION_NAME", "`staticStorage.region`.")
    static_access_key_id: tuple[str, ...] = _names(
        "staticAccessKeyId", "AWS_ACCESS_KEY_ID", "`staticStorage.accessKeyId`.")
    static_secret_key: tuple[str, ...] = _names(
        "staticSecretKey", "AWS_SECRET_ACCESS_KEY", "`staticStorageSecretKey` (secret).")
    static_addressing_style: tuple[str, ...] = _names(
        "staticAddressingStyle", "AWS_S3_ADDRESSING_STYLE",
        "`path` with `staticStorage.pathStyle`, else `virtual`.")
    static_custom_domain: tuple[str, ...] = _names(
        "staticCustomDomain", "AWS_S3_CUSTOM_DOMAIN",
        "`staticStorage.customDomain` (not written when `null`).")
    static_default_acl: tuple[str, ...] = _names(
        "staticDefaultAcl", "AWS_DEFAULT_ACL",
        "`public-read` with `staticStorage.publicReadAcl`, else empty.")
    gunicorn_workers: tuple[str, ...] = _names(
        "gunicornWorkers", "GUNICORN_WORKERS", "`app.workers`.")
    gunicorn_forwarded_allow_ips: tuple[str, ...] = _names(
        "gunicornForwardedAllowIps", "GUNICORN_FORWARDED_ALLOW_IPS",
        "The proxy's private address: the one peer whose `X-Forwarded-*` headers to trust.")

    def written(self) -> list[tuple[str, tuple[str, ...]]]:
        """(key name, its names) of every value, in declaration order."""
        return [(field.metadata["key"].name, getattr(self, field.name))
                for field in fields(self)]


ENV_VALUE = Text(doc="string (may be empty)", numbers=True, empty=True)


@dataclass(frozen=True)
class DebugValuesConfig:
    when_true: str = setting("whenTrue", ENV_VALUE, "true",
                             "What the `app.envNames.debug` variables hold when `app.debug` "
                             "is true.")
    when_false: str = setting(
        "whenFalse", ENV_VALUE, "false",
        "...and when it is false. `\"\"` (empty) for settings that test the text's truth "
        "(`DEBUG = os.getenv(\"DEBUG\", False)`: any text but the empty one, `\"false\"` "
        "too, turns debug on).")
