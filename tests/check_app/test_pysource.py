"""components/check_app/pysource.py: settings read without running them."""
from __future__ import annotations

import textwrap
from pathlib import Path

from components.check_app.pysource import (UNKNOWN, Project, concrete_models,
                                            environment_reads, module_values,
                                            string_constants)


def project(tmp_path: Path, files: dict[str, str]) -> Project:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return Project(tmp_path, tuple(sorted(files)))


def test_split_settings_are_followed_through_star_imports(tmp_path):
    p = project(tmp_path, {
        "config/__init__.py": "",
        "config/settings/__init__.py": "",
        "config/settings/base.py": """
            DJANGO_APPS = ["django.contrib.auth"]
            LOCAL_APPS = ["shop.users", "shop.orders"]
            INSTALLED_APPS = DJANGO_APPS + LOCAL_APPS
            WSGI_APPLICATION = "config.wsgi.application"
        """,
        "config/settings/production.py": """
            from .base import *  # noqa
            INSTALLED_APPS += ["anymail"]
            ROOT_URLCONF = "config.urls"
            SECRET = compute()
        """,
    })
    values = module_values(p, "config/settings/production.py")
    assert values["INSTALLED_APPS"] == ["django.contrib.auth", "shop.users", "shop.orders",
                                        "anymail"]
    assert values["WSGI_APPLICATION"] == "config.wsgi.application"
    assert values["SECRET"] is UNKNOWN


def test_environment_reads_in_the_usual_spellings(tmp_path):
    p = project(tmp_path, {
        "names.py": 'BUCKET = "STATIC_BUCKET_NAME"\n',
        "settings.py": """
            import environ, os
            from decouple import config
            from . import names
            env = environ.Env()
            A = env("DJANGO_SECRET_KEY")
            B = env.bool("DEBUG", default=False)
            C = config("DATABASE_NAME")
            D = os.environ["DATABASE_HOST"]
            E = os.getenv(key="DATABASE_PORT")
            F = "DATABASE_USER" in os.environ
            G = os.environ.get(names.BUCKET)
            H = print("NOT_READ")
            I = os.environ.get(f"DYNAMIC_{A}")
        """,
    })
    assert environment_reads(p, "settings.py", string_constants(p)) == {
        "DJANGO_SECRET_KEY", "DEBUG", "DATABASE_NAME", "DATABASE_HOST", "DATABASE_PORT",
        "DATABASE_USER", "STATIC_BUCKET_NAME"}


def test_concrete_models(tmp_path):
    p = project(tmp_path, {"app/models.py": """
        from django.contrib.auth.models import AbstractUser
        from django.db import models
        from model_utils.models import TimeStampedModel

        class User(AbstractUser):
            pass

        class Base(models.Model):
            class Meta:
                abstract = True

        class Post(Base):
            pass

        class Event(TimeStampedModel):
            pass

        class Kind(models.TextChoices):
            A = "a"

        class PostManager(models.Manager):
            pass
    """})
    assert concrete_models(p, "app/models.py") == ["User", "Post", "Event"]
