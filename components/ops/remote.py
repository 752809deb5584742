"""What the operations CLI runs on the servers, as data.

Every remote command is made here, from words quoted once (`shlex`) where they are joined;
the executor (session.py) only sends the text, and the tests assert it exactly (Kamal's
commands-as-data). Scripts that need a shell are fixed text run by `sudo -n bash -c SCRIPT
djscale-ops ARGS...`: values reach them as "$@", never inside the script. Nothing here
reads or prints a secret: the app's environment stays in its root-only env file on the
server, which a one-off container reads itself (`--env-file`).
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Optional, Sequence

from components.render.app_image import CONTAINER_NAME
from components.render.containers import RELEASES_FILE, SLOT_STATE_FILE
from components.render.images import APP_IMAGE_REPOSITORY
from components.render.nginx import NGINX_CONF_PATH, NGINX_CONTAINER_NAME
from components.render.certbot import STATUS_COMMAND_PATH
from components.render.upstream_slots import SLOTS_MAP_PATH
from components.render.upstream_watch import WATCH_STATE_PATH
from components.upstream_slots import CHAIN as SLOTS_CHAIN

SCRIPT_NAME = "djscale-ops"  # $0 of the root scripts (what `ps` shows on the server)
# Where the database host's backup job records its last successful backup (README,
# Operations): `key=value` lines, `time` (ISO 8601, UTC) and `size` (bytes) at least,
# optionally `object` (where it went). `ops status` prints those three keys, nothing else.
BACKUP_STATE_FILE = "/var/lib/djscale/backup/last"
POSTGRES_LOG_GLOB = "/var/log/postgresql/postgresql-*.log"  # Debian's clusters log here
# docker --format templates
CONTAINER_FORMAT = ("{{.Name}} {{.Image}} {{.State.Status}} "
                    "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} "
                    "{{.State.StartedAt}}")
IMAGES_FORMAT = "{{.ID}} {{.Tag}} {{.CreatedAt}}"


def words(*parts: str) -> str:
    """One command line from words, each quoted."""
    return shlex.join(parts)


def pipe(*commands: Sequence[str]) -> str:
    return " | ".join(shlex.join(command) for command in commands)


def root_script(script: str, *args: str) -> str:
    """`script` run by bash as root, `args` its "$@" (the only way values get in)."""
    return shlex.join(["sudo", "-n", "bash", "-c", script, SCRIPT_NAME, *args])


# --- logs --------------------------------------------------------------------------------

@dataclass(frozen=True)
class LogOptions:
    follow: bool = False
    since_seconds: Optional[int] = None  # only lines of the last N seconds
    lines: Optional[int] = None  # the last N lines (of each source); None: every line


def docker_log_args(options: LogOptions) -> list[str]:
    args = ["--timestamps"]
    if options.since_seconds is not None:
        args += ["--since", f"{int(options.since_seconds)}s"]
    if options.lines is not None:
        args += ["--tail", str(int(options.lines))]
    if options.follow:
        args.append("--follow")
    return args


APP_LOGS_SCRIPT = """label=$1; shift
ids=$(docker container ls --quiet --filter "label=djscale.container=$label")
if [ -z "$ids" ]; then
    echo "djscale: no $label container runs on $(hostname)" >&2
    exit 3
fi
for id in $ids; do
    docker logs "$@" "$id" 2>&1 &
done
wait
"""

CONTAINER_LOGS_SCRIPT = """name=$1; shift
exec docker logs "$@" "$name" 2>&1
"""

# PostgreSQL's own log file (Debian: pg_ctlcluster sends the server's stderr there), the
# newest one; the journal when there is none. `since`: lines from that many seconds ago on,
# by the timestamp each entry starts with (log_timezone: the server's own zone by default,
# which `date` uses too); lines that continue an entry follow it.
DB_LOGS_SCRIPT = """lines=$1 since=$2 follow=$3 pattern=$4
# shellcheck disable=SC2012,SC2086 # the pattern's names are PostgreSQL's own, no spaces
log=$(ls -t -- $pattern 2>/dev/null | head -n 1 || true)
if [ -z "$log" ]; then
    args=(--no-pager --utc --output short-iso-precise --unit 'postgresql*')
    [ "$lines" = all ] || args+=(--lines "$lines")
    [ "$since" = all ] || args+=(--since "-${since}s")
    [ "$follow" = no ] || args+=(--follow)
    exec journalctl "${args[@]}"
fi
tail_args=(-n +1)
[ "$follow" = no ] || tail_args+=(-F)
if [ "$since" = all ]; then
    [ "$lines" = all ] || tail_args[1]=$lines
    exec tail "${tail_args[@]}" -- "$log"
fi
cutoff=$(date -d "-$since seconds" '+%Y-%m-%d %H:%M:%S')
recent() {
    awk -v cutoff="$cutoff" 'substr($0, 1, 19) >= cutoff { shown = 1 } shown { print; fflush() }'
}
if [ "$lines" = all ] || [ "$follow" = yes ]; then
    tail "${tail_args[@]}" -- "$log" | recent
else
    tail "${tail_args[@]}" -- "$log" | recent | tail -n "$lines"
fi
"""


def app_logs_command(options: LogOptions) -> str:
    """The app containers' logs on an app server (both slots during a rollout), stdout and
    stderr, each line stamped by Docker."""
    return root_script(APP_LOGS_SCRIPT, CONTAINER_NAME, *docker_log_args(options))


def proxy_logs_command(options: LogOptions) -> str:
    """nginx's access and error logs (the container's stdout and stderr)."""
    return root_script(CONTAINER_LOGS_SCRIPT, NGINX_CONTAINER_NAME, *docker_log_args(options))


def db_logs_command(options: LogOptions) -> str:
    """PostgreSQL's log on the database host (its log file, else the journal)."""
    return root_script(
        DB_LOGS_SCRIPT,
        "all" if options.lines is None else str(int(options.lines)),
        "all" if options.since_seconds is None else str(int(options.since_seconds)),
        "yes" if options.follow else "no", POSTGRES_LOG_GLOB)


