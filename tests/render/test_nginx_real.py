"""nginx.conf served by the real nginx: `nginx -t` of this machine's nginx 1.22 (Debian 12)
on every variant, and the site served through the rendered config inside a private network
namespace (proxying, forwarded headers, TLS handshakes, per-client limits, retries), and a
running nginx reloaded by the activation script. The config is rendered in its form for
nginx before 1.25.1 (`legacy_nginx=True`); tests/render/test_nginx.py holds the exact text
of the production form."""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from components.config import FirewallConfig, MaintenanceConfig, NginxConfig
from components.render.maintenance import render_maintenance_page
from components.render.nginx import render_activate_nginx_conf_script, render_nginx_conf
from tests.render.conftest import make_config
from tests.render.test_nginx import ALIASES, APPS, DOMAIN


@pytest.fixture
def nginx_dir():
    """A scratch directory nginx's unprivileged workers can traverse (tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="djscale-nginx-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _sandbox(tmp_path: Path, tls: bool, cfg=None, apps=APPS, key: str = "rsa:2048") -> Path:
    """A rendered nginx.conf (the form for this machine's nginx 1.22) with every path in
    tmp_path and a self-signed certificate for `key` (`rsa:2048`, or `ec` for a P-256 key
    like the ones certbot makes by default)."""
    letsencrypt = tmp_path / "letsencrypt"
    live = letsencrypt / "live" / DOMAIN
    live.mkdir(parents=True)
    key_options = ["-newkey", key] + (["-pkeyopt", "ec_paramgen_curve:prime256v1"]
                                      if key == "ec" else [])
    subprocess.run(["openssl", "req", "-x509", *key_options, "-nodes", "-days", "2",
                    "-subj", f"/CN={DOMAIN}", "-addext", f"subjectAltName=DNS:{DOMAIN}",
                    "-keyout", str(live / "privkey.pem"), "-out", str(live / "fullchain.pem")],
                   check=True, capture_output=True)
    webroot = tmp_path / "webroot"
    (webroot / ".well-known" / "acme-challenge").mkdir(parents=True)
    (webroot / ".well-known" / "acme-challenge" / "token123").write_text("token123.key\n")
    cfg = cfg or make_config()
    page = tmp_path / "maintenance.html"
    page.write_text(render_maintenance_page(cfg))
    conf = tmp_path / "nginx.conf"
    conf.write_text(render_nginx_conf(
        cfg, apps, tls=tls, letsencrypt_dir=str(letsencrypt),
        webroot=str(webroot), pid_path=str(tmp_path / "nginx.pid"),
        error_log=str(tmp_path / "error.log"), access_log=str(tmp_path / "access.log"),
        maintenance_flag=str(tmp_path / "maintenance.on"), maintenance_page=str(page),
        legacy_nginx=True))
    return conf


@pytest.mark.parametrize("tls", [False, True], ids=["http-only", "tls"])
def test_debian_nginx_accepts_the_config(nginx_dir, tls):
    tmp_path = nginx_dir
    conf = _sandbox(tmp_path, tls)
    # A private network namespace: `nginx -t` binds 80/443 without touching the machine's.
    result = subprocess.run(["unshare", "--net", "nginx", "-t", "-c", str(conf),
                             "-p", str(tmp_path), "-e", str(tmp_path / "error.log")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


@pytest.mark.parametrize("mode", ["redirect", "serve"])
@pytest.mark.parametrize("tls", [False, True], ids=["http-only", "tls"])
def test_debian_nginx_accepts_the_config_with_domain_aliases(nginx_dir, tls, mode):
    conf = _sandbox(nginx_dir, tls, make_config(domain_aliases=ALIASES, alias_mode=mode))
    result = subprocess.run(["unshare", "--net", "nginx", "-t", "-c", str(conf),
                             "-p", str(nginx_dir), "-e", str(nginx_dir / "error.log")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("buffering", [True, False])
def test_debian_nginx_accepts_either_buffering(nginx_dir, buffering):
    conf = _sandbox(nginx_dir, True, make_config(nginx=NginxConfig(proxy_buffering=buffering)))
    result = subprocess.run(["unshare", "--net", "nginx", "-t", "-c", str(conf),
                             "-p", str(nginx_dir), "-e", str(nginx_dir / "error.log")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


BACKEND = textwrap.dedent("""
    import json, sys, time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    class Echo(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.startswith("/slow"):  # /slow?s=2: an app server too busy to answer
                with open(sys.argv[2], "a") as hits:
                    hits.write(self.path + "\\n")
                time.sleep(float(self.path.partition("s=")[2] or 2))
            self.answer()
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with open(sys.argv[2], "a") as hits:
                hits.write(f"POST {self.path}\\n")
            self.answer()
        def answer(self):
            body = json.dumps({"server": sys.argv[1], "version": self.request_version,
                               "headers": dict(self.headers)}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Strict-Transport-Security", "max-age=60")  # as Django sends it
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    ThreadingHTTPServer((sys.argv[1], 8000), Echo).serve_forever()
""")
HTTPS = ["-k", "--resolve", f"{DOMAIN}:443:127.0.0.1"]


@pytest.fixture
def netns():
    name = f"djscale-render-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    processes: list[subprocess.Popen] = []

    def run(*cmd, **kw):
        return subprocess.run(["ip", "netns", "exec", name, *cmd], capture_output=True,
                              text=True, **kw)

    def start(*cmd):
        proc = subprocess.Popen(["ip", "netns", "exec", name, *cmd])
        processes.append(proc)
        return proc

    try:
        run("ip", "link", "set", "lo", "up", check=True)
        for address in APPS:
            run("ip", "addr", "add", f"{address}/32", "dev", "lo", check=True)
        yield run, start
    finally:
        for proc in processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", name], check=True)


def _wait_for(run, *curl_args, attempts=50):
    for _ in range(attempts):
        if run("curl", "-s", "-o", "/dev/null", *curl_args).returncode == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing answered {curl_args}")


@pytest.fixture
def site(nginx_dir, netns):
    """serve(cfg): the real nginx serving the rendered TLS config in the test's namespace,
    with an echo backend on each app address; returns {address: backend process}. Backends
    log their /slow and POST requests to <nginx_dir>/hits-<address>."""
    run, start = netns

    def serve(cfg=None) -> dict[str, subprocess.Popen]:
        conf = _sandbox(nginx_dir, tls=True, cfg=cfg)
        backend = nginx_dir / "backend.py"
        backend.write_text(BACKEND)
        backends = {a: start(sys.executable, str(backend), a, str(nginx_dir / f"hits-{a}"))
                    for a in APPS}
        for address in APPS:
            _wait_for(run, f"http://{address}:8000/")
        start("nginx", "-c", str(conf), "-p", str(nginx_dir), "-e",
              str(nginx_dir / "error.log"), "-g", "daemon off;")
        _wait_for(run, *HTTPS, f"https://{DOMAIN}/.well-known/acme-challenge/token123")
        return backends

    def hits() -> list[str]:
        return [line for a in APPS if (nginx_dir / f"hits-{a}").exists()
                for line in (nginx_dir / f"hits-{a}").read_text().splitlines()]

    return serve, run, hits


def test_nginx_serves_the_site_through_the_rendered_config(nginx_dir, site):
    tmp_path = nginx_dir
    serve, run, _ = site
    backends = serve()
    https = HTTPS
    plain = ["--resolve", f"{DOMAIN}:80:127.0.0.1"]

    # Unknown names: no HTTP answer at all (444), TLS refused in the handshake.
    unknown = run("curl", "-s", "-H", "Host: other.example.org", "http://127.0.0.1/")
    assert unknown.returncode == 52  # empty reply from server
    unknown_tls = run("curl", "-sk", "--resolve", "other.example.org:443:127.0.0.1",
                      "https://other.example.org/")
    assert unknown_tls.returncode == 35  # TLS handshake failure

    # Port 80: challenges from the webroot, everything else 301 to https.
    challenge = run("curl", "-s", *plain, f"http://{DOMAIN}/.well-known/acme-challenge/token123")
    assert challenge.stdout == "token123.key\n"
    redirect = run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                   *plain, f"http://{DOMAIN}/mydb/?page=2")
    assert redirect.stdout == f"301 https://{DOMAIN}/mydb/?page=2"

    # 443: proxied with the forwarded headers over HTTP/1.0, both servers used, and one HSTS
    # header: nginx's (the app's own, sent by every backend here, is dropped).
    seen = set()
    for _ in range(4):
        response = run("curl", "-s", "-D", str(tmp_path / "headers"), *https,
                       f"https://{DOMAIN}/mydb/")
        answer = json.loads(response.stdout)
        seen.add(answer["server"])
        assert answer["version"] == "HTTP/1.0"
        assert answer["headers"]["Host"] == DOMAIN
        assert answer["headers"]["X-Forwarded-Proto"] == "https"
        assert answer["headers"]["X-Forwarded-For"] == "127.0.0.1"
        assert answer["headers"]["X-Real-IP"] == "127.0.0.1"
        headers = (tmp_path / "headers").read_text().lower().splitlines()
        hsts = [h for h in headers if h.startswith("strict-transport-security:")]
        assert hsts == ["strict-transport-security: max-age=63072000"]
    assert seen == set(APPS)

    # A client's own forwarding headers never reach the app: nginx's replace them or none
    # are sent (also over HTTP/2 and with underscores in place of dashes).
    spoofed = ["X-Forwarded-For: 203.0.113.9", "X-Real-IP: 203.0.113.9",
               "X-Forwarded-Proto: http", "Forwarded: for=203.0.113.9;proto=http",
               "X-Forwarded-Host: evil.example", "X-Forwarded-Port: 8443",
               "X-Forwarded-Prefix: /evil", "X-Forwarded-Protocol: http",
               "X-Forwarded-Scheme: http", "X-Forwarded-Ssl: off",
               "X_Forwarded_For: 203.0.113.9", "X_Forwarded_Proto: http"]
    for version in ("--http1.1", "--http2"):
        response = run("curl", "-s", version, *https,
                       *(word for header in spoofed for word in ("-H", header)),
                       f"https://{DOMAIN}/mydb/")
        headers = {name.lower(): value
                   for name, value in json.loads(response.stdout)["headers"].items()}
        assert {name: value for name, value in headers.items() if "forward" in name
                or name in ("x-real-ip",)} == {
            "x-forwarded-for": "127.0.0.1", "x-real-ip": "127.0.0.1",
            "x-forwarded-proto": "https"}, version

    # TLS below 1.2 is refused by the server (the client is allowed to offer it: SECLEVEL=0),
    # while the same client gets through with TLS 1.2.
    def handshake(version: str) -> subprocess.CompletedProcess:
        return run("openssl", "s_client", "-connect", "127.0.0.1:443", "-servername", DOMAIN,
                   version, "-cipher", "DEFAULT@SECLEVEL=0", input="")

    assert handshake("-tls1_2").returncode == 0
    for version in ("-tls1", "-tls1_1"):
        refused = handshake(version)
        assert refused.returncode != 0
        assert "alert protocol version" in refused.stdout + refused.stderr

    # One app server gone: every request still answered, by the other one.
    backends["10.0.0.21"].send_signal(signal.SIGTERM)
    backends["10.0.0.21"].wait(timeout=10)
    for _ in range(10):
        response = run("curl", "-s", "-w", "\n%{http_code}", *https, f"https://{DOMAIN}/")
        body, code = response.stdout.rsplit("\n", 1)
        assert code == "200"
        assert json.loads(body)["server"] == "10.0.0.22"


def _status(run, url: str, *curl_args: str) -> str:
    """`<code> <redirect target>` of one request to 127.0.0.1, the URL's host as the name."""
    host = url.split("/")[2]
    port = "443" if url.startswith("https:") else "80"
    return run("curl", "-sk", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
               "--resolve", f"{host}:{port}:127.0.0.1", *curl_args, url).stdout


def test_aliases_that_redirect_answer_challenges_then_go_to_https_then_to_the_domain(site):
    serve, run, _ = site
    serve(make_config(domain_aliases=ALIASES))
    for alias in ALIASES:
        challenge = run("curl", "-s", "--resolve", f"{alias}:80:127.0.0.1",
                        f"http://{alias}/.well-known/acme-challenge/token123")
        assert challenge.stdout == "token123.key\n"  # HTTP-01 for every name
        assert _status(run, f"http://{alias}/mydb/?page=2") == \
            f"301 https://{alias}/mydb/?page=2"
        assert _status(run, f"https://{alias}/mydb/?page=2") == \
            f"301 https://{DOMAIN}/mydb/?page=2"
        headers = run("curl", "-sk", "-D", "-", "-o", "/dev/null",
                      "--resolve", f"{alias}:443:127.0.0.1", f"https://{alias}/").stdout
        assert "strict-transport-security: max-age=63072000" in headers.lower()
    answer = json.loads(run("curl", "-s", *HTTPS, f"https://{DOMAIN}/mydb/").stdout)
    assert answer["headers"]["Host"] == DOMAIN  # the domain itself is still proxied


def test_aliases_that_are_served_reach_the_app_under_their_own_name(site):
    serve, run, _ = site
    serve(make_config(domain_aliases=ALIASES, alias_mode="serve"))
    for alias in ALIASES:
        assert _status(run, f"http://{alias}/mydb/") == f"301 https://{alias}/mydb/"
        answer = json.loads(run("curl", "-sk", "--resolve", f"{alias}:443:127.0.0.1",
                                f"https://{alias}/mydb/").stdout)
        assert answer["headers"]["Host"] == alias
    # a name that is not listed is still dropped
    assert run("curl", "-s", "-H", "Host: other.example.net", "http://127.0.0.1/").returncode \
        == 52


@pytest.mark.parametrize("key,auth", [("rsa:2048", "RSA"), ("ec", "ECDSA")])
def test_real_nginx_negotiates_only_the_intermediate_suites(nginx_dir, netns, key, auth):
    """With TLS 1.2 a client gets a forward-secret AEAD suite or no connection: CBC and
    plain-RSA key exchange are refused, as is a curve outside the profile's. Both
    certificate types (certbot makes ECDSA keys by default, RSA on request)."""
    run, start = netns
    conf = _sandbox(nginx_dir, tls=True, key=key)
    start("nginx", "-c", str(conf), "-p", str(nginx_dir), "-e", str(nginx_dir / "error.log"),
          "-g", "daemon off;")
    _wait_for(run, "-k", f"https://{DOMAIN}/.well-known/", "--resolve",
              f"{DOMAIN}:443:127.0.0.1")

    def handshake(*options: str) -> subprocess.CompletedProcess:
        return run("openssl", "s_client", "-connect", "127.0.0.1:443", "-servername", DOMAIN,
                   *options, input="")

    def negotiated(result: subprocess.CompletedProcess) -> str:
        match = re.search(r"^New, (TLSv[\d.]+), Cipher is (\S+)$", result.stdout, re.M)
        return f"{match[1]} {match[2]}" if match else f"refused (rc {result.returncode})"

    for cipher in (f"ECDHE-{auth}-AES128-GCM-SHA256", f"ECDHE-{auth}-AES256-GCM-SHA384",
                   f"ECDHE-{auth}-CHACHA20-POLY1305"):
        assert negotiated(handshake("-tls1_2", "-cipher", cipher)) == f"TLSv1.2 {cipher}"
    for cipher in (f"ECDHE-{auth}-AES128-SHA256", f"ECDHE-{auth}-AES128-SHA",  # CBC
                   "AES128-GCM-SHA256", "AES256-SHA256",  # RSA key exchange
                   f"ECDHE-{auth}-AES128-CCM8" if auth == "ECDSA" else "AES128-CCM8",
                   "ECDHE-ARIA128-GCM-SHA256", "CAMELLIA128-SHA256"):
        refused = handshake("-tls1_2", "-cipher", f"{cipher}@SECLEVEL=0")
        assert refused.returncode != 0 and "Cipher is (NONE)" in refused.stdout, cipher
    # Key exchange groups: the profile's only (for ECDSA in TLS 1.2 the client must offer the
    # certificate's curve too, so only the RSA certificate shows a refused group alone).
    offered = "X25519" if auth == "RSA" else "X25519:prime256v1"
    assert "Server Temp Key: X25519," in handshake("-tls1_2", "-curves", offered).stdout
    if auth == "RSA":
        assert handshake("-tls1_2", "-curves", "secp521r1").returncode != 0
    assert negotiated(handshake("-tls1_3")) == "TLSv1.3 TLS_AES_256_GCM_SHA384"


def _codes(run, script: str) -> list[str]:
    """HTTP status codes printed by a bash script of curl calls (one `%{http_code}` a line)."""
    result = run("bash", "-c", script, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def _curl(source: str, *args: str) -> str:
    """A curl command line from `source` (an address of the namespace) to the site."""
    words = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}\\n", "--interface", source,
             *HTTPS, *args]
    return " ".join(shlex.quote(word) for word in words)


CLIENTS = ("10.0.0.5", "10.0.0.6")  # two client addresses in the test's namespace


def _add_clients(run) -> None:
    for address in CLIENTS:
        run("ip", "addr", "add", f"{address}/32", "dev", "lo", check=True)


def test_a_burst_of_login_posts_from_one_address_gets_429_beyond_the_limit(site):
    """The defaults: 6 login attempts a minute and 5 at once per address. The rejected
    ones never reach an app server; the login page itself and other addresses are free."""
    serve, run, hits = site
    serve()
    _add_clients(run)
    one, other = CLIENTS
    post = _curl(one, "--data", "username=admin&password=guess", f"https://{DOMAIN}/admin/login/")
    assert _codes(run, f"for i in $(seq 12); do {post}; done") == ["200"] * 6 + ["429"] * 6
    assert _codes(run, _curl(one, f"https://{DOMAIN}/admin/login/")) == ["200"]  # a GET
    assert _codes(run, _curl(one, "--data", "q=1", f"https://{DOMAIN}/mydb/")) == ["200"]
    assert _codes(run, _curl(other, "--data", "username=admin&password=guess",
                             f"https://{DOMAIN}/admin/login/")) == ["200"]
    assert sorted(hits()) == ["POST /admin/login/"] * 7 + ["POST /mydb/"]


def test_every_request_counts_against_the_general_limit_per_address(site):
    serve, run, _ = site
    serve(make_config(nginx=NginxConfig(request_rate="6r/m", request_burst=3)))
    _add_clients(run)
    one, other = CLIENTS
    get = _curl(one, f"https://{DOMAIN}/mydb/")
    assert _codes(run, f"for i in $(seq 8); do {get}; done") == ["200"] * 4 + ["429"] * 4
    assert _codes(run, _curl(other, f"https://{DOMAIN}/mydb/")) == ["200"]


def test_requests_in_progress_are_limited_per_address(site, nginx_dir):
    serve, run, _ = site
    serve(make_config(nginx=NginxConfig(connections_per_client=2)))
    _add_clients(run)
    one, other = CLIENTS
    slow = _curl(one, f"https://{DOMAIN}/slow?s=4")
    third, elsewhere = (_curl(source, f"https://{DOMAIN}/mydb/") for source in (one, other))
    first, second = nginx_dir / "slow-1", nginx_dir / "slow-2"
    # the third request goes out once both slow ones are at the app servers (in progress)
    both_arrived = (f"for i in $(seq 30); do [ \"$(cat {nginx_dir}/hits-* 2>/dev/null | "
                    "wc -l)\" = 2 ] && break; sleep 0.1; done")
    script = (f"{slow} > {first} & {slow} > {second} & {both_arrived}; "
              f"{third}; {elsewhere}; wait; cat {first} {second}")
    assert _codes(run, script) == ["429", "200", "200", "200"]


def test_a_busy_server_times_out_once_and_is_not_taken_out(site):
    """A request that times out reading from an app server gets 504 and is not sent to the
    other (next_upstream_timeout < read_timeout); with max_fails=0 (the default) both
    servers keep getting requests afterwards."""
    serve, run, hits = site
    serve(make_config(nginx=NginxConfig(
        connect_timeout="200ms", next_upstream_timeout="500ms", read_timeout="1s",
        send_timeout="1s")))
    started = time.monotonic()
    assert _codes(run, _curl("127.0.0.1", f"https://{DOMAIN}/slow?s=3")) == ["504"]
    assert time.monotonic() - started < 4  # one read timeout (1 s), no second try
    time.sleep(0.2)
    assert hits() == ["/slow?s=3"]
    seen = set()
    for _ in range(6):
        response = run("curl", "-s", *HTTPS, f"https://{DOMAIN}/mydb/")
        seen.add(json.loads(response.stdout)["server"])
    assert seen == set(APPS)


def test_a_dead_server_is_skipped_for_posts_too(site):
    """A refused connection: the request never reached that server, so even a POST is sent
    to the next one (max_fails=0 tries the dead one each time round, at no cost here)."""
    serve, run, hits = site
    backends = serve()
    backends["10.0.0.21"].send_signal(signal.SIGTERM)
    backends["10.0.0.21"].wait(timeout=10)
    post = _curl("127.0.0.1", "--data", "q=1", f"https://{DOMAIN}/mydb/")
    assert _codes(run, f"for i in $(seq 10); do {post}; done") == ["200"] * 10
    assert hits() == ["POST /mydb/"] * 10


def test_maintenance_mode_answers_clients_503_with_the_page_and_lets_admins_through(
        site, nginx_dir):
    """The flag file switches it at once, without a reload: a client outside the admin
    networks gets 503, the page and Retry-After for every method and path (nothing reaches
    an app server); an admin-network address reaches the app; without the flag, everyone
    does. ACME challenges on port 80 are served throughout."""
    serve, run, hits = site
    client, admin = CLIENTS
    cfg = make_config(firewall=FirewallConfig(admin_cidrs=("198.51.100.0/24", f"{admin}/32")),
                      maintenance=MaintenanceConfig(retry_after=120))
    serve(cfg)
    _add_clients(run)
    flag = nginx_dir / "maintenance.on"

    def answer(source: str, *args: str) -> tuple[str, list[str], str]:
        head, body = nginx_dir / "head", nginx_dir / "body"
        result = run("curl", "-s", "-D", str(head), "-o", str(body), "-w", "%{http_code}",
                     "--interface", source, *HTTPS, *args)
        return (result.stdout, [line.strip() for line in head.read_text().lower().splitlines()],
                body.read_text())

    assert answer(client, f"https://{DOMAIN}/mydb/")[0] == "200"
    flag.write_text("2026-01-01T00:00:00Z\n")
    for args in ([f"https://{DOMAIN}/mydb/"], ["--data", "q=1", f"https://{DOMAIN}/mydb/"],
                 ["--data", "username=a", f"https://{DOMAIN}/admin/login/"],
                 ["-X", "DELETE", f"https://{DOMAIN}/"]):
        code, head, body = answer(client, *args)
        assert code == "503", args
        assert "retry-after: 120" in head and "cache-control: no-store" in head
        assert "content-type: text/html; charset=utf-8" in head
        assert head.count("strict-transport-security: max-age=63072000") == 1
        assert body == render_maintenance_page(cfg)
        assert f"{DOMAIN} is down for maintenance" in body
    assert answer(admin, f"https://{DOMAIN}/mydb/")[0] == "200"
    assert answer(admin, "--data", "q=1", f"https://{DOMAIN}/mydb/")[0] == "200"
    challenge = run("curl", "-s", "--interface", client, "--resolve", f"{DOMAIN}:80:127.0.0.1",
                    f"http://{DOMAIN}/.well-known/acme-challenge/token123")
    assert challenge.stdout == "token123.key\n"
    assert hits() == ["POST /mydb/"]  # the admin's; no client request reached an app server

    flag.unlink()
    assert answer(client, f"https://{DOMAIN}/mydb/")[0] == "200"
    # the page's own location is internal: a client asking for it gets 404
    assert answer(client, f"https://{DOMAIN}/__djscale_maintenance__.html")[0] == "404"


# `docker exec <container> nginx ...` against a real nginx master in the test's namespace, in
# a private mount namespace with an empty /run: nginx's compiled-in default config (the
# image's, here Debian's /etc/nginx/nginx.conf) points at a pid file that does not exist
# there, as in a container whose master was started with another config.
REAL_DOCKER_STUB = """#!/bin/sh
case "$1 $2" in
  "container inspect") echo true; exit 0 ;;
esac
[ "$1" = exec ] || exit 1
shift 2
exec ip netns exec "$NETNS" unshare -m sh -c \\
    'mount -t tmpfs djscale-test /run && exec "$@"' djscale "$@" -p "$PREFIX" -e "$ERRLOG"
"""


def test_activation_reloads_a_running_nginx_through_its_pid_file(nginx_dir, netns):
    tmp_path = nginx_dir
    run, start = netns
    netns_name = run("ip", "netns", "identify").stdout.strip()
    conf = _sandbox(tmp_path, tls=True)
    start("nginx", "-c", str(conf), "-p", str(tmp_path), "-e", str(tmp_path / "error.log"),
          "-g", "daemon off;")
    challenge = ["curl", "-s", "--resolve", f"{DOMAIN}:80:127.0.0.1",
                 f"http://{DOMAIN}/.well-known/acme-challenge/token123"]
    _wait_for(run, *challenge[2:])
    assert run(*challenge).stdout == "token123.key\n"
    assert (tmp_path / "nginx.pid").exists()  # not the default config's pid path

    # The new config serves the challenges from another webroot.
    webroot = tmp_path / "webroot2"
    (webroot / ".well-known" / "acme-challenge").mkdir(parents=True)
    (webroot / ".well-known" / "acme-challenge" / "token123").write_text("reloaded\n")
    staged = tmp_path / "nginx.conf.new"
    staged.write_text(conf.read_text().replace(str(tmp_path / "webroot"), str(webroot)))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(REAL_DOCKER_STUB)
    (bin_dir / "docker").chmod(0o755)
    script = render_activate_nginx_conf_script(staged=str(staged), target=str(conf))
    result = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=60,
        env=dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", NETNS=netns_name,
                 PREFIX=str(tmp_path), ERRLOG=str(tmp_path / "error.log")))
    assert result.returncode == 0, result.stdout + result.stderr
    assert not staged.exists()
    deadline = time.monotonic() + 30  # workers with the new config replace the old ones
    while time.monotonic() < deadline:  # (a loaded machine can take seconds)
        if run(*challenge).stdout == "reloaded\n":
            break
        time.sleep(0.1)
    assert run(*challenge).stdout == "reloaded\n"


