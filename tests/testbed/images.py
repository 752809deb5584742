"""Images of the live test bed, all built locally (no registry is reachable from here).

Two kinds:
- bed images, run by the outer engine: the systemd `host` image (db, app*, proxy) and one
  `services` image for `client` (the internet), `acme` (pebble + pebble-challtestsrv),
  `registry` (Debian docker-registry) and `s3` (moto server);
- program images, which the program's own hosts pull from the bed's registry, as a real
  server pulls from Docker Hub: `app-base` (stands in for python:3.12-slim), `nginx` (Debian
  nginx laid out like the official image), `certbot` (Debian certbot, entrypoint `certbot`,
  plus trust in the bed CA that signs pebble's listener certificate: test-only).

Every image is a debootstrapped rootfs (tests/support/rootfs.py, cached by recipe and suite),
so only the first run pays for debootstrap. Test-only images trust the sandbox's intercepting CA.

The bed's suite (layout.bed_suite: bookworm or trixie) makes the `host` image: the servers.
The program images stand in for official images, which do not follow the servers'
distribution: `nginx` comes from Debian 13 (nginx 1.26) on every bed, because the program's
nginx.conf needs nginx >= 1.25.1 (`http2 on;`), as the official nginx:1.30 default is;
`app-base` and `certbot` stay on DEFAULT_SUITE, and so does `services`, the bed's plumbing.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from tests.support.dockerd import DockerEngine
from tests.support.rootfs import DEFAULT_SUITE, ensure_base_image

from . import layout

# --- the systemd host (Molecule-style) -----------------------------------------------------
HOST_PACKAGES = ["systemd", "systemd-sysv", "dbus", "openssh-server", "sudo", "iproute2",
                 "iptables", "ufw", "ca-certificates", "curl", "python3", "gnupg", "procps"]

# Units that would change the machine itself from inside, or that wait for hardware, or that
# take apt's lock at random times (apt-daily): masked.
MASKED_UNITS = [
    "systemd-udevd.service", "systemd-udevd-control.socket", "systemd-udevd-kernel.socket",
    "systemd-udev-trigger.service", "systemd-udev-settle.service", "systemd-hwdb-update.service",
    "systemd-binfmt.service", "proc-sys-fs-binfmt_misc.automount",
    "proc-sys-fs-binfmt_misc.mount", "systemd-timesyncd.service", "systemd-sysctl.service",
    "systemd-modules-load.service", "systemd-remount-fs.service", "systemd-firstboot.service",
    "kmod-static-nodes.service", "systemd-journald-audit.socket",
    "getty.target", "getty@tty1.service", "console-getty.service", "serial-getty@.service",
    "sys-kernel-config.mount", "sys-kernel-debug.mount", "sys-kernel-tracing.mount",
    "sys-fs-fuse-connections.mount", "dev-hugepages.mount", "dev-mqueue.mount",
    "apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer", "fstrim.timer",
]

HOST_SETUP = f"""
rm -f /etc/ssh/ssh_host_*            # each host makes its own keys at first boot
mkdir -p /etc/systemd/system/ssh.service.d
cat > /etc/systemd/system/ssh.service.d/djscale-testbed.conf <<'UNIT'
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
UNIT
printf 'PasswordAuthentication no\\nKbdInteractiveAuthentication no\\nUseDNS no\\n' \\
  > /etc/ssh/sshd_config.d/djscale-testbed.conf
