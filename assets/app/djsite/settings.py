"""Production settings, from the environment only.

Every value is read once, in the block at the top, under the names in djsite/envvars.py
(djscale's default env contract, app.envNames). Secrets have no default: a missing one stops
the process at boot with ImproperlyConfigured naming the variable. Booleans are parsed for
real ("False" is false). The app runs behind djscale's nginx, which terminates TLS, sets
`X-Forwarded-Proto`, passes the client's Host, redirects http to https and is the only
client that the firewall lets reach us.
"""
import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from djsite import envvars

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def env_str(name, default=None):
    value = os.environ.get(name)
    return default if value is None or value.strip() == "" else value.strip()


def env_required(name):
    value = env_str(name)
    if value is None:
        raise ImproperlyConfigured(f"environment variable {name} is required and not set")
    return value


def env_bool(name, default):
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"environment variable {name}={raw!r} is not a boolean "
        f"(use one of {sorted(_TRUE)} or {sorted(_FALSE - {''})})")


def env_int(name, default, minimum=0):
    raw = env_str(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"environment variable {name}={raw!r} is not an integer")
    if value < minimum:
        raise ImproperlyConfigured(f"environment variable {name}={value} is below {minimum}")
    return value


def env_list(name):
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


# --- the environment, read once ---------------------------------------------------------------
DEBUG = env_bool(envvars.DEBUG, default=False)
SECRET_KEY = env_required(envvars.SECRET_KEY)
ALLOWED_HOSTS = env_list(envvars.ALLOWED_HOSTS)
CSRF_TRUSTED_ORIGINS = env_list(envvars.CSRF_TRUSTED_ORIGINS)
LOG_LEVEL = env_str(envvars.LOG_LEVEL, "INFO").upper()
HSTS_SECONDS = env_int(envvars.SECURE_HSTS_SECONDS, default=31536000)

DB_HOST = env_str(envvars.DB_HOST, "localhost")
DB_PORT = env_int(envvars.DB_PORT, default=5432, minimum=1)
DB_NAME = env_str(envvars.DB_NAME, "django")
DB_USER = env_str(envvars.DB_USER, "django")
# Local development may use a passwordless (trust/peer) PostgreSQL; production may not.
DB_PASSWORD = env_str(envvars.DB_PASSWORD, "") if DEBUG else env_required(envvars.DB_PASSWORD)
DB_CONN_MAX_AGE = env_int(envvars.DB_CONN_MAX_AGE, default=60)
# TLS to PostgreSQL, as libpq names it; unset: libpq's own default (prefer, unverified).
# djscale sets verify-full with the database's certificate.
DB_SSLMODE = env_str(envvars.DB_SSLMODE)
DB_SSLROOTCERT = env_str(envvars.DB_SSLROOTCERT)

# Production serves static files from S3 only: without a bucket, fail at boot instead of
# silently writing them to the container's disk. Local development falls back to disk.
S3_BUCKET = env_str(envvars.S3_BUCKET) if DEBUG else env_required(envvars.S3_BUCKET)
S3_ENDPOINT_URL = env_str(envvars.S3_ENDPOINT_URL)  # unset: AWS
S3_REGION = env_str(envvars.S3_REGION)
S3_ACCESS_KEY_ID = env_str(envvars.S3_ACCESS_KEY_ID)  # unset: boto3's chain (IAM role...)
S3_SECRET_ACCESS_KEY = env_str(envvars.S3_SECRET_ACCESS_KEY)
S3_ADDRESSING_STYLE = env_str(envvars.S3_ADDRESSING_STYLE)  # "path", "virtual", unset: auto
S3_CUSTOM_DOMAIN = env_str(envvars.S3_CUSTOM_DOMAIN)
S3_DEFAULT_ACL = env_str(envvars.S3_DEFAULT_ACL)  # "public-read", unset: bucket policy
# -----------------------------------------------------------------------------------------------

if S3_ADDRESSING_STYLE not in (None, "path", "virtual", "auto"):
    raise ImproperlyConfigured(
        f"environment variable {envvars.S3_ADDRESSING_STYLE}={S3_ADDRESSING_STYLE!r} "
        "must be 'path', 'virtual' or 'auto'")
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(
        f"environment variable {envvars.LOG_LEVEL}={LOG_LEVEL!r} is not a log level")
_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
if DB_SSLMODE not in (None, *_SSLMODES):
    raise ImproperlyConfigured(
        f"environment variable {envvars.DB_SSLMODE}={DB_SSLMODE!r} must be one of "
        f"{', '.join(_SSLMODES)}")
