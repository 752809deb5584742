"""The app image, for real: built from assets/app/Dockerfile and run in the tests' engine.

No registry is reachable, so python:3.12-slim is stood in for by a debootstrapped Debian
bookworm with python3 and python3-venv (Python 3.11), passed as BASE_IMAGE. The container
runs on the engine's default bridge with its port published on loopback, as on an app
server; it reaches PostgreSQL and S3 on the bridge's gateway address, where this module
starts its own instances of both.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
import threading
import time
import urllib.request

import pytest

from tests.support.postgres import PostgresServer, free_port
from tests.support.rootfs import ensure_base_image
from tests.support.s3 import MotoS3Server

from .helpers import (APP_DIR, E, InFlightRequest, app_env, cookie_attributes, login_form,
                      request, wait_for_status)

pytestmark = pytest.mark.docker

# The same recipe as the test bed's app base (tests/testbed/images.py): one cached rootfs.
BASE_PACKAGES = ["python3", "python3-venv", "ca-certificates"]
BASE_CHANGES = ['CMD ["python3"]']
IMAGE = "djscale-test/app:image-test"
STOP_TIMEOUT = 30  # what djscale gives the app container; gunicorn's graceful_timeout is 20


@pytest.fixture(scope="module")
def engine(docker_engine):
    return docker_engine


@pytest.fixture(scope="module")
def bridge(engine) -> dict[str, str]:
    out = engine.docker("network", "inspect", "bridge", "--format",
                        "{{json .IPAM.Config}}").stdout
    config = json.loads(out)[0]
    return {"gateway": config["Gateway"], "subnet": config["Subnet"]}


@pytest.fixture(scope="module")
def image(engine) -> str:
    base = ensure_base_image(engine, "djscale-test/app-base", BASE_PACKAGES,
                             changes=BASE_CHANGES)
    engine.docker("build", "--build-arg", f"BASE_IMAGE={base}", "-t", IMAGE, str(APP_DIR),
                  timeout=1200)
    return IMAGE


@pytest.fixture(scope="module")
def db(bridge):
    server = PostgresServer(listen_addresses=("127.0.0.1", bridge["gateway"]),
                            client_networks=("127.0.0.1/32", bridge["subnet"]))
    try:
        server.start()
        server.database = server.create_database("django", "django")
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="module")
def bucket_server(bridge):
    server = MotoS3Server(host=bridge["gateway"])
    try:
        server.start()
        server.bucket = server.create_bucket("djscale-image-static")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def env_file(db, bucket_server, bridge):
    """The app's environment as djscale delivers it: an env file, mode 600."""
    env = app_env(db.database, bucket_server, **{E.DB_HOST: bridge["gateway"]})
    lines = [f"{name}={env[name]}" for name in E.ALL if name in env]
    fd, path = tempfile.mkstemp(prefix="djscale-app-", suffix=".env")
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    yield path
    os.unlink(path)


def _one_off(engine, image, env_file, *command: str) -> str:
    """A deploy step as djscale runs it: a throwaway container of the app image."""
    return engine.docker("run", "--rm", "--env-file", env_file, image, *command,
                         timeout=300).stdout


@pytest.fixture(scope="module")
def deploy_steps(engine, image, env_file) -> dict[str, str]:
    return {
        "migrate": _one_off(engine, image, env_file, "python", "manage.py", "migrate",
                            "--noinput"),
        "createsuperuser": _one_off(engine, image, env_file, "python", "manage.py",
                                    "createsuperuser", "--noinput"),
        "collectstatic": _one_off(engine, image, env_file, "python", "manage.py",
                                  "collectstatic", "--noinput"),
    }


@pytest.fixture(scope="module")
def container(engine, image, env_file, deploy_steps):
    name = f"djscale-app-test-{secrets.token_hex(4)}"
    port = free_port()
    engine.docker("run", "-d", "--name", name, "--env-file", env_file,
                  "-p", f"127.0.0.1:{port}:8000", "--stop-timeout", str(STOP_TIMEOUT), image)
    try:
        wait_for_status(port, "/healthz", 200, timeout=60)
        yield {"name": name, "port": port}
    finally:
        engine.docker("rm", "-f", name, check=False)


def _inspect(engine, name: str, fmt: str = "{{json .}}"):
    return json.loads(engine.docker("inspect", "--format", fmt, name).stdout)


def test_image_metadata(engine, image):
    config = _inspect(engine, image, "{{json .Config}}")
    names = {entry.split("=", 1)[0] for entry in config["Env"] or []}
    assert not names & {E.SECRET_KEY, E.DB_PASSWORD, E.S3_SECRET_ACCESS_KEY,
                        E.S3_ACCESS_KEY_ID, E.SUPERUSER_PASSWORD}
    assert config["User"] == "app"
    assert "8000/tcp" in config["ExposedPorts"]
    assert config["StopSignal"] == "SIGTERM"
    assert config["Cmd"][0] == "gunicorn"  # exec form: gunicorn is PID 1, gets SIGTERM
    assert not config.get("Entrypoint")
    assert "/healthz" in " ".join(config["Healthcheck"]["Test"])
    assert "PATH=/opt/venv/bin:" in " ".join(config["Env"])


