"""Does the Django project keep djscale's contract? Checked on the operator's machine before
anything is built or created (`python -m components.check_app --stack <stack>`, and the
preflight of `pulumi preview` / `pulumi up`: components/preflight.py).

What is checked, in the files `docker build` sends (components/dockerignore.py):

* `manage.py` at the root (the release runs `python manage.py migrate` there) and the
  settings module it names (DJANGO_SETTINGS_MODULE: the Dockerfile's ENV, else manage.py's
  `os.environ.setdefault`);
* the container's command starts something (the final stage's CMD/ENTRYPOINT); when it is
  gunicorn, the WSGI app it is given (or gunicorn.conf.py's `wsgi_app`; without gunicorn the
  settings' WSGI_APPLICATION) is a module of the project that defines that callable;
* gunicorn binds `app.containerPort` on every interface of the container (its command line,
  GUNICORN_CMD_ARGS, gunicorn.conf.py's `bind`, $PORT, else gunicorn's default
  127.0.0.1:8000), and EXPOSE, when given, lists that port;
* every variable djscale writes into the app's env file is read by the project (its source:
  `os.environ[...]`, `os.getenv`, `env(...)`, `config(...)`, the project's own `env_*`
  helpers, names given as constants; and what the settings read when imported), except the
  few a library reads itself (READ_BY_LIBRARIES);
* something answers GET /healthz (a URL pattern or a middleware names the path): the
  container healthcheck and the rollout wait for it;
* each of the project's own apps in INSTALLED_APPS whose models module defines a concrete
  model has a migrations package with a migration (the release never runs makemigrations).

The settings module is also imported, in a child process with the app's environment
(placeholders for secrets), when this Python can (components/check_app/settings_import.py):
then INSTALLED_APPS and friends are what Python computes, and the variables it reads count.
Each problem is one line that names the file (or the config key) and what to fix.
"""
from __future__ import annotations

import functools
import posixpath
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

from components.config import StackConfig
from components.dockerignore import context_files, context_hash
from components.plans.app_server import app_server_plan
from components.plans.describe import CA_PLACEHOLDER, inspect_values
from components.plans.items import render_text
from components.render import appenv
from components.render.app_image import HEALTH_PATH

from . import pysource
from .dockerfile import (Container, final_container, find_gunicorn, parse_bind,
                         parse_dockerfile, parse_gunicorn_args, reachable_host)
from .pysource import UNKNOWN, Project
from .settings_import import Imported, import_settings

# Variables a library reads from the environment itself: the project need not.
READ_BY_LIBRARIES = {
    "AWS_ACCESS_KEY_ID": "boto3", "AWS_SECRET_ACCESS_KEY": "boto3",
    "WEB_CONCURRENCY": "gunicorn", "GUNICORN_CMD_ARGS": "gunicorn",
    "DJANGO_SETTINGS_MODULE": "Django",
}
# Not the project's own code: tests and migrations read nothing at run time.
_NOT_APP_CODE = ("/migrations/", "/tests/", "/test_")


@dataclass(frozen=True)
class Report:
    problems: tuple[str, ...]
    notes: tuple[str, ...]  # what could not be checked, and why


@dataclass
class _Check:
    project: Project
    shown: str  # how the project directory is named in messages
    problems: list[str]
    notes: list[str]

    def at(self, rel: str) -> str:
        return f"{self.shown}/{rel}"

    def problem(self, where: str, text: str) -> None:
        self.problems.append(f"{where}: {text}")


def check_project(source_dir: Path, *, container_port: int, environment: Mapping[str, str],
                  dockerfile: str = "Dockerfile", shown: Optional[str] = None,
                  health_path: str = HEALTH_PATH, import_locally: bool = True,
                  scratch_files: Mapping[str, str] = {}) -> Report:
    """The project at `source_dir` against the contract. `environment`: the variables djscale
    writes into the app's env file (name -> value, secrets as placeholders);
    `scratch_files`: variables whose value is a file on the server (the import gets one)."""
    shown = shown or str(source_dir)
    root = source_dir.resolve()
    if not root.is_dir():
        return Report((f"{shown}: no such directory (the Django project to deploy)",), ())
    try:
        files = tuple(context_files(root))
    except ValueError as error:  # a .dockerignore Docker would refuse
        return Report((f"{shown}/.dockerignore: {error}",), ())
    check = _Check(Project(root, files), shown, [], [])
    container = _container(check, dockerfile)
    settings_rel = _settings_module(check, container)
    imported = Imported()
    if import_locally and settings_rel:
        module = settings_rel.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        imported = import_settings(root, module, environment, scratch_files)
        if imported.error:
            check.notes.append(f"{check.at(settings_rel)}: not importable here ({imported.error});"
                               " checked from its source only")
    settings = _settings_values(check, settings_rel, imported)
    _check_server(check, container, dockerfile, settings, container_port)
    _check_environment(check, settings_rel, environment, imported)
    _check_health(check, settings_rel, settings, health_path, container_port)
    _check_migrations(check, settings_rel, settings)
    return Report(tuple(check.problems), tuple(check.notes))