for unit in {' '.join(MASKED_UNITS)}; do ln -sf /dev/null /etc/systemd/system/$unit; done
useradd --create-home --shell /bin/bash {layout.SSH_USER}
printf '{layout.SSH_USER} ALL=(ALL) NOPASSWD:ALL\\n' > /etc/sudoers.d/{layout.SSH_USER}
chmod 440 /etc/sudoers.d/{layout.SSH_USER}
: > /etc/machine-id
"""
HOST_CHANGES = ["ENV container=docker", 'CMD ["/sbin/init"]']

# --- bed services: one image, four containers (one debootstrap instead of four) --------------
# client (the internet: curl, openssl), acme (pebble + challtestsrv), registry (Debian's
# docker-registry), s3 (moto server in a venv). Each container gets its own command.
SERVICES_PACKAGES = ["curl", "openssl", "python3", "python3-venv", "iproute2", "netcat-openbsd",
                     "procps", "pebble", "docker-registry"]
SERVICES_SETUP = f"""
cat > /usr/local/bin/start-acme <<'SH'
#!/bin/sh
# challtestsrv answers every A query with the proxy's address: HTTP-01 goes to the proxy.
pebble-challtestsrv -defaultIPv4 "$PROXY_IP" -defaultIPv6 "" -dns01 :8053 \\
  -http01 "" -https01 "" -tlsalpn01 "" -management :8055 &
exec pebble -config /etc/pebble/pebble.json -dnsserver 127.0.0.1:8053
SH
chmod 755 /usr/local/bin/start-acme
mkdir -p /etc/docker/registry /var/lib/docker-registry
cat > /etc/docker/registry/config.yml <<'YML'
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: /var/lib/docker-registry
http:
  addr: :{layout.REGISTRY_PORT}
YML
unset PIP_FIND_LINKS
python3 -m venv /opt/moto
/opt/moto/bin/pip install --no-cache-dir -q 'moto[s3]==5.2.1' 'flask<4' 'flask-cors<7'
"""
SERVICES_CHANGES = ["ENV PEBBLE_VA_NOSLEEP=1", "ENV PEBBLE_AUTHZREUSE=0",
                    "ENV PEBBLE_WFE_NONCEREJECT=0", 'CMD ["sleep", "infinity"]']
SERVICE_COMMANDS = {
    "client": ["sleep", "infinity"],
    "acme": ["/usr/local/bin/start-acme"],
    "registry": ["/usr/bin/docker-registry", "serve", "/etc/docker/registry/config.yml"],
    "s3": ["/opt/moto/bin/python", "-m", "moto.server", "-H", "0.0.0.0",
           "-p", str(layout.S3_PORT)],
}

# --- program images (pushed to the bed registry) ---------------------------------------------
APP_BASE_PACKAGES = ["python3", "python3-venv", "ca-certificates"]
APP_BASE_CHANGES = ['CMD ["python3"]']

# The official nginx image's layout: /etc/nginx/nginx.conf including conf.d/*.conf, user
# `nginx`, logs to the container's stdout/stderr, `nginx -g 'daemon off;'`.
NGINX_SETUP = r"""
useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin nginx
rm -f /etc/nginx/sites-enabled/default
cat > /etc/nginx/nginx.conf <<'CONF'
user  nginx;
worker_processes  auto;

