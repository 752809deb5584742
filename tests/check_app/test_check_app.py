"""components/check_app: the contract check over small fixture projects
(tests/fixtures/projects/): `good` keeps the contract, every other directory changes one
thing of it (its files replace good's; a REMOVED file lists the ones it deletes) and must
give exactly its problem. And the bundled assets/app keeps the contract of every stack."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from components.check_app import app_environment, check_project, check_stack_app
from components.config import parse_config, read_stack_file
from components.config.stack_file import assume_secrets
from tests.render.conftest import make_config, replace

ROOT = Path(__file__).resolve().parents[2]
PROJECTS = ROOT / "tests" / "fixtures" / "projects"
# What djscale writes into the app's env file (the default names; secrets as placeholders)
ENV = {
    "DJANGO_SECRET_KEY": "<secret:django secret key>", "DJANGO_DEBUG": "false",
    "DJANGO_ALLOWED_HOSTS": "shop.example.com",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://shop.example.com", "DJANGO_LOGLEVEL": "INFO",
    "DATABASE_HOST": "10.0.0.10", "DATABASE_PORT": "5432", "DATABASE_NAME": "django",
    "DATABASE_USER": "django", "DATABASE_PASSWORD": "<secret:database password>",
    "DATABASE_SSLMODE": "verify-full", "DATABASE_SSLROOTCERT": "/etc/djscale/db-ca.pem",
    "AWS_STORAGE_BUCKET_NAME": "shop-static", "AWS_S3_ENDPOINT_URL": "https://s3.example.net",
    "AWS_S3_REGION_NAME": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "<secret:static storage secret key>",
    "AWS_S3_ADDRESSING_STYLE": "virtual", "AWS_DEFAULT_ACL": "public-read",
    "GUNICORN_WORKERS": "3", "GUNICORN_FORWARDED_ALLOW_IPS": "10.0.0.30",
}


def project(tmp_path: Path, name: str) -> Path:
    """`good` with the scenario's files laid over it (tests never touch the fixtures)."""
    target = tmp_path / name
    shutil.copytree(PROJECTS / "good", target)
    scenario = PROJECTS / name
    if name != "good":
        for path in scenario.rglob("*"):
            if path.is_file() and path.name != "REMOVED":
                destination = target / path.relative_to(scenario)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, destination)
        removed = scenario / "REMOVED"
        for line in (removed.read_text().split() if removed.exists() else ()):
            (target / line).unlink()
    return target


def check(tmp_path: Path, name: str, *, port: int = 8000, import_locally: bool = False):
    return check_project(project(tmp_path, name), container_port=port, environment=ENV,
                         shown=name, import_locally=import_locally)


def test_the_good_project_keeps_the_contract(tmp_path):
    report = check(tmp_path, "good")
    assert report.problems == () and report.notes == ()


def test_the_good_project_imported_too(tmp_path):
    """Its settings import without Django: what they read and compute comes from Python."""
    report = check(tmp_path, "good", import_locally=True)
    assert report.problems == () and report.notes == ()
    assert not list((tmp_path / "good").rglob("__pycache__"))  # nothing written into it