# --- one-off commands --------------------------------------------------------------------

# The image of the release nginx routes to on this server (the slot the last release
# recorded; before any, the newest running app container), run once with `options`.
ONE_OFF_SCRIPT = """name=$1 slot_file=$2; shift 2
options=()
while [ "$#" -gt 0 ] && [ "$1" != -- ]; do
    options+=("$1")
    shift
done
shift
slot=$(cat -- "$slot_file" 2>/dev/null || true)
if [ -n "$slot" ]; then
    container=$name-$slot
else
    container=$(docker container ls --quiet --filter "label=djscale.container=$name" | head -n 1)
fi
image=$(docker container inspect --format '{{.Image}}' "$container" 2>/dev/null || true)
if [ -z "$image" ]; then
    echo "djscale: no release of $name runs on $(hostname): nothing to run the command in" >&2
    exit 125
fi
exec docker run "${options[@]}" "$image" "$@"
"""


def one_off_options(env_file: str, volumes: Sequence[str], tty: bool) -> list[str]:
    """`docker run` options of a one-off container: removed afterwards, stdin kept open (a
    terminal when the operator has one), the app's env file and mounts as its containers
    have them."""
    options = ["--rm", "--interactive", *(["--tty"] if tty else []), "--env-file", env_file]
    for volume in volumes:
        options += ["--volume", volume]
    return [*options, "--label", "djscale.oneoff=ops"]


def one_off_command(command: Sequence[str], *, env_file: str, volumes: Sequence[str],
                    tty: bool) -> str:
    """`command` in a new container of the release this app server runs."""
    if not command:
        raise ValueError("no command to run")
    return root_script(ONE_OFF_SCRIPT, CONTAINER_NAME, SLOT_STATE_FILE,
                       *one_off_options(env_file, volumes, tty), "--", *command)


def host_command(command: Sequence[str]) -> str:
    """`command` on the host itself, as the SSH user (`exec --on-host`)."""
    if not command:
        raise ValueError("no command to run")
    return shlex.join(command)


# --- status --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Probe:
    name: str
    command: str  # shell text, made from quoted words


def probe_script(probes: Sequence[Probe]) -> str:
    """The probes in one root script: each one's output (stdout and stderr) between a
    `### <name>` line and a `### rc <status>` line (status.parse_probes reads them)."""
    lines = []
    for probe in probes:
        lines += [f"echo {shlex.quote('### ' + probe.name)}", f"( {probe.command} ) 2>&1",
                  'echo "### rc $?"']
    return "\n".join(lines) + "\n"


def _unless_missing(path: str, *command: str) -> str:
    """`command`, or exit status 127 (nothing printed) when `path` is not there."""
    return f"{words('test', '-e', path)} || exit 127; {words(*command)}"


def status_probes(role: str) -> list[Probe]:
    """What `ops status` asks a host of `role` (database, app, proxy)."""
    probes = [Probe("now", words("date", "-u", "+%s"))]
    if role == "database":
        probes += [
            Probe("disk", words("df", "-P", "-k", "/", "/var/lib/postgresql")),
            Probe("postgresql", words("systemctl", "is-active", "postgresql")),
            Probe("backup", _unless_missing(BACKUP_STATE_FILE, "stat", "-c", "%Y %s",
                                            BACKUP_STATE_FILE)
                  + "; " + words("head", "-c", "4096", BACKUP_STATE_FILE)),
        ]
    elif role == "app":
        probes += [
            Probe("disk", words("df", "-P", "-k", "/", "/var/lib/docker")),
            Probe("slot", words("cat", SLOT_STATE_FILE)),
            Probe("containers", pipe(
                ["docker", "container", "ls", "--all", "--quiet", "--filter",
                 f"label=djscale.container={CONTAINER_NAME}"],
                ["xargs", "-r", "docker", "container", "inspect", "--format",
                 CONTAINER_FORMAT])),
            Probe("releases", _unless_missing(RELEASES_FILE, "tail", "-n", "5", RELEASES_FILE)),
            Probe("images", words("docker", "image", "ls", "--no-trunc", "--format",
                                  IMAGES_FORMAT, APP_IMAGE_REPOSITORY)),
        ]
    elif role == "proxy":
        probes += [
            Probe("disk", words("df", "-P", "-k", "/", "/var/lib/docker")),
            Probe("containers", words("docker", "container", "inspect", "--format",
                                      CONTAINER_FORMAT, NGINX_CONTAINER_NAME)),
            Probe("upstream", words("sed", "-n", "/upstream djscale_app {/,/}/p",
                                    NGINX_CONF_PATH)),
            Probe("certificate", _unless_missing(STATUS_COMMAND_PATH, STATUS_COMMAND_PATH)),
            Probe("watcher", _unless_missing(WATCH_STATE_PATH, "head", "-c", "4096",
                                             WATCH_STATE_PATH)),
            Probe("slots", _unless_missing(SLOTS_MAP_PATH, "head", "-c", "65536",
                                           SLOTS_MAP_PATH)),
            Probe("slot-rules", words("iptables", "-w", "-t", "nat", "-S", SLOTS_CHAIN)),
        ]
    else:
        raise ValueError(f"unknown role {role!r}")
    return probes


def status_command(role: str) -> str:
    return root_script(probe_script(status_probes(role)))
