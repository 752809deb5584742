"""gunicorn serving the app over a real socket, as nginx would reach it."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.support.postgres import free_port

from .helpers import (APP_DIR, E, SITE_HOST, Gunicorn, InFlightRequest, cookie_attributes,
                      cookie_value, login_form, request, wait_for_status)

HTTPS = {"X-Forwarded-Proto": "https"}


def test_list_page_shows_the_sample_rows(gunicorn, s3):
    resp = request(gunicorn.port, "GET", "/mydb/")
    assert resp.status == 200
    titles = re.findall(r'<a href="/mydb/\d+/">([^<]+)</a>', resp.body)
    assert titles == ["Where do your static files live?",  # newest first
                      "How many app servers do you run?",
                      "What is your favourite database?"]
    # the stylesheet comes from the bucket, not from the app server
    assert f'href="{s3.endpoint_url}/{s3.bucket}/static/mydb/style.css"' in resp.body


def test_detail_page(gunicorn):
    listing = request(gunicorn.port, "GET", "/mydb/").body
    pk = re.search(r'<a href="/mydb/(\d+)/">What is your favourite database\?', listing)[1]
    resp = request(gunicorn.port, "GET", f"/mydb/{pk}/")
    assert resp.status == 200
    assert "<td>PostgreSQL</td><td>2</td>" in resp.body
    assert "3 votes" in resp.body
    assert request(gunicorn.port, "GET", "/mydb/999999/").status == 404


def test_root_redirects_to_the_app(gunicorn):
    resp = request(gunicorn.port, "GET", "/")
    assert resp.status == 302 and resp.header("Location") == "/mydb/"


def test_admin_login_page(gunicorn):
    resp = request(gunicorn.port, "GET", "/admin/login/", headers=HTTPS)
    assert resp.status == 200
    assert "Log in | Django site admin" in resp.body
    assert "secure" in cookie_attributes(resp.cookies["csrftoken"])


def test_other_hosts_are_rejected(gunicorn):
    assert request(gunicorn.port, "GET", "/mydb/", host="evil.example").status == 400
    assert request(gunicorn.port, "GET", "/admin/login/", host="evil.example").status == 400


def test_healthz_is_cheap_and_answers_any_host(gunicorn):
    for host in (SITE_HOST, "10.1.2.3:8000", "evil.example"):
        resp = request(gunicorn.port, "GET", "/healthz", host=host)
        assert resp.status == 200 and resp.body == "ok\n"
        assert resp.cookies == {}  # no session, no CSRF cookie
        assert resp.header("Cache-Control") == "no-store"
    assert request(gunicorn.port, "HEAD", "/healthz").status == 200


def test_hsts_only_over_https(gunicorn):
    https = request(gunicorn.port, "GET", "/mydb/", headers=HTTPS)
    assert https.header("Strict-Transport-Security") == "max-age=31536000"
    assert request(gunicorn.port, "GET", "/mydb/").header("Strict-Transport-Security") is None


def test_admin_login_through_the_proxy(gunicorn):
    """A browser's login POST as nginx forwards it: https per X-Forwarded-Proto, real Host."""
    headers, body = login_form(gunicorn.port)
    resp = request(gunicorn.port, "POST", "/admin/login/?next=/admin/",
                   headers={**headers, **HTTPS}, body=body)
    assert resp.status == 302, resp.body[:2000]
    assert resp.header("Location") == "/admin/"
    session = resp.cookies["sessionid"]
    assert {"secure", "httponly"} <= cookie_attributes(session)
    assert "secure" in cookie_attributes(resp.cookies["csrftoken"])  # rotated at login

    admin = request(gunicorn.port, "GET", "/admin/",
                    headers={**HTTPS, "Cookie": f"sessionid={cookie_value(session)}"})
    assert admin.status == 200 and "Site administration" in admin.body
    assert "Questions" in admin.body  # mydb is registered