# --------------------------------------------------------------------------- the stack's

def app_source(cfg: StackConfig) -> tuple[Path, str]:
    """(directory, as configured) of the project the stack deploys: `app.source` (relative
    to the djscale project, by default the bundled assets/app)."""
    return cfg.app.source_dir, cfg.app.source


def app_environment(cfg: StackConfig) -> dict[str, str]:
    """The app containers' env file as the plan renders it (secrets as placeholders)."""
    plan = app_server_plan(cfg, cfg.app_servers[0], runs_release=False)
    text = render_text(plan.item("env-file").content, inspect_values(cfg))
    return dict(line.split("=", 1) for line in appenv.parse_env_file(text))


def check_stack_app(cfg: StackConfig, *, import_locally: bool = True) -> Report:
    source, shown = app_source(cfg)
    environment = app_environment(cfg)
    dockerfile = cfg.app.dockerfile
    try:
        content = context_hash(source.resolve()) if source.is_dir() else ""
    except ValueError:
        content = ""
    return _cached_check(source, shown, content, int(cfg.app.container_port),
                         tuple(sorted(environment.items())), dockerfile, import_locally)


@functools.lru_cache(maxsize=8)
def _cached_check(source: Path, shown: str, content: str, container_port: int,
                  environment: tuple[tuple[str, str], ...], dockerfile: str,
                  import_locally: bool) -> Report:
    """One check per content of the project and contract (a program run may ask twice)."""
    del content  # part of the cache key only
    env = dict(environment)
    scratch = {name: CA_PLACEHOLDER for name, value in env.items()
               if value == appenv.DB_CA_PATH}
    return check_project(source, container_port=container_port, environment=env,
                         dockerfile=dockerfile, shown=shown, import_locally=import_locally,
                         scratch_files=scratch)


# --------------------------------------------------------------------------- the checks

def _container(check: _Check, dockerfile: str) -> Optional[Container]:
    path = check.project.root / dockerfile
    if not path.is_file():
        check.problem(check.at(dockerfile), "not found; djscale builds the image from it")
        return None
    container = final_container(parse_dockerfile(path.read_text(encoding="utf-8",
                                                                errors="replace")))
    if container is None:
        check.problem(check.at(dockerfile), "has no FROM: not a Dockerfile")
    elif container.argv is None:
        check.problem(check.at(dockerfile), "the final stage sets no CMD or ENTRYPOINT, so "
                      "the base image's command would run instead of the app: end it with "
                      "CMD [\"gunicorn\", \"--bind\", \"0.0.0.0:8000\", \"<project>.wsgi\"] "
                      "(exec form)")
    return container


def _settings_module(check: _Check, container: Optional[Container]) -> Optional[str]:
    """The settings module's file; problems when manage.py or it cannot be found."""
    project = check.project
    if "manage.py" not in project.files:
        check.problem(check.at("manage.py"), "not found at the project's root (or left out "
                      "by .dockerignore): the release runs `python manage.py migrate`, "
                      "`collectstatic` and `createsuperuser` in the image's working directory")
    elif project.module("manage.py").error:
        check.problem(check.at("manage.py"), f"is not valid Python: "
                      f"{project.module('manage.py').error}")
    module = (container.env.get("DJANGO_SETTINGS_MODULE") if container else None) or (
        pysource.setdefault_value(project, "manage.py", "DJANGO_SETTINGS_MODULE")
        if "manage.py" in project.files else None)
    if module is None:
        if "manage.py" in project.files:
            check.problem(check.at("manage.py"), "sets no DJANGO_SETTINGS_MODULE (os.environ."
                          "setdefault(\"DJANGO_SETTINGS_MODULE\", \"<project>.settings\")), "
                          "and the Dockerfile has no ENV for it: djscale sets none")
        return None
    rel = project.module_file(module)
    if rel is None:
        check.problem(check.at("manage.py"), f"DJANGO_SETTINGS_MODULE {module!r} is not a "
                      f"module of the project (no {module.replace('.', '/')}.py or "
                      f"{module.replace('.', '/')}/__init__.py in the image)")
    elif project.module(rel).error:
        check.problem(check.at(rel), f"is not valid Python: {project.module(rel).error}")
        return None
    return rel


