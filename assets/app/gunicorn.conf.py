"""gunicorn settings for the app container (`gunicorn -c gunicorn.conf.py`).

Sync workers behind djscale's nginx. The container's stop timeout must exceed
graceful_timeout (djscale runs containers with a 30 s stop timeout) so that SIGTERM lets
requests in flight finish before Docker sends SIGKILL.
"""
import ipaddress
import os
import sys

from gunicorn import glogging

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from djsite import envvars  # noqa: E402  (the shared names, without importing Django)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # honours cpusets (docker --cpuset-cpus)
    except AttributeError:
        return os.cpu_count() or 1


def _workers() -> int:
    raw = os.environ.get(envvars.GUNICORN_WORKERS, "").strip()
    if not raw:
        return 2 * _cores() + 1
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"{envvars.GUNICORN_WORKERS}={raw!r} must be a positive integer")
    return int(raw)


def _forwarded_allow_ips() -> str:
    raw = os.environ.get(envvars.GUNICORN_FORWARDED_ALLOW_IPS, "").strip()
    if not raw:
        return "127.0.0.1,::1"  # gunicorn's own default: a proxy on this host only
    entries = [entry.strip() for entry in raw.split(",") if entry.strip()]
    for entry in entries:
        try:
            ipaddress.ip_network(entry)
        except ValueError:
            raise SystemExit(f"{envvars.GUNICORN_FORWARDED_ALLOW_IPS}={raw!r}: {entry!r} is "
                             "not an IP address or network") from None
    return ",".join(entries)


def forwarded_client(environ: dict, trusted: list) -> str:
    """The client's address: the last X-Forwarded-For entry (the one the nearest proxy
    wrote; djscale's nginx writes only that one) when the peer is a trusted proxy, else the
    peer's own address."""
    peer = environ.get("REMOTE_ADDR") or "-"
    forwarded = environ.get("HTTP_X_FORWARDED_FOR", "").rsplit(",", 1)[-1].strip()
    try:
        peer_address = ipaddress.ip_address(peer)
        ipaddress.ip_address(forwarded)
    except ValueError:
        return peer
    if "*" in trusted or any(peer_address in ipaddress.ip_network(entry)
                             for entry in trusted):
        return forwarded
    return peer


class ClientAddressLogger(glogging.Logger):
    """Access log lines name the client (`%(client)s`), not the proxy that connected."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["client"] = forwarded_client(environ, self.cfg.forwarded_allow_ips)
        return atoms


wsgi_app = "djsite.wsgi:application"
bind = ["0.0.0.0:8000"]
workers = _workers()
worker_class = "sync"
# Import the app in the master: a broken setting (missing secret...) stops the container
# at once instead of leaving a master whose workers crash in a loop.
preload_app = True
timeout = 30
graceful_timeout = 20  # SIGTERM: finish requests in flight for up to 20 s, then exit
keepalive = 2
# The heartbeat file on an overlay filesystem can stall workers; /dev/shm is memory.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

accesslog = "-"
# The combined log format with the client's address first, and the peer (the proxy) last.
logger_class = ClientAddressLogger
access_log_format = ('%(client)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" '
                     'peer=%(h)s')
errorlog = "-"
loglevel = os.environ.get(envvars.LOG_LEVEL, "info").strip().lower() or "info"
capture_output = False

# X-Forwarded-* is trusted from the proxy's address only (djscale writes it; Docker's
# published port keeps the source address, so the proxy is the peer the container sees).
# Behind anything else (a Docker engine without iptables NAT shows its bridge gateway) the
# headers are ignored: the scheme stays http for gunicorn and the log names the peer.
forwarded_allow_ips = _forwarded_allow_ips()
# The one header djscale's nginx sets for the scheme (Django reads it too, through
# SECURE_PROXY_SSL_HEADER); gunicorn's default also honours X-Forwarded-Protocol/-Ssl.
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}
# ...and no SCRIPT_NAME/PATH_INFO rewriting from request headers.
forwarder_headers = ""
# No runtime control socket: nothing uses it, and it would be a file under $HOME.
control_socket_disable = True