def test_with_the_upstream_watcher_a_silent_server_costs_no_connect_timeout(site, nginx_dir):
    """nginx.hostChecks: app server 10.0.0.21 stops answering (its packets dropped). Without
    the watcher every request nginx picks it for waits connect_timeout ("upstream timed
    out" in nginx's log); once djscale-upstream-watch has taken it out, nginx's connects to
    it are refused on the spot and the request, GET or POST, goes to 10.0.0.22: every answer
    200, no new timeout logged. When it answers again it is back in the upstream."""
    from components import upstream_watch

    serve, run, hits = site
    serve(make_config(nginx=NginxConfig(connect_timeout="300ms")))
    drop = ["iptables", "-I", "INPUT", "-d", "10.0.0.21", "-p", "tcp", "--dport", "8000",
            "-j", "DROP"]
    assert run(*drop).returncode == 0
    get = _curl("127.0.0.1", f"https://{DOMAIN}/mydb/")
    assert _codes(run, f"for i in $(seq 4); do {get}; done") == ["200"] * 4
    error_log = nginx_dir / "error.log"
    assert "upstream timed out" in error_log.read_text()  # the wait the watcher removes

    state = nginx_dir / "watch.json"
    watcher = subprocess.Popen(
        ["ip", "netns", "exec", run("ip", "netns", "identify").stdout.strip(), sys.executable,
         upstream_watch.__file__, "--conf", str(nginx_dir / "nginx.conf"), "--state",
         str(state), "--interval", "0.2", "--timeout", "0.3"])
    try:
        for _ in range(100):
            if state.exists() and json.loads(state.read_text())["out"] == ["10.0.0.21:8000"]:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"never taken out: {state.read_text()}")
        timeouts = error_log.read_text().count("upstream timed out")
        post = _curl("127.0.0.1", "--data", "q=1", f"https://{DOMAIN}/mydb/")
        assert _codes(run, f"for i in $(seq 6); do {get}; {post}; done") == ["200"] * 12
        log = error_log.read_text()
        assert log.count("upstream timed out") == timeouts
        assert "(111: Connection refused) while connecting to upstream" in log
        assert hits().count("POST /mydb/") == 6  # each POST reached a server once

        assert run("iptables", "-D", *drop[2:]).returncode == 0  # it answers again
        for _ in range(100):
            if json.loads(state.read_text())["out"] == []:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"never back: {state.read_text()}")
        seen = {json.loads(run("curl", "-s", *HTTPS, f"https://{DOMAIN}/mydb/").stdout)["server"]
                for _ in range(6)}
        assert seen == set(APPS)
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)
    assert "DJSCALE-UPSTREAM" not in run("iptables", "-S").stdout
