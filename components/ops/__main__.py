"""Day-2 operations on a deployed stack, over SSH (issue 12): status, logs, one-off commands.

    python -m components.ops --stack dev status
    python -m components.ops --stack dev logs [HOST...] [-f] [--since 15m] [-n 100] [--proxy] [--db]
    python -m components.ops --stack dev exec HOST [--on-host] -- COMMAND...
    python -m components.ops --stack dev manage [--host APP] COMMAND...

Reads `Pulumi.<stack>.yaml` (components/ops/stack.py: hosts, SSH user, ports, pinned host
keys, bastion; the key from --key-file, DJSCALE_SSH_PRIVATE_KEY, ssh.privateKeyPath or
`pulumi config get sshPrivateKey`) and the stack's outputs (`pulumi stack output`, or the
test bed's engine state with --engine-state). Every connection is bounded (--connect-timeout;
--timeout for status and logs without -f) and every host that could not be reached is
named on stderr (exit status 1). Exit status 2: the stack or the machine is not usable.
`exec` and `manage` exit with the command's status; what they print is the command's.
Nothing here imports pulumi.
"""
from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import Optional, Sequence

from components.plans.app_server import app_slots
from components.ship_image import ShipError

from . import remote
from .logs import merge, parse_duration, prefixer
from .session import Result, Session
from .stack import OpsError, OpsHost, load_config, private_key, read_outputs, stack_hosts
from .status import render

PROJECT_DIR = Path(__file__).resolve().parents[2]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m components.ops",
                                     description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--stack", help="stack name: reads Pulumi.<stack>.yaml")
    source.add_argument("--stack-file", type=Path, help="path of a Pulumi.<stack>.yaml")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR,
                        help="where Pulumi.yaml and Pulumi.<stack>.yaml live")
    parser.add_argument("--key-file", help="the stack's SSH private key (default: "
                        "DJSCALE_SSH_PRIVATE_KEY, ssh.privateKeyPath, pulumi config get "
                        "sshPrivateKey)")
    parser.add_argument("--engine-state", help="the test bed's engine state file or "
                        "directory, for the stack's outputs (default: DJSCALE_ENGINE_STATE, "
                        "else `pulumi stack output`)")
    parser.add_argument("--connect-timeout", type=int, default=10, metavar="SECONDS",
                        help="SSH connection timeout per host (default 10)")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="overall time per host: default 60 for status and logs, none "
                        "for logs -f, exec and manage")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("status", help="per host: reachable, release, health, uptime, disk; "
                        "the proxy's upstream and certificate; the last backup")

    logs = commands.add_parser("logs", help="logs of every app server (and the proxy's, the "
                               "database's), interleaved, prefixed by host")
    logs.add_argument("hosts", nargs="*", metavar="HOST",
                      help="only these hosts (app servers: the app; proxy: nginx; db: "
                      "PostgreSQL); default: every app server")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.add_argument("--since", help="only lines of the last 90s, 15m, 2h, 1d, ...")
    logs.add_argument("-n", "--lines", type=int, default=None,
                      help="last lines per host (default 100 without --since)")
    logs.add_argument("--proxy", action="store_true", help="also nginx on the proxy")
    logs.add_argument("--db", action="store_true", help="also PostgreSQL on the database host")

    run = commands.add_parser("exec", help="COMMAND in a new container of the release HOST "
                              "runs, with the app's environment (--on-host: on the host)")
    run.add_argument("host", metavar="HOST")
    run.add_argument("--on-host", action="store_true",
                     help="run COMMAND on the host itself, as the SSH user")
    run.add_argument("command_words", nargs=argparse.REMAINDER, metavar="-- COMMAND")

    manage = commands.add_parser("manage", help="python manage.py COMMAND in a new container "
                                 "of the current release (first app server)")
    manage.add_argument("--host", help="the app server to run it on (default: the first)")
    manage.add_argument("command_words", nargs=argparse.REMAINDER, metavar="COMMAND")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    stack_file = args.stack_file or args.project_dir / f"Pulumi.{args.stack}.yaml"
    try:
        cfg = load_config(stack_file)
        hosts = stack_hosts(cfg)
        key = private_key(cfg, args.stack, args.project_dir, args.key_file)
        work = _work(args, cfg, hosts)
    except (OpsError, ValueError) as error:
        print(f"djscale ops: {error}", file=sys.stderr)
        return 2
    try:
        with Session(hosts, key, connect_timeout=args.connect_timeout) as session:
            return work(session)
    except KeyboardInterrupt:
        return 130
    except (OpsError, ShipError) as error:  # ShipError: ssh-add refused the key
        print(f"djscale ops: {error}", file=sys.stderr)
        return 2
    except FileNotFoundError as error:
        print(f"djscale ops: {error.filename} not found: install openssh-client",
              file=sys.stderr)
        return 2


def _named(hosts: list[OpsHost], names: Sequence[str]) -> list[OpsHost]:
    by_name = {host.name: host for host in hosts}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise OpsError(f"no host {', '.join(unknown)} in the stack (hosts: "
                       f"{', '.join(by_name)})")
    return [by_name[name] for name in dict.fromkeys(names)]