# A certificate that is not there would fail every connection later, one request at a time.
if DB_SSLROOTCERT is not None and not os.path.isfile(DB_SSLROOTCERT):
    raise ImproperlyConfigured(
        f"environment variable {envvars.DB_SSLROOTCERT}={DB_SSLROOTCERT!r}: no such file")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "storages",
    "mydb",
]

MIDDLEWARE = [
    "djsite.health.HealthCheckMiddleware",  # first: no host check, session or CSRF
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "djsite.urls"
WSGI_APPLICATION = "djsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- behind the TLS-terminating proxy ----------------------------------------------------------
# nginx sets X-Forwarded-Proto to its own $scheme (overwriting the client's), and only nginx
# can reach us, so the header can be trusted. Without this, Django >= 4.0 sees http, and the
# Origin check rejects every https form post (the admin login) with "CSRF verification failed".
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
USE_X_FORWARDED_HOST = False  # nginx passes the client's Host itself
# nginx redirects http to https; Django must not, because health checks come over plain http.
SECURE_SSL_REDIRECT = False
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
# HSTS comes from Django (sent only on https responses, i.e. behind the proxy). 0 disables it.
SECURE_HSTS_SECONDS = 0 if DEBUG else HSTS_SECONDS
SECURE_HSTS_INCLUDE_SUBDOMAINS = False  # other hosts of the domain are not ours to pin
SECURE_HSTS_PRELOAD = False
X_FRAME_OPTIONS = "DENY"
# Deliberate choices that `check --deploy` would flag: W008 SECURE_SSL_REDIRECT (the proxy
# redirects), W005 HSTS includeSubDomains and W021 HSTS preload (commitments about the whole
# domain that only its owner can make; this app serves one host name).
SILENCED_SYSTEM_CHECKS = ["security.W008", "security.W005", "security.W021"]

# --- database ----------------------------------------------------------------------------------
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": DB_HOST,
        "PORT": DB_PORT,
        "NAME": DB_NAME,
        "USER": DB_USER,
        "PASSWORD": DB_PASSWORD,
        # Keep connections across requests, and check a reused one before use, so a
        # database restart costs one reconnect instead of one failed request per worker.
        "CONN_MAX_AGE": DB_CONN_MAX_AGE,
        "CONN_HEALTH_CHECKS": True,
        # An unreachable database must fail /healthz quickly, not hang the worker.
        "OPTIONS": {
            "connect_timeout": 5,
            **({"sslmode": DB_SSLMODE} if DB_SSLMODE else {}),
            **({"sslrootcert": DB_SSLROOTCERT} if DB_SSLROOTCERT else {}),
        },
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- static and media files --------------------------------------------------------------------
STATIC_URL = "static/"
MEDIA_URL = "media/"
if S3_BUCKET:
    _S3_COMMON = {
        "bucket_name": S3_BUCKET,
        "endpoint_url": S3_ENDPOINT_URL,  # MinIO, DigitalOcean Spaces, moto; None: AWS
        "region_name": S3_REGION,
        "access_key": S3_ACCESS_KEY_ID,
        "secret_key": S3_SECRET_ACCESS_KEY,
        "addressing_style": S3_ADDRESSING_STYLE,
        "signature_version": "s3v4",
    }
    STORAGES = {
        # Static files are public: by ACL ("public-read") or by a bucket policy that makes
        # <bucket>/static/* readable (AWS_DEFAULT_ACL unset). URLs carry no signature.
        "staticfiles": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                **_S3_COMMON,
                "location": "static",
                "default_acl": S3_DEFAULT_ACL,
                "querystring_auth": False,
                "custom_domain": S3_CUSTOM_DOMAIN,
                "object_parameters": {"CacheControl": "public, max-age=3600"},
            },
        },
        # Uploads are private: never an ACL, never overwritten, served through signed URLs.
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                **_S3_COMMON,
                "location": "media",
                "default_acl": "private",
                "querystring_auth": True,
                "file_overwrite": False,
            },
        },
    }
else:  # DEBUG only (see S3_BUCKET above): local development on disk
    STATIC_ROOT = BASE_DIR / "staticfiles"
    MEDIA_ROOT = BASE_DIR / "media"
    STORAGES = {
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }

# --- logging: everything to stdout, where Docker collects it -----------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "plain",
        },
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["stdout"], "level": LOG_LEVEL, "propagate": False},
        # boto3/botocore at DEBUG would log request signing details: keep them quiet.
        "botocore": {"level": "WARNING"},
        "boto3": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
    },
}
