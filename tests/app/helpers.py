"""Helpers for the app tests: the app's environment, manage.py, gunicorn, raw HTTP.

Django runs only in subprocesses (manage.py, gunicorn, `python -c`): its settings read the
environment once at import, so each scenario gets a fresh process with its own environment.
"""
from __future__ import annotations

import http.client
import importlib.util
import json
import os
import signal
import subprocess
import sys
import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[2]
APP_DIR = REPO / "assets" / "app"
SITE_HOST = "app.example.test"
SUPERUSER = ("admin", "admin@example.test", "a-Long-test-passw0rd")


def load_envvars():
    """djsite/envvars.py by path (no Django import)."""
    spec = importlib.util.spec_from_file_location("djsite_envvars",
                                                  APP_DIR / "djsite" / "envvars.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


E = load_envvars()


def app_env(database, s3, **overrides: str | None) -> dict[str, str]:
    """The production environment of the app (DEBUG off) against real PostgreSQL and S3.

    `overrides` maps envvars names to values; None removes the variable.
    """
    env = {k: v for k, v in os.environ.items() if k not in E.ALL and not k.startswith("AWS_")}
    env.update({
        "DJANGO_SETTINGS_MODULE": "djsite.settings",
        "PYTHONDONTWRITEBYTECODE": "1",
        E.SECRET_KEY: "test-secret-key-" + "x" * 50,
        E.DEBUG: "false",
        E.ALLOWED_HOSTS: f"{SITE_HOST},127.0.0.1",
        E.CSRF_TRUSTED_ORIGINS: f"https://{SITE_HOST}",
        E.LOG_LEVEL: "INFO",
        E.DB_HOST: database.host,
        E.DB_PORT: str(database.port),
        E.DB_NAME: database.name,
        E.DB_USER: database.user,
        E.DB_PASSWORD: database.password,
        E.DB_CONN_MAX_AGE: "60",
        E.S3_BUCKET: s3.bucket,
        E.S3_ENDPOINT_URL: s3.endpoint_url,
        E.S3_REGION: s3.region,
        E.S3_ACCESS_KEY_ID: s3.access_key_id,
        E.S3_SECRET_ACCESS_KEY: s3.secret_access_key,
        E.S3_ADDRESSING_STYLE: "path",
        E.S3_DEFAULT_ACL: "public-read",
        E.GUNICORN_WORKERS: "2",
        E.SUPERUSER_USERNAME: SUPERUSER[0],
        E.SUPERUSER_EMAIL: SUPERUSER[1],
        E.SUPERUSER_PASSWORD: SUPERUSER[2],
    })
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def manage(env: dict[str, str], *args: str, check: bool = True,
           timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "manage.py", *args], cwd=APP_DIR, env=env,
                          text=True, capture_output=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"manage.py {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


SETTINGS_PROBE = """
import json, django
django.setup()
from django.conf import settings as s
from django.core.files.storage import storages
print(json.dumps({
    "DEBUG": s.DEBUG, "ALLOWED_HOSTS": s.ALLOWED_HOSTS,
    "CSRF_TRUSTED_ORIGINS": s.CSRF_TRUSTED_ORIGINS,
    "SESSION_COOKIE_SECURE": s.SESSION_COOKIE_SECURE, "CSRF_COOKIE_SECURE": s.CSRF_COOKIE_SECURE,
    "SECURE_HSTS_SECONDS": s.SECURE_HSTS_SECONDS, "SECURE_SSL_REDIRECT": s.SECURE_SSL_REDIRECT,
    "SECURE_PROXY_SSL_HEADER": list(s.SECURE_PROXY_SSL_HEADER),
    "USE_X_FORWARDED_HOST": s.USE_X_FORWARDED_HOST,
    "CONN_MAX_AGE": s.DATABASES["default"]["CONN_MAX_AGE"],
    "CONN_HEALTH_CHECKS": s.DATABASES["default"]["CONN_HEALTH_CHECKS"],
    "staticfiles": type(storages["staticfiles"]).__module__ + "." + type(storages["staticfiles"]).__name__,
    "static_acl": getattr(storages["staticfiles"], "default_acl", None),
    "static_url": storages["staticfiles"].url("mydb/style.css"),
    "media_acl": getattr(storages["default"], "default_acl", None),
}))
"""


def probe_settings(env: dict[str, str]) -> subprocess.CompletedProcess:
    """Boot Django with `env`; stdout holds the effective settings as JSON on success."""
    return subprocess.run([sys.executable, "-c", SETTINGS_PROBE], cwd=APP_DIR, env=env,
                          text=True, capture_output=True, timeout=60)


def settings_of(env: dict[str, str]) -> dict:
    proc = probe_settings(env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- HTTP --------------------------------------------------------------------------------------
@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: str
    cookies: dict[str, str] = field(default_factory=dict)  # name -> full Set-Cookie line

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


def request(port: int, method: str, path: str, *, host: str = SITE_HOST,
            headers: dict[str, str] | None = None, body: str | None = None,
            address: str = "127.0.0.1", timeout: float = 15) -> Response:
    conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        data = body.encode() if body is not None else None
        if data is not None:
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        resp = conn.getresponse()
        text = resp.read().decode("utf-8", "replace")
        cookies = {}
        for line in resp.msg.get_all("Set-Cookie") or []:
            cookies[line.split("=", 1)[0].strip()] = line
        return Response(resp.status, resp.msg, text, cookies)
    finally:
        conn.close()


def cookie_value(set_cookie_line: str) -> str:
    return set_cookie_line.split(";", 1)[0].split("=", 1)[1]


def cookie_attributes(set_cookie_line: str) -> set[str]:
    return {part.strip().split("=", 1)[0].lower() for part in set_cookie_line.split(";")[1:]}


def login_form(port: int, host: str = SITE_HOST) -> tuple[dict[str, str], str]:
    """Headers and body of the admin login POST a browser sends after GET /admin/login/."""
    page = request(port, "GET", "/admin/login/", host=host,
                   headers={"X-Forwarded-Proto": "https"})
    token = cookie_value(page.cookies["csrftoken"])
    form_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.body)[1]
    body = urlencode({"csrfmiddlewaretoken": form_token, "username": SUPERUSER[0],
                      "password": SUPERUSER[2], "next": "/admin/"})
    headers = {"Cookie": f"csrftoken={token}",
               "Content-Type": "application/x-www-form-urlencoded",
               "Origin": f"https://{host}",
               "Referer": f"https://{host}/admin/login/"}
    return headers, body


class InFlightRequest:
    """A GET whose last header line is held back: the server is mid-request until finish()."""

    def __init__(self, port: int, path: str = "/mydb/", host: str = SITE_HOST):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n".encode())

    def finish(self) -> str:
        """Send the rest; return the response's status line."""
        self.sock.sendall(b"Connection: close\r\n\r\n")
        data = b""
        while chunk := self.sock.recv(65536):
            data += chunk
        self.sock.close()
        return data.split(b"\r\n", 1)[0].decode()


def wait_for_status(port: int, path: str, status: int, timeout: float = 30, **kw) -> Response:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = request(port, "GET", path, **kw)
            if last.status == status:
                return last
        except OSError as exc:
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"GET {path} did not answer {status} within {timeout}s: {last!r}")


# -- gunicorn ----------------------------------------------------------------------------------
class Gunicorn:
    """gunicorn with the app's own gunicorn.conf.py, bound to a loopback port."""

    def __init__(self, env: dict[str, str], port: int, log: Path, args: tuple[str, ...] = ()):
        """`args`: more gunicorn arguments (another app: `--pythonpath DIR module:app`)."""
        self.env, self.port, self.log_path, self.args = env, port, log, args
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> None:
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py",
             "--bind", f"127.0.0.1:{self.port}", *self.args],
            cwd=APP_DIR, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"gunicorn exited ({self.proc.returncode}):\n{self.log()}")
            try:
                request(self.port, "GET", "/healthz", timeout=5)
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"gunicorn did not answer in {timeout}s:\n{self.log()}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def log_line(self, marker: str, timeout: float = 15) -> str:
        """The first log line containing `marker`, waited for (workers write it after the
        response, and a busy machine may take a while)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [line for line in self.log().splitlines() if marker in line]
            if lines or time.monotonic() > deadline:
                assert lines, f"no log line with {marker!r}:\n{self.log()}"
                return lines[0]
            time.sleep(0.1)

    def stop(self, timeout: float = 30) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        return self.proc.returncode
