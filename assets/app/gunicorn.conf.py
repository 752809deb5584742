"""gunicorn settings for the app container (`gunicorn -c gunicorn.conf.py`).

Sync workers behind djscale's nginx. The container's stop timeout must exceed
graceful_timeout (djscale runs containers with a 30 s stop timeout) so that SIGTERM lets
requests in flight finish before Docker sends SIGKILL.
"""
import os
import sys

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
errorlog = "-"
loglevel = os.environ.get(envvars.LOG_LEVEL, "info").strip().lower() or "info"
capture_output = False

# Only the proxy can reach this port (the host firewall admits it alone), and its address
# as seen from inside the container depends on Docker's networking (NAT gateway or not):
# trust X-Forwarded-Proto from any peer. Django itself reads the header through
# SECURE_PROXY_SSL_HEADER; this only makes gunicorn's wsgi.url_scheme agree.
forwarded_allow_ips = "*"
# ...but accept no SCRIPT_NAME/PATH_INFO rewriting from request headers.
forwarder_headers = ""
# No runtime control socket: nothing uses it, and it would be a file under $HOME.
control_socket_disable = True