def test_no_secret_in_image_layers(engine, image):
    history = engine.docker("history", "--no-trunc", "--format", "{{.CreatedBy}}",
                            image).stdout
    for name in (E.SECRET_KEY, E.DB_PASSWORD, E.S3_SECRET_ACCESS_KEY, E.SUPERUSER_PASSWORD):
        assert name not in history


def test_deploy_steps_in_one_off_containers(deploy_steps, bucket_server):
    assert "Applying mydb.0002_sample_questions... OK" in deploy_steps["migrate"]
    assert "Superuser created successfully" in deploy_steps["createsuperuser"]
    copied = int(re.search(r"(\d+) static files copied", deploy_steps["collectstatic"])[1])
    keys = [obj["Key"] for page in bucket_server.client().get_paginator(
        "list_objects_v2").paginate(Bucket=bucket_server.bucket, Prefix="static/")
        for obj in page.get("Contents", [])]
    assert len(keys) == copied > 100
    assert "static/admin/css/base.css" in keys and "static/mydb/style.css" in keys


def test_runs_as_non_root(engine, container):
    assert engine.docker("exec", container["name"], "id", "-u").stdout.strip() != "0"
    # exec-form CMD: gunicorn itself is PID 1, so `docker stop`'s SIGTERM reaches it
    cmdline = engine.docker("exec", container["name"], "cat", "/proc/1/cmdline").stdout
    assert "gunicorn" in cmdline.split("\0")[1]


def test_serves_the_site(container, bucket_server):
    port = container["port"]
    page = request(port, "GET", "/mydb/")
    assert page.status == 200 and "What is your favourite database?" in page.body
    css = f"{bucket_server.endpoint_url}/{bucket_server.bucket}/static/mydb/style.css"
    assert f'href="{css}"' in page.body
    with urllib.request.urlopen(css, timeout=10) as resp:  # public, from the S3 endpoint
        assert resp.status == 200
    assert request(port, "GET", "/admin/login/", headers={"X-Forwarded-Proto": "https"}
                   ).status == 200
    assert request(port, "GET", "/mydb/", host="evil.example").status == 400


def test_admin_login_through_the_proxy(container):
    port = container["port"]
    headers, body = login_form(port)
    resp = request(port, "POST", "/admin/login/?next=/admin/", body=body,
                   headers={**headers, "X-Forwarded-Proto": "https"})
    assert resp.status == 302 and resp.header("Location") == "/admin/"
    assert {"secure", "httponly"} <= cookie_attributes(resp.cookies["sessionid"])


def test_healthcheck_turns_healthy(engine, container):
    deadline = time.monotonic() + 90
    status = None
    while time.monotonic() < deadline:
        status = _inspect(engine, container["name"], "{{json .State.Health.Status}}")
        if status == "healthy":
            break
        time.sleep(1)
    assert status == "healthy", _inspect(engine, container["name"], "{{json .State.Health}}")


def test_healthz_follows_the_database(engine, container, db):
    port = container["port"]
    started_at = _inspect(engine, container["name"], "{{json .State.StartedAt}}")
    db.stop()
    try:
        wait_for_status(port, "/healthz", 503, timeout=20)
    finally:
        db.start()
    wait_for_status(port, "/healthz", 200, timeout=30)
    assert request(port, "GET", "/mydb/").status == 200
    assert _inspect(engine, container["name"], "{{json .State.StartedAt}}") == started_at
    assert _inspect(engine, container["name"], "{{json .RestartCount}}") == 0


def test_docker_stop_is_graceful(engine, container):
    """SIGTERM reaches gunicorn (PID 1), which finishes the request in flight and exits 0
    well before Docker's SIGKILL."""
    name, port = container["name"], container["port"]
    assert request(port, "GET", "/mydb/").status == 200
    in_flight = InFlightRequest(port)
    time.sleep(0.5)  # a worker has accepted it and is reading the headers
    started = time.monotonic()
    stopper = threading.Thread(target=engine.docker, daemon=True,
                               args=("stop", "-t", str(STOP_TIMEOUT), name),
                               kwargs={"timeout": STOP_TIMEOUT + 30})
    stopper.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        out = engine.docker("logs", name)
        if "Handling signal: term" in out.stdout + out.stderr:
            break
        time.sleep(0.2)
    time.sleep(0.5)
    assert in_flight.finish() == "HTTP/1.1 200 OK"
    stopper.join(STOP_TIMEOUT + 30)
    elapsed = time.monotonic() - started
    state = _inspect(engine, name, "{{json .State}}")
    out = engine.docker("logs", name)
    logs = out.stdout + out.stderr
    assert state["Status"] == "exited" and state["ExitCode"] == 0, state
    assert elapsed < STOP_TIMEOUT - 5, f"stop took {elapsed:.1f}s"
    assert "Handling signal: term" in logs and "Shutting down: Master" in logs
    assert '"GET /mydb/ HTTP/1.1" 200' in logs  # access log on stdout