@pytest.mark.parametrize("forwarded_proto,status", [("https", 302), (None, 403)])
def test_login_csrf_origin_check_uses_the_proxy_header(gunicorn, forwarded_proto, status):
    """For a host not in CSRF_TRUSTED_ORIGINS the https Origin must match the request's own
    scheme: only X-Forwarded-Proto tells Django the request came in over https."""
    host = "127.0.0.1"  # in ALLOWED_HOSTS, not in CSRF_TRUSTED_ORIGINS
    headers, body = login_form(gunicorn.port, host=host)
    if forwarded_proto:
        headers["X-Forwarded-Proto"] = forwarded_proto
    resp = request(gunicorn.port, "POST", "/admin/login/?next=/admin/", host=host,
                   headers=headers, body=body)
    assert resp.status == status
    assert ("sessionid" in resp.cookies) == (status == 302)


def test_access_log_goes_to_stdout(gunicorn):
    request(gunicorn.port, "GET", "/mydb/?from=access-log-test")
    time.sleep(0.2)
    assert '"GET /mydb/?from=access-log-test HTTP/1.1" 200' in gunicorn.log()


def test_access_log_names_the_client_a_trusted_proxy_forwarded(gunicorn):
    """The app env's default trusts 127.0.0.1 (the test's peer): the line starts with the
    address in X-Forwarded-For (what nginx saw) and ends with the peer."""
    request(gunicorn.port, "GET", "/mydb/?from=forwarded-client",
            headers={"X-Forwarded-For": "198.51.100.7"})
    request(gunicorn.port, "GET", "/mydb/?from=direct-client")
    forwarded = gunicorn.log_line("from=forwarded-client")
    direct = gunicorn.log_line("from=direct-client")
    assert forwarded.startswith("198.51.100.7 - - [") and forwarded.endswith(" peer=127.0.0.1")
    assert direct.startswith("127.0.0.1 - - [") and direct.endswith(" peer=127.0.0.1")


ECHO_APP = """
def app(environ, start_response):
    body = f"{environ['wsgi.url_scheme']} {environ['REMOTE_ADDR']}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
"""


@pytest.mark.parametrize("allowed,trusted", [("127.0.0.1", True), ("10.0.0.30", False),
                                             ("10.0.0.30,127.0.0.0/8", True)])
def test_forwarded_headers_count_only_from_the_proxy_address(prod_env, tmp_path, allowed,
                                                             trusted):
    """The app's own gunicorn.conf.py, serving a WSGI echo on a real socket: X-Forwarded-Proto
    makes the scheme https and X-Forwarded-For names the client in the access log only when
    the peer is in GUNICORN_FORWARDED_ALLOW_IPS (djscale writes the proxy's address)."""
    (tmp_path / "echo.py").write_text(ECHO_APP)
    env = {**prod_env, E.GUNICORN_FORWARDED_ALLOW_IPS: allowed}
    server = Gunicorn(env, free_port(), tmp_path / "log",
                      args=("--pythonpath", str(tmp_path), "echo:app"))
    server.start()
    try:
        spoof = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https",
                 "X-Forwarded-Ssl": "off", "X-Forwarded-Protocol": "http"}
        answer = request(server.port, "GET", "/?from=echo", headers=spoof)
        assert answer.status == 200  # the other scheme headers are not gunicorn's (no 400)
        assert answer.body == ("https 127.0.0.1" if trusted else "http 127.0.0.1")
        line = server.log_line("from=echo")
        assert line.startswith("203.0.113.9 " if trusted else "127.0.0.1 "), line
        assert line.endswith(" peer=127.0.0.1")
    finally:
        server.stop()


def test_healthz_follows_the_database(gunicorn, postgres):
    """503 while PostgreSQL is down, 200 again after it is back, gunicorn never restarted."""
    wait_for_status(gunicorn.port, "/healthz", 200)
    assert request(gunicorn.port, "GET", "/mydb/").status == 200  # workers hold connections
    master = gunicorn.pid
    postgres.stop()
    try:
        down = wait_for_status(gunicorn.port, "/healthz", 503, timeout=20)
        assert down.body == "database unavailable\n"
        for _ in range(4):  # every worker answers 503, none hangs
            started = time.monotonic()
            assert request(gunicorn.port, "GET", "/healthz").status == 503
            assert time.monotonic() - started < 5
    finally:
        postgres.start()
    wait_for_status(gunicorn.port, "/healthz", 200, timeout=30)
    for _ in range(4):  # every worker reconnected
        assert request(gunicorn.port, "GET", "/healthz").status == 200
    assert request(gunicorn.port, "GET", "/mydb/").status == 200
    assert gunicorn.alive() and gunicorn.pid == master