def _settings_values(check: _Check, settings_rel: Optional[str],
                     imported: Imported) -> dict[str, Any]:
    values = pysource.module_values(check.project, settings_rel) if settings_rel else {}
    values = {name: value for name, value in values.items() if value is not UNKNOWN}
    return {**values, **imported.settings}  # Python's own values, where it computed them


def _read_script(check: _Check, container: Container):
    def read(path: str) -> Optional[str]:
        rel = posixpath.relpath(posixpath.join(container.workdir, path), container.workdir)
        if rel.startswith("..") and path.startswith("/"):
            rel = posixpath.basename(path)  # e.g. /app/start.sh copied from the root
        if rel in check.project.files:
            return (check.project.root / rel).read_text(encoding="utf-8", errors="replace")
        return None
    return read


def _gunicorn_config(check: _Check, container: Container, dockerfile: str,
                     config: Optional[str]) -> tuple[Optional[str], dict[str, Any]]:
    """(file, top-level values) of the config gunicorn reads: -c, else ./gunicorn.conf.py."""
    name = config or "gunicorn.conf.py"
    if name.startswith("python:"):
        return None, {}
    rel = posixpath.normpath(posixpath.relpath(posixpath.join(container.workdir, name),
                                               container.workdir))
    if rel.startswith(".."):
        rel = posixpath.basename(name)
    if rel not in check.project.files:
        if config:
            check.problem(check.at(dockerfile), f"gunicorn is given the config file "
                          f"{config!r}, which the project does not have ({rel})")
        return None, {}
    return rel, pysource.module_values(check.project, rel)


def _check_server(check: _Check, container: Optional[Container], dockerfile: str,
                  settings: Mapping[str, Any], port: int) -> None:
    """The WSGI app gunicorn serves, and that it listens on app.containerPort."""
    if container is not None and container.expose and port not in container.expose:
        check.problem(check.at(dockerfile), f"EXPOSE {' '.join(map(str, container.expose))} "
                      f"does not include app.containerPort ({port}): the image says it "
                      f"listens elsewhere; EXPOSE {port}, or set app.containerPort to its port")
    words = find_gunicorn(container.argv, _read_script(check, container), container.env) \
        if container is not None and container.argv else None
    if words is None:
        if container is not None and container.argv:
            check.notes.append(f"{check.at(dockerfile)}: the command "
                               f"({shlex.join(container.argv)}) does not start gunicorn "
                               "that this check can see: its WSGI app and port are unchecked")
        wsgi = settings.get("WSGI_APPLICATION")
        if isinstance(wsgi, str) and "." in wsgi:
            module, _, attr = wsgi.rpartition(".")
            _check_wsgi(check, module, attr, "WSGI_APPLICATION in the settings")
        return
    gunicorn = parse_gunicorn_args(words)
    conf_rel, conf = _gunicorn_config(check, container, dockerfile, gunicorn.config)
    app, named_in = gunicorn.app, check.at(dockerfile)
    if app is None and isinstance(conf.get("wsgi_app"), str):
        app, named_in = conf["wsgi_app"], check.at(conf_rel)
    if app is None:
        check.problem(check.at(dockerfile), "gunicorn is given no WSGI app: add it to the "
                      "command (e.g. \"mysite.wsgi:application\") or set wsgi_app in "
                      "gunicorn.conf.py")
    else:
        module, _, attr = app.partition(":")
        _check_wsgi(check, module, (attr or "application").split("(")[0], named_in)
    _check_bind(check, container, dockerfile, gunicorn.binds, conf_rel, conf, port)


def _check_wsgi(check: _Check, module: str, attr: str, named_in: str) -> None:
    rel = check.project.module_file(module)
    if rel is None:
        check.problem(named_in, f"the WSGI app is {module}:{attr}, but the project has no "
                      f"module {module} ({module.replace('.', '/')}.py)")
    elif not pysource.defines(check.project, rel, attr):
        check.problem(check.at(rel), f"defines no {attr!r}, the WSGI callable {named_in} "
                      "names (application = get_wsgi_application())")


