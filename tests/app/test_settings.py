"""Settings from the environment: what production boots with, and what stops it at boot."""
import pytest

from .helpers import E, SITE_HOST, app_env, manage, probe_settings, settings_of


@pytest.fixture(scope="module")
def env(postgres, s3):
    return app_env(postgres.database, s3)


@pytest.mark.parametrize("raw", ["False", "false", "0", "no", "off", "OFF", " False ", ""])
def test_debug_off_spellings(env, raw):
    assert settings_of({**env, E.DEBUG: raw})["DEBUG"] is False


@pytest.mark.parametrize("raw", ["True", "true", "1", "yes", "on", "TRUE"])
def test_debug_on_spellings(env, raw):
    assert settings_of({**env, E.DEBUG: raw})["DEBUG"] is True


def test_debug_defaults_to_off(env):
    env = dict(env)
    del env[E.DEBUG]
    assert settings_of(env)["DEBUG"] is False


@pytest.mark.parametrize("raw", ["Flase", "2", "nope", "False,"])
def test_debug_garbage_stops_boot(env, raw):
    proc = probe_settings({**env, E.DEBUG: raw})
    assert proc.returncode != 0
    assert "ImproperlyConfigured" in proc.stderr and E.DEBUG in proc.stderr


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_secret_key_stops_boot(env, value):
    env = dict(env)
    if value is None:
        del env[E.SECRET_KEY]
    else:
        env[E.SECRET_KEY] = value
    proc = manage(env, "check", check=False)
    assert proc.returncode != 0
    assert "ImproperlyConfigured" in proc.stderr and E.SECRET_KEY in proc.stderr


@pytest.mark.parametrize("name", [E.DB_PASSWORD, E.S3_BUCKET])
def test_production_requires(env, name):
    env = dict(env)
    del env[name]
    proc = probe_settings(env)
    assert proc.returncode != 0 and name in proc.stderr
    # ...while local development (DEBUG on) falls back to a passwordless DB / local disk
    env[E.DEBUG] = "true"
    assert probe_settings(env).returncode == 0


def test_local_development_stores_static_files_on_disk(env):
    env = {**env, E.DEBUG: "1"}
    del env[E.S3_BUCKET]
    assert settings_of(env)["staticfiles"] == (
        "django.contrib.staticfiles.storage.StaticFilesStorage")


def test_production_settings(env, s3):
    s = settings_of(env)
    assert s["DEBUG"] is False
    assert s["ALLOWED_HOSTS"] == [SITE_HOST, "127.0.0.1"]
    assert s["CSRF_TRUSTED_ORIGINS"] == [f"https://{SITE_HOST}"]
    assert s["SESSION_COOKIE_SECURE"] and s["CSRF_COOKIE_SECURE"]
    assert s["SECURE_HSTS_SECONDS"] == 31536000
    assert s["SECURE_SSL_REDIRECT"] is False
    assert s["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert s["USE_X_FORWARDED_HOST"] is False
    assert s["CONN_MAX_AGE"] == 60 and s["CONN_HEALTH_CHECKS"] is True
    assert s["staticfiles"] == "storages.backends.s3.S3Storage"
    assert s["static_acl"] == "public-read"
    assert s["media_acl"] == "private"
    # path-style (MinIO) URL, unsigned
    assert s["static_url"] == f"{s3.endpoint_url}/{s3.bucket}/static/mydb/style.css"


def test_debug_turns_off_secure_cookies_and_hsts(env):
    s = settings_of({**env, E.DEBUG: "true"})
    assert not s["SESSION_COOKIE_SECURE"] and not s["CSRF_COOKIE_SECURE"]
    assert s["SECURE_HSTS_SECONDS"] == 0


def test_env_values_are_parsed(env):
    s = settings_of({**env, E.ALLOWED_HOSTS: " a.example , b.example,,",
                     E.SECURE_HSTS_SECONDS: "600", E.DB_CONN_MAX_AGE: "0"})
    assert s["ALLOWED_HOSTS"] == ["a.example", "b.example"]
    assert s["SECURE_HSTS_SECONDS"] == 600
    assert s["CONN_MAX_AGE"] == 0


@pytest.mark.parametrize("name,value", [(E.SECURE_HSTS_SECONDS, "a year"),
                                        (E.DB_CONN_MAX_AGE, "-1"),
                                        (E.DB_PORT, "fivefourthreetwo"),
                                        (E.S3_ADDRESSING_STYLE, "dns"),
                                        (E.LOG_LEVEL, "loud")])
def test_bad_values_stop_boot(env, name, value):
    proc = probe_settings({**env, name: value})
    assert proc.returncode != 0 and name in proc.stderr


def test_bucket_policy_instead_of_acl(env):
    """AWS_DEFAULT_ACL empty: no ACL on uploads (buckets with ACLs disabled need this)."""
    assert settings_of({**env, E.S3_DEFAULT_ACL: ""})["static_acl"] is None


def test_custom_domain_and_virtual_hosted_style(env):
    """DigitalOcean Spaces / AWS with a CDN: URLs on the custom domain, over https."""
    s = settings_of({**env, E.S3_CUSTOM_DOMAIN: "cdn.example.test",
                     E.S3_ADDRESSING_STYLE: "virtual"})
    assert s["static_url"] == "https://cdn.example.test/static/mydb/style.css"


def test_deploy_checks_pass(env):
    """`manage.py check --deploy` has nothing to say about the production settings."""
    proc = manage(env, "check", "--deploy", "--fail-level", "WARNING", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