SCENARIOS = {
    "no_manage_py": [
        "no_manage_py/manage.py: not found at the project's root (or left out by "
        ".dockerignore): the release runs `python manage.py migrate`, `collectstatic` and "
        "`createsuperuser` in the image's working directory"],
    "no_settings_module": [
        "no_settings_module/manage.py: sets no DJANGO_SETTINGS_MODULE (os.environ.setdefault("
        "\"DJANGO_SETTINGS_MODULE\", \"<project>.settings\")), and the Dockerfile has no ENV "
        "for it: djscale sets none"],
    "wsgi_missing": [
        "wsgi_missing/shop/wsgi.py: defines no 'application', the WSGI callable "
        "wsgi_missing/Dockerfile names (application = get_wsgi_application())"],
    "env_unread": [
        f"env_unread/shop/settings.py: nothing in the project reads {name}, which djscale "
        f"sets ({value!r}): read it in the settings (os.environ[\"{name}\"], "
        f"os.environ.get(\"{name}\"))"
        for name, value in (("DATABASE_SSLMODE", "verify-full"),
                            ("DATABASE_SSLROOTCERT", "/etc/djscale/db-ca.pem"))],
    "no_health": [
        "no_health/shop/urls.py: nothing answers GET /healthz (no URL pattern or middleware of "
        "the project names it): the container healthcheck and djscale's rollout wait for it "
        "at http://127.0.0.1:8000/healthz (200 when the database answers, 503 when not, "
        "whatever the Host header); copy djsite/health.py from assets/app and put "
        "djsite.health.HealthCheckMiddleware first in MIDDLEWARE"],
    "bind_other_port": [
        "bind_other_port/Dockerfile: gunicorn binds 0.0.0.0:9000, but app.containerPort is "
        "8000: bind 0.0.0.0:8000, or set app.containerPort to the port it binds"],
    "bind_loopback": [
        "bind_loopback/gunicorn.conf.py: gunicorn binds 127.0.0.1:8000: inside the container "
        "only, where Docker's published port cannot reach it; bind 0.0.0.0:8000"],
    "expose_other_port": [
        "expose_other_port/Dockerfile: EXPOSE 5000 does not include app.containerPort (8000): "
        "the image says it listens elsewhere; EXPOSE 8000, or set app.containerPort to its "
        "port"],
    "no_cmd": [
        "no_cmd/Dockerfile: the final stage sets no CMD or ENTRYPOINT, so the base image's "
        "command would run instead of the app: end it with CMD [\"gunicorn\", \"--bind\", "
        "\"0.0.0.0:8000\", \"<project>.wsgi\"] (exec form)"],
    "no_migrations": [
        "no_migrations/orders/migrations: is missing, and no_migrations/orders/models.py "
        "defines models (Order): run `python manage.py makemigrations orders` and add the "
        "files (the release runs `migrate`, never `makemigrations`)"],
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_each_broken_project_gives_its_problem_naming_the_file(tmp_path, name):
    assert list(check(tmp_path, name).problems) == SCENARIOS[name]


def test_the_port_problem_names_the_config_key_it_is_checked_against(tmp_path):
    problems = check(tmp_path, "good", port=9000).problems
    assert problems == (
        "good/Dockerfile: EXPOSE 8000 does not include app.containerPort (9000): the image "
        "says it listens elsewhere; EXPOSE 9000, or set app.containerPort to its port",
        "good/Dockerfile: gunicorn binds 0.0.0.0:8000, but app.containerPort is 9000: bind "
        "0.0.0.0:9000, or set app.containerPort to the port it binds")


def test_names_built_at_run_time_are_found_by_importing_the_settings(tmp_path):
    static = check(tmp_path / "static", "env_dynamic").problems
    assert [p.split(" reads ")[1].split(",")[0] for p in static] == [
        "DATABASE_HOST", "DATABASE_PORT", "DATABASE_NAME", "DATABASE_USER",
        "DATABASE_PASSWORD"]
    assert check(tmp_path / "imported", "env_dynamic", import_locally=True).problems == ()


def test_settings_that_cannot_be_imported_here_are_read_from_their_source(tmp_path):
    root = project(tmp_path, "good")
    settings = root / "shop" / "settings.py"
    settings.write_text("import not_installed_here\n" + settings.read_text())
    report = check_project(root, container_port=8000, environment=ENV, shown="good")
    assert report.problems == ()
    assert report.notes == ("good/shop/settings.py: not importable here (ModuleNotFoundError: "
                            "No module named 'not_installed_here'); checked from its source "
                            "only",)


def test_a_secret_is_never_shown(tmp_path):
    root = project(tmp_path, "good")
    settings = root / "shop" / "settings.py"
    settings.write_text(settings.read_text().replace('os.environ["DJANGO_SECRET_KEY"]', '"x"'))
    problems = check_project(root, container_port=8000, environment=ENV, shown="good",
                             import_locally=False).problems
    assert problems == ("good/shop/settings.py: nothing in the project reads DJANGO_SECRET_KEY, "
                        "which djscale sets (a secret): read it in the settings (os.environ["
                        "\"DJANGO_SECRET_KEY\"], os.environ.get(\"DJANGO_SECRET_KEY\"))",)


def test_a_missing_project_directory(tmp_path):
    report = check_project(tmp_path / "nowhere", container_port=8000, environment=ENV,
                           shown="../site")
    assert report.problems == ("../site: no such directory (the Django project to deploy)",)


# --- the bundled project, under each stack's contract ---------------------------------------

@pytest.mark.parametrize("import_locally", [False, True], ids=["source", "imported"])
def test_the_bundled_app_keeps_the_contract(import_locally):
    report = check_stack_app(make_config(), import_locally=import_locally)
    assert report.problems == () and report.notes == ()


@pytest.mark.parametrize("stack", ["Pulumi.dev.yaml", "Pulumi.prod.yaml",
                                   "tests/fixtures/stack_minio.yaml"])
def test_the_bundled_app_keeps_each_stacks_contract(stack):
    raw, present = read_stack_file(ROOT / stack)
    cfg = parse_config(raw, assume_secrets(raw, present)[0], check_files=False)
    assert check_stack_app(cfg).problems == ()


def test_the_contract_is_the_env_file_the_app_servers_get():
    cfg = make_config()
    assert app_environment(cfg) == ENV
    served = replace(cfg, domain_aliases=("shop.example.net",), alias_mode="serve")
    assert app_environment(served)["DJANGO_ALLOWED_HOSTS"] == "shop.example.com,shop.example.net"


def test_another_container_port_is_checked_against_the_bundled_image():
    cfg = make_config()
    problems = check_stack_app(replace(cfg, app=replace(cfg.app, container_port=9000)),
                               import_locally=False).problems
    assert problems == (
        "assets/app/Dockerfile: EXPOSE 8000 does not include app.containerPort (9000): the "
        "image says it listens elsewhere; EXPOSE 9000, or set app.containerPort to its port",
        "assets/app/gunicorn.conf.py: gunicorn binds 0.0.0.0:8000, but app.containerPort is "
        "9000: bind 0.0.0.0:9000, or set app.containerPort to the port it binds")