# -- gunicorn.conf.py ----------------------------------------------------------------------------
def _print_config(env):
    out = subprocess.run([sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py",
                          "--print-config"], cwd=APP_DIR, env=env, text=True,
                         capture_output=True, check=True).stdout
    return dict(re.findall(r"^(\w+)\s+= (.*)$", out, re.M))


def test_workers_from_environment(prod_env):
    assert _print_config({**prod_env, E.GUNICORN_WORKERS: "7"})["workers"] == "7"
    env = {k: v for k, v in prod_env.items() if k != E.GUNICORN_WORKERS}
    assert _print_config(env)["workers"] == str(2 * len(os.sched_getaffinity(0)) + 1)


def test_gunicorn_configuration(prod_env):
    config = _print_config(prod_env)
    assert config["bind"] == "['0.0.0.0:8000']"
    assert config["accesslog"] == "-"
    assert config["wsgi_app"] == "djsite.wsgi:application"
    assert int(config["graceful_timeout"]) < 30  # below djscale's container stop timeout
    assert config["forwarded_allow_ips"] == "['127.0.0.1', '::1']"  # unset: this host only
    assert config["secure_scheme_headers"] == "{'X-FORWARDED-PROTO': 'https'}"
    assert config["forwarder_headers"] == "[]"
    assert config["access_log_format"].startswith("%(client)s ")


def test_trusted_proxies_from_environment(prod_env):
    env = {**prod_env, E.GUNICORN_FORWARDED_ALLOW_IPS: "10.0.0.30"}
    assert _print_config(env)["forwarded_allow_ips"] == "['10.0.0.30']"
    for bad in ("*", "10.0.0.300", "proxy.internal"):
        proc = subprocess.run([sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py",
                               "--check-config"], cwd=APP_DIR, text=True, capture_output=True,
                              env={**prod_env, E.GUNICORN_FORWARDED_ALLOW_IPS: bad})
        assert proc.returncode != 0
        assert f"{E.GUNICORN_FORWARDED_ALLOW_IPS}={bad!r}" in proc.stdout + proc.stderr


def test_bad_worker_count_is_refused(prod_env):
    proc = subprocess.run([sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py",
                           "--check-config"], cwd=APP_DIR, text=True, capture_output=True,
                          env={**prod_env, E.GUNICORN_WORKERS: "many"})
    assert proc.returncode != 0 and E.GUNICORN_WORKERS in proc.stdout + proc.stderr


def test_gunicorn_does_not_boot_without_secret_key(prod_env, tmp_path):
    env = {k: v for k, v in prod_env.items() if k != E.SECRET_KEY}
    server = Gunicorn(env, free_port(), tmp_path / "log")
    with pytest.raises(AssertionError, match="gunicorn exited"):
        server.start(timeout=30)
    assert server.proc.returncode != 0
    assert E.SECRET_KEY in server.log()
    server.stop()


def test_sigterm_stops_gunicorn_gracefully(prod_env, migrated, tmp_path):
    """SIGTERM: no new connections, the request in flight is finished, then exit 0."""
    server = Gunicorn(prod_env, free_port(), tmp_path / "log")
    server.start()
    in_flight = InFlightRequest(server.port)
    time.sleep(0.5)  # a worker has accepted it and is reading the headers
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    while "Handling signal: term" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    assert in_flight.finish() == "HTTP/1.1 200 OK"
    assert server.stop(timeout=30) == 0
    assert time.monotonic() - started < 20
    log = server.log()
    assert "Handling signal: term" in log and "Shutting down: Master" in log