def _say_unreached(results: Sequence[Result]) -> int:
    """Name every host that could not be asked; 1 when there was one."""
    failed = [result for result in results if not result.reached]
    for result in failed:
        print(f"djscale ops: {result.host.name} ({result.host.where}): {result.problem()}",
              file=sys.stderr)
    return 1 if failed else 0


def _work(args, cfg, hosts: list[OpsHost]):
    """The chosen command, checked before anything connects: a function of the session."""
    if args.command == "status":
        outputs, source = read_outputs(args.stack, args.project_dir, args.engine_state)

        def status(session: Session) -> int:
            results = session.run_all([(h, remote.status_command(h.role)) for h in hosts],
                                      args.timeout or 60)
            text, problems = render(cfg, results, outputs, source)
            print(text, end="")
            unreached = _say_unreached(results)
            return 1 if problems or unreached else 0
        return status

    if args.command == "logs":
        return _logs(args, hosts)

    if args.command == "exec":
        on_host, words = _command_words(args.command_words, args.on_host)
        (host,) = _named(hosts, [args.host])
        if on_host:
            return _attached(host, lambda tty: remote.host_command(words), args.timeout)
        return _one_off(cfg, host, words, args.timeout)

    if args.command == "manage":
        apps = [h for h in hosts if h.role == "app"]
        (host,) = _named(hosts, [args.host]) if args.host else apps[:1]
        _, words = _command_words(args.command_words, False)
        if not words:
            raise OpsError("manage needs a command (e.g. `manage shell`, "
                           "`manage changepassword admin`)")
        return _one_off(cfg, host, ["python", "manage.py", *words], args.timeout)
    raise OpsError(f"unknown command {args.command}")


def _command_words(words: Sequence[str], on_host: bool) -> tuple[bool, list[str]]:
    """(--on-host given, the command) from what follows HOST: argparse hands everything
    after it over as it is, so `--on-host` before `--` is read here."""
    words = list(words)
    if "--" in words:
        before, words = words[:words.index("--")], words[words.index("--") + 1:]
        unknown = [word for word in before if word != "--on-host"]
        if unknown:
            raise OpsError(f"unknown option {' '.join(unknown)} (the command goes after --)")
        on_host = on_host or "--on-host" in before
    return on_host, words


def _one_off(cfg, host: OpsHost, words: Sequence[str], timeout: Optional[float]):
    if host.role != "app":
        raise OpsError(f"{host.name} is not an app server: its commands run in app "
                       "containers (`exec --on-host` runs one on the host)")
    if not words:
        raise OpsError("no command to run (exec HOST -- COMMAND...)")
    spec = app_slots(cfg, host.config).container
    volumes = [f"{v.host_path}:{v.container_path}" + (":ro" if v.read_only else "")
               for v in spec.volumes]
    return _attached(host, lambda tty: remote.one_off_command(
        words, env_file=spec.env_file, volumes=volumes, tty=tty), timeout)


def _attached(host: OpsHost, remote_for, timeout: Optional[float]):
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    command = remote_for(tty)  # checked (a missing command fails) before connecting

    def attached(session: Session) -> int:
        result = session.attach(host, command, tty=tty, timeout=timeout)
        if not result.reached:
            _say_unreached([result])
            return 255 if result.returncode is not None else 1
        return result.returncode
    return attached


def _logs(args, hosts: list[OpsHost]):
    names = list(args.hosts)
    if not names:
        names = [h.name for h in hosts if h.role == "app"]
    names += [h.name for h in hosts if (h.role == "proxy" and args.proxy)
              or (h.role == "database" and args.db)]
    if args.db and not any(h.role == "database" for h in hosts):
        raise OpsError("--db: the stack uses another stack's database (database.stack)")
    chosen = _named(hosts, names)
    since = parse_duration(args.since) if args.since else None
    lines = args.lines if args.lines is not None else (None if since else 100)
    options = remote.LogOptions(follow=args.follow, since_seconds=since, lines=lines)
    command = {"app": remote.app_logs_command, "proxy": remote.proxy_logs_command,
               "database": remote.db_logs_command}
    jobs = [(host, command[host.role](options)) for host in chosen]

    def follow(session: Session) -> int:
        prefix, lock = prefixer(h.name for h in chosen), threading.Lock()

        def show(host: OpsHost, line: str) -> None:
            with lock:
                print(prefix(host.name) + line, flush=True)

        def ended(result: Result) -> None:  # said at once: the others may go on for long
            with lock:
                _notes([result])
                _say_unreached([result])
        results = session.stream(jobs, show, ended)
        return 1 if any(r.returncode != 0 for r in results) else 0

    def collect(session: Session) -> int:
        results = session.run_all(jobs, args.timeout or 60)
        for line in merge([(r.host.name, r.stdout.splitlines()) for r in results if r.reached]):
            print(line)
        _notes(results)
        unreached = _say_unreached(results)
        return 1 if unreached or any(r.returncode != 0 for r in results) else 0
    return follow if args.follow else collect


def _notes(results: Sequence[Result]) -> None:
    """What a reached host said on stderr (no container running, ...), prefixed by it."""
    for result in results:
        if result.reached and result.returncode != 0:
            for line in result.stderr.strip().splitlines()[-3:]:
                print(f"djscale ops: {result.host.name}: {line}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