error_log  /var/log/nginx/error.log notice;
pid        /var/run/nginx.pid;
include /etc/nginx/modules-enabled/*.conf;

events {
    worker_connections  1024;
}

http {
    include       /etc/nginx/mime.types;
    default_type  application/octet-stream;

    log_format  main  '$remote_addr - $remote_user [$time_local] "$request" '
                      '$status $body_bytes_sent "$http_referer" '
                      '"$http_user_agent" "$http_x_forwarded_for"';

    access_log  /var/log/nginx/access.log  main;

    sendfile        on;
    keepalive_timeout  65;

    include /etc/nginx/conf.d/*.conf;
}
CONF
mkdir -p /etc/nginx/conf.d /usr/share/nginx/html
cat > /etc/nginx/conf.d/default.conf <<'CONF'
server {
    listen       80;
    server_name  localhost;
    location / {
        root   /usr/share/nginx/html;
        index  index.html index.htm;
    }
    error_page   500 502 503 504  /50x.html;
    location = /50x.html {
        root   /usr/share/nginx/html;
    }
}
CONF
echo '<h1>Welcome to nginx!</h1>' > /usr/share/nginx/html/index.html
echo '<h1>An error occurred.</h1>' > /usr/share/nginx/html/50x.html
ln -sf /dev/stdout /var/log/nginx/access.log
ln -sf /dev/stderr /var/log/nginx/error.log
"""
NGINX_CHANGES = ['CMD ["nginx", "-g", "daemon off;"]']

CERTBOT_PACKAGES = ["python3"]
# debootstrap's resolver fails on certbot's dependencies (python3-cryptography): apt does it
CERTBOT_SETUP = """
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends certbot
"""
CERTBOT_CHANGES = ['ENTRYPOINT ["certbot"]', 'CMD ["--help"]']

PROGRAM_IMAGES = ("app-base", "nginx", "certbot")


def build_bed_images(engine: DockerEngine, suite: str) -> dict[str, str]:
    """Build (or find cached) the images the outer engine runs: "host" (Debian `suite`),
    "services"."""
    return {
        "host": ensure_base_image(engine, f"{layout.PREFIX}/host", HOST_PACKAGES, HOST_SETUP,
                                  HOST_CHANGES, suite=suite),
        "services": ensure_base_image(engine, f"{layout.PREFIX}/services", SERVICES_PACKAGES,
                                      SERVICES_SETUP, SERVICES_CHANGES, suite=DEFAULT_SUITE),
    }


NGINX_SUITE = "trixie"  # nginx 1.26: the program's `http2 on;` needs >= 1.25.1


def build_program_images(engine: DockerEngine, bed_ca: Path, suite: str) -> dict[str, str]:
    """Build the images the program pulls (nginx from Debian 13 whatever the hosts' suite:
    see the module docstring). role -> local tag.
    certbot additionally trusts the bed CA (pebble's listener certificate): a small layer
    built per bed."""
    images = {
        "app-base": ensure_base_image(engine, f"{layout.PREFIX}/app-base", APP_BASE_PACKAGES,
                                      "", APP_BASE_CHANGES, suite=DEFAULT_SUITE),
        "nginx": ensure_base_image(engine, f"{layout.PREFIX}/nginx", ["nginx"], NGINX_SETUP,
                                   NGINX_CHANGES, suite=NGINX_SUITE),
    }
    certbot_base = ensure_base_image(engine, f"{layout.PREFIX}/certbot-base", CERTBOT_PACKAGES,
                                     CERTBOT_SETUP, CERTBOT_CHANGES, suite=DEFAULT_SUITE)
    with tempfile.TemporaryDirectory() as ctx:
        (Path(ctx) / "djscale-testbed-ca.crt").write_bytes(bed_ca.read_bytes())
        (Path(ctx) / "Dockerfile").write_text(
            f"FROM {certbot_base}\n"
            "COPY djscale-testbed-ca.crt /usr/local/share/ca-certificates/\n"
            "RUN update-ca-certificates >/dev/null\n")
        tag = f"{layout.PREFIX}/certbot:bed"
        engine.docker("build", "-q", "-t", tag, ctx, timeout=300)
    images["certbot"] = tag
    return images


def push_to_registry(engine: DockerEngine, images: dict[str, str],
                     push_port: int) -> dict[str, str]:
    """Push the program images to the bed registry; return role -> the name hosts pull.

    The outer engine pushes through the registry's port published on the machine's
    loopback, `push_port` (Docker trusts plain-http registries on 127.0.0.0/8 only); the
    bed's hosts pull the same repositories at the registry's bed address, which their
    engines list as insecure.
    """
    pulled = {}
    for role, tag in images.items():
        version = tag.split(":", 1)[1]
        path = f"djscale/{role}:{version}"
        push_name = f"127.0.0.1:{push_port}/{path}"
        engine.docker("tag", tag, push_name)
        engine.docker("push", push_name, timeout=600)
        engine.docker("rmi", push_name)  # the local alias only; the image stays
        pulled[role] = f"{layout.SERVICE_ADDRESSES['registry']}:{layout.REGISTRY_PORT}/{path}"
    return pulled