def _check_bind(check: _Check, container: Container, dockerfile: str, binds: tuple[str, ...],
                conf_rel: Optional[str], conf: Mapping[str, Any], port: int) -> None:
    source = check.at(dockerfile)
    cmd_args = container.env.get("GUNICORN_CMD_ARGS")
    if not binds and cmd_args:
        binds = parse_gunicorn_args(shlex.split(cmd_args)).binds
        source = f"{check.at(dockerfile)} (GUNICORN_CMD_ARGS)"
    if not binds and conf_rel and "bind" in conf:
        value = conf["bind"]
        if isinstance(value, str):
            value = [value]
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            check.notes.append(f"{check.at(conf_rel)}: bind is computed, not a literal: "
                               f"not checked against app.containerPort ({port})")
            return
        binds, source = tuple(value), check.at(conf_rel)
    if not binds:
        # gunicorn's default: $PORT on every interface when set, else 127.0.0.1:8000
        default = f"0.0.0.0:{container.env['PORT']}" if container.env.get("PORT") \
            else "127.0.0.1:8000"
        binds, source = (default,), f"{check.at(dockerfile)} (gunicorn's default bind)"
    listening = [bind for bind in map(parse_bind, binds) if bind]
    if any(host_port[1] == port and reachable_host(host_port[0]) for host_port in listening):
        return
    shown = ", ".join(binds)
    if any(host_port[1] == port for host_port in listening):
        check.problem(source, f"gunicorn binds {shown}: inside the container only, where "
                      f"Docker's published port cannot reach it; bind 0.0.0.0:{port}")
    else:
        check.problem(source, f"gunicorn binds {shown}, but app.containerPort is {port}: "
                      f"bind 0.0.0.0:{port}, or set app.containerPort to the port it binds")


def _is_app_code(rel: str) -> bool:
    return rel.endswith(".py") and not any(part in f"/{rel}" for part in _NOT_APP_CODE)


def _check_environment(check: _Check, settings_rel: Optional[str],
                       environment: Mapping[str, str], imported: Imported) -> None:
    project = check.project
    constants = pysource.string_constants(project)
    read: set[str] = set(imported.read)
    for rel in filter(_is_app_code, project.files):
        read |= pysource.environment_reads(project, rel, constants)
    where = check.at(settings_rel or "manage.py")
    for name, value in environment.items():
        if name in read or name in READ_BY_LIBRARIES:
            continue
        shown = ("a secret" if value.startswith("<secret:") else
                 "known at deploy time" if value.startswith("<output:") else repr(value))
        check.problem(where, f"nothing in the project reads {name}, which djscale sets "
                      f"({shown}): read it in the settings (os.environ[\"{name}\"], "
                      f"os.environ.get(\"{name}\"))")


def _check_health(check: _Check, settings_rel: Optional[str], settings: Mapping[str, Any],
                  health_path: str, port: int) -> None:
    target = health_path.strip("/")

    def names_the_path(text: str) -> bool:
        return text.strip("^$").strip("/?") == target

    if any(pysource.string_literals(check.project, rel, names_the_path)
           for rel in filter(_is_app_code, check.project.files)):
        return
    urlconf = settings.get("ROOT_URLCONF")
    rel = check.project.module_file(urlconf) if isinstance(urlconf, str) else None
    check.problem(check.at(rel or settings_rel or "manage.py"),
                  f"nothing answers GET {health_path} (no URL pattern or middleware of the "
                  f"project names it): the container healthcheck and djscale's rollout wait "
                  f"for it at http://127.0.0.1:{port}{health_path} (200 when the database "
                  f"answers, 503 when not, whatever the Host header); copy djsite/health.py "
                  f"from assets/app and put djsite.health.HealthCheckMiddleware first in "
                  f"MIDDLEWARE")


def _check_migrations(check: _Check, settings_rel: Optional[str],
                      settings: Mapping[str, Any]) -> None:
    apps = settings.get("INSTALLED_APPS")
    if settings_rel is None:
        return
    if not (isinstance(apps, list) and all(isinstance(app, str) for app in apps)):
        check.notes.append(f"{check.at(settings_rel)}: INSTALLED_APPS is computed, not a "
                           "literal: migrations are not checked")
        return
    files = check.project.files
    for app in apps:
        parts = app.split(".")
        package = next((prefix for prefix in ("/".join(parts[:k])
                                              for k in range(len(parts), 0, -1))
                        if any(rel.startswith(f"{prefix}/") for rel in files)), None)
        if package is None:
            continue  # not the project's own (django.contrib.*, installed packages)
        model_files = [rel for rel in files if rel == f"{package}/models.py"
                       or (rel.startswith(f"{package}/models/") and rel.endswith(".py"))]
        models = [name for rel in model_files
                  for name in pysource.concrete_models(check.project, rel)]
        if not models:
            continue
        migrations = f"{package}/migrations"
        found = [rel for rel in files if posixpath.dirname(rel) == migrations
                 and rel.endswith(".py") and not rel.endswith("/__init__.py")]
        what = ("has no migration" if f"{migrations}/__init__.py" in files and not found
                else "is missing" if not found else "has no __init__.py (Django skips it)")
        if not found or f"{migrations}/__init__.py" not in files:
            label = package.rsplit("/", 1)[-1]
            check.problem(check.at(migrations), f"{what}, and {check.at(model_files[0])} "
                          f"defines models ({', '.join(models[:3])}): run `python manage.py "
                          f"makemigrations {label}` and add the files (the release runs "
                          "`migrate`, never `makemigrations`)")
