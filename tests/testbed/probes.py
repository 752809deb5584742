"""Probes the proofs use, all from real sockets on the bed.

- `run_in(role, script)`: a command inside a bed container (docker exec, as root) — the
  source of a connection is then that container's own address;
- `tcp_open(src, address, port)`: a bounded TCP connect from `src` (bash /dev/tcp);
- `client_curl(...)`: curl from the `client` container (the internet) with the test domain
  resolved to the proxy and pebble's current root as the only trusted CA.
"""
from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass

from tests.support.dockerd import DockerEngine

from components.render.app_image import CONTAINER_NAME
from components.render.containers import SLOT_STATE_FILE

from . import acme, hosts, layout

PEBBLE_ROOT = "/tmp/pebble-root.pem"   # in the client container


@dataclass
class Bed:
    engine: DockerEngine
    state: layout.BedState

    # --- addresses ------------------------------------------------------------------------
    @property
    def roles(self) -> dict[str, str]:
        return layout.host_roles(self.state.app_count)

    @property
    def apps(self) -> list[str]:
        return [r for r in self.roles if r.startswith("app")]

    def address(self, role: str) -> str:
        return self.roles.get(role) or layout.SERVICE_ADDRESSES[role]

    # --- running things ---------------------------------------------------------------------
    def run_in(self, role: str, script: str, check: bool = True, timeout: float = 120,
               input: str | None = None) -> subprocess.CompletedProcess:
        return hosts.exec_sh(self.engine, layout.container_name(role), script, check=check,
                             timeout=timeout, input=input)

    def ssh(self, role: str, command: str, check: bool = True, timeout: float = 120,
            input_text: str | None = None):
        return hosts.ssh(self.address(role), command, check=check, timeout=timeout,
                         input=input_text)

    def sudo(self, role: str, script: str, check: bool = True, timeout: float = 300):
        return hosts.sudo_script(self.address(role), script, check=check, timeout=timeout)

    def tcp_open(self, src: str, address: str, port: int, timeout: float = 3) -> bool:
        """True if a TCP connection from `src`'s own address to address:port completes."""
        script = (f"timeout {timeout} bash -c 'exec 3<>/dev/tcp/{address}/{port}' "
                  ">/dev/null 2>&1")
        return self.run_in(src, script, check=False, timeout=timeout + 30).returncode == 0

    def listening(self, role: str, port: int) -> bool:
        """A listener on `port` exists inside `role` (any address, host namespace)."""
        out = self.run_in(role, f"ss -Hltn 'sport = :{port}'", check=False).stdout
        return bool(out.strip())

    # --- the client: the internet -----------------------------------------------------------
    def fetch_pebble_root(self) -> str:
        """pebble's current issuing root, fetched by the client over pebble's listener
        (verified with the bed CA, which the client is given for that one request)."""
        ca = acme.bed_ca_cert().read_text()
        self.run_in("client", "cat > /tmp/bed-ca.pem", input=ca)
        self.run_in("client", f"curl -fsS --cacert /tmp/bed-ca.pem -o {PEBBLE_ROOT} "
                    f"{shlex.quote(acme.roots_url())}")
        return self.run_in("client", f"cat {PEBBLE_ROOT}").stdout

    def served_certificate(self, servername: str = layout.DOMAIN) -> dict[str, str]:
        """serial, issuer and subject of the certificate the proxy serves for `servername`."""
        out = self.run_in("client", (
            f"openssl s_client -connect {layout.PROXY_ADDRESS}:443 -servername {servername} "
            "</dev/null 2>/dev/null | openssl x509 -noout -serial -issuer -subject "
            "-nameopt RFC2253"), timeout=60).stdout
        fields = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        return {k.strip(): v.strip() for k, v in fields.items()}

    def app_log_count(self, role: str, marker: str) -> int:
        """How many of the app containers' gunicorn access-log lines on `role` contain
        `marker` (docker logs over SSH: what an operator would read)."""
        out = self.ssh(role, "for c in $(sudo docker ps -aq --filter name=djscale-app); do "
                       "sudo docker logs $c 2>&1; done").stdout
        return sum(1 for line in out.splitlines() if marker in line)

    def app_container(self, role: str) -> str:
        """The app container nginx routes to on `role` (djscale-app-a or -b: the slot the
        last release recorded in SLOT_STATE_FILE)."""
        slot = self.sudo(role, f"cat {SLOT_STATE_FILE}").stdout.strip()
        assert slot in ("a", "b"), (role, slot)
        return f"{CONTAINER_NAME}-{slot}"

    def upstream_port(self, role: str) -> int:
        """The port nginx.conf lists `role` on (app.port: the watcher names it so too)."""
        conf = self.sudo("proxy", "cat /etc/djscale/nginx/nginx.conf").stdout
        return int(re.search(rf"server {re.escape(self.address(role))}:(\d+)", conf).group(1))

    def slot_port(self, role: str) -> int:
        """The host port nginx's connections to `role` reach: its live release slot, as the
        proxy's map of slots (djscale-upstream-slots) routes them."""
        routes = self.sudo("proxy", "cat /etc/djscale/upstream-slots").stdout
        return int(re.search(rf"^{re.escape(self.address(role))} \d+ (\d+)$", routes,
                             re.M).group(1))

    def app_container_ids(self, role: str) -> list[str]:
        return sorted(self.ssh(role, "sudo docker ps -q --no-trunc").stdout.split())

    def curl(self, url: str, *args: str, host: str = layout.DOMAIN, check: bool = False,
             timeout: float = 30, proxy: str = layout.PROXY_ADDRESS
             ) -> subprocess.CompletedProcess:
        """curl from the client; `host` resolves to the proxy (as DNS would), or to `proxy`
        (another stack's)."""
        resolve = []
        for port in (80, 443):
            resolve += ["--resolve", f"{host}:{port}:{proxy}"]
        argv = ["curl", "-sS", "--max-time", str(int(timeout)), "--cacert", PEBBLE_ROOT,
                *resolve, *args, url]
        return self.run_in("client", " ".join(shlex.quote(a) for a in argv), check=check,
                           timeout=timeout + 30)
