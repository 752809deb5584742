"""Names of the environment variables the app reads.

The app's own copy of djscale's default env contract (components/config/env_contract.py,
`app.envNames`): djscale never reads this file, and tests/config/test_env_contract.py checks
that the two agree. Pure Python: no Django import, so gunicorn.conf.py can load it too.
"""

SECRET_KEY = "DJANGO_SECRET_KEY"
DEBUG = "DJANGO_DEBUG"
ALLOWED_HOSTS = "DJANGO_ALLOWED_HOSTS"  # comma-separated
CSRF_TRUSTED_ORIGINS = "DJANGO_CSRF_TRUSTED_ORIGINS"  # comma-separated, with scheme
LOG_LEVEL = "DJANGO_LOGLEVEL"
SECURE_HSTS_SECONDS = "DJANGO_SECURE_HSTS_SECONDS"

DB_HOST = "DATABASE_HOST"
DB_PORT = "DATABASE_PORT"
DB_NAME = "DATABASE_NAME"
DB_USER = "DATABASE_USER"
DB_PASSWORD = "DATABASE_PASSWORD"
DB_CONN_MAX_AGE = "DATABASE_CONN_MAX_AGE"
DB_SSLMODE = "DATABASE_SSLMODE"  # libpq's sslmode; djscale writes verify-full
DB_SSLROOTCERT = "DATABASE_SSLROOTCERT"  # the certificate(s) that verify the server

S3_BUCKET = "AWS_STORAGE_BUCKET_NAME"
S3_ENDPOINT_URL = "AWS_S3_ENDPOINT_URL"
S3_REGION = "AWS_S3_REGION_NAME"
S3_ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID"
S3_SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY"
S3_ADDRESSING_STYLE = "AWS_S3_ADDRESSING_STYLE"  # "path" (MinIO) or "virtual"
S3_CUSTOM_DOMAIN = "AWS_S3_CUSTOM_DOMAIN"  # optional CDN / custom domain
S3_DEFAULT_ACL = "AWS_DEFAULT_ACL"  # "public-read", or empty for a bucket policy

GUNICORN_WORKERS = "GUNICORN_WORKERS"
# Comma-separated addresses or networks of the proxies whose X-Forwarded-* gunicorn trusts
# (djscale writes the proxy's private address); unset: 127.0.0.1 and ::1 only.
GUNICORN_FORWARDED_ALLOW_IPS = "GUNICORN_FORWARDED_ALLOW_IPS"

# Read by `manage.py createsuperuser --noinput` (Django's own names).
SUPERUSER_USERNAME = "DJANGO_SUPERUSER_USERNAME"
SUPERUSER_EMAIL = "DJANGO_SUPERUSER_EMAIL"
SUPERUSER_PASSWORD = "DJANGO_SUPERUSER_PASSWORD"

ALL = (
    SECRET_KEY, DEBUG, ALLOWED_HOSTS, CSRF_TRUSTED_ORIGINS, LOG_LEVEL, SECURE_HSTS_SECONDS,
    DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD, DB_CONN_MAX_AGE, DB_SSLMODE,
    DB_SSLROOTCERT,
    S3_BUCKET, S3_ENDPOINT_URL, S3_REGION, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY,
    S3_ADDRESSING_STYLE, S3_CUSTOM_DOMAIN, S3_DEFAULT_ACL,
    GUNICORN_WORKERS, GUNICORN_FORWARDED_ALLOW_IPS,
    SUPERUSER_USERNAME, SUPERUSER_EMAIL, SUPERUSER_PASSWORD,
)
