"""What a Dockerfile says about the container it makes: the final stage's command, working
directory, environment and exposed ports; and how gunicorn is started in it (its bind
addresses, its config file, the WSGI app it serves).

Read as Docker reads it, as far as these questions go: line continuations, comments, heredoc
bodies skipped, exec and shell forms, `$VAR`/`${VAR}`/`${VAR:-default}` from the stage's ARG
and ENV. A stage without CMD or ENTRYPOINT takes them from the stage it is built FROM.
"""
from __future__ import annotations

import json
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from typing import Callable, Optional

_HEREDOC = re.compile(r"<<-?[\"']?([A-Za-z_][A-Za-z0-9_]*)[\"']?")
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


@dataclass
class Stage:
    base: str
    name: Optional[str] = None
    workdir: str = "/"
    variables: dict[str, str] = field(default_factory=dict)  # ARG defaults and ENV
    env: dict[str, str] = field(default_factory=dict)  # ENV only: what the container gets
    cmd: Optional[list[str]] = None
    entrypoint: Optional[list[str]] = None
    expose: list[str] = field(default_factory=list)


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuations joined, comments and heredocs dropped."""
    result: list[tuple[str, str]] = []
    lines = iter(text.splitlines())
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        while stripped.endswith("\\"):
            stripped = stripped[:-1].rstrip()
            more = next(lines, None)
            while more is not None and more.strip().startswith("#"):
                more = next(lines, None)
            if more is None:
                break
            stripped += " " + more.strip()
        keyword, _, arguments = stripped.partition(" ")
        for delimiter in _HEREDOC.findall(arguments):
            for body in lines:
                if body.strip() == delimiter:
                    break
        result.append((keyword.upper(), arguments.strip()))
    return result


def substitute(value: str, variables: dict[str, str]) -> str:
    def one(match: re.Match) -> str:
        name = match.group(1) or match.group(3)
        if name in variables:
            return variables[name]
        return match.group(2) or ""
    return _VARIABLE.sub(one, value)


def _command(arguments: str) -> list[str]:
    """Exec form (a JSON array) or shell form (`/bin/sh -c`, which expands variables when
    the container starts)."""
    if arguments.startswith("["):
        try:
            value = json.loads(arguments)
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return value
        except ValueError:
            pass
    return ["/bin/sh", "-c", arguments]


def _key_values(arguments: str, variables: dict[str, str]) -> dict[str, str]:
    """`ENV a=1 b="two"` or the old `ENV a 1`."""
    try:
        words = shlex.split(arguments)
    except ValueError:
        return {}
    if words and "=" not in words[0]:
        return {words[0]: substitute(" ".join(words[1:]), variables)}
    return {key: substitute(value, variables)
            for key, _, value in (word.partition("=") for word in words)}


def parse_dockerfile(text: str) -> list[Stage]:
    stages: list[Stage] = []
    global_args: dict[str, str] = {}
    for keyword, arguments in _instructions(text):
        if keyword == "FROM":
            words = arguments.split()
            words = [w for w in words if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append(Stage(base=words[0] if words else "", name=name,
                                variables=dict(global_args)))
            continue
        if keyword == "ARG":
            target = stages[-1].variables if stages else global_args
            for key, value in _key_values(arguments, target).items():
                if value or key not in target:  # `ARG NAME` alone keeps a global default
                    target[key] = value
            continue
        if not stages:
            continue
        stage = stages[-1]
        if keyword == "ENV":
            values = _key_values(arguments, stage.variables)
            stage.variables.update(values)
            stage.env.update(values)
        elif keyword == "WORKDIR":
            path = substitute(arguments, stage.variables)
            stage.workdir = posixpath.normpath(posixpath.join(stage.workdir, path))
        elif keyword == "CMD":
            stage.cmd = _command(arguments)
        elif keyword == "ENTRYPOINT":
            stage.entrypoint = _command(arguments)
        elif keyword == "EXPOSE":
            stage.expose += substitute(arguments, stage.variables).split()
    return stages


@dataclass(frozen=True)
class Container:
    """The final stage: what the container runs and with what."""

    argv: Optional[list[str]]  # ENTRYPOINT + CMD; None: none set (the base image's)
    workdir: str
    env: dict[str, str]
    expose: tuple[int, ...]


def final_container(stages: list[Stage]) -> Optional[Container]:
    if not stages:
        return None
    by_name = {stage.name: stage for stage in stages if stage.name}
    chain: list[Stage] = []
    stage: Optional[Stage] = stages[-1]
    while stage is not None and all(stage is not seen for seen in chain):
        chain.append(stage)
        stage = by_name.get(stage.base)
    entrypoint = next((s.entrypoint for s in chain if s.entrypoint is not None), None)
    cmd = next((s.cmd for s in chain if s.cmd is not None), None)
    if entrypoint and entrypoint[:2] == ["/bin/sh", "-c"]:
        argv = entrypoint  # a shell-form ENTRYPOINT ignores CMD
    elif entrypoint is not None or cmd is not None:
        argv = [*(entrypoint or []), *(cmd or [])]
    else:
        argv = None
    env: dict[str, str] = {}
    for each in reversed(chain):
        env.update(each.env)
    ports = []
    for each in chain:
        for port in each.expose:
            number = port.split("/")[0]
            if number.isdigit():
                ports.append(int(number))
    return Container(argv, stages[-1].workdir, env, tuple(sorted(set(ports))))


# --------------------------------------------------------------------------- gunicorn

# gunicorn's options that take no value (gunicorn/config.py: store_true/store_const)
GUNICORN_FLAGS = frozenset({
    "--reload", "--spew", "--check-config", "--print-config", "--preload", "--no-sendfile",
    "--reuse-port", "-D", "--daemon", "--initgroups", "--disable-redirect-access-to-syslog",
    "--capture-output", "--log-syslog", "-R", "--enable-stdio-inheritance",
    "--enable-backlog-metric", "--suppress-ragged-eofs", "--do-handshake-on-connect",
    "--permit-obsolete-folding", "--strip-header-spaces", "--permit-unconventional-http-method",
    "--permit-unconventional-http-version", "--casefold-http-method", "--no-control-socket",
    "-h", "--help", "-v", "--version"})
_SHELL_SEPARATORS = {"&&", "||", ";", "|", "&"}


@dataclass(frozen=True)
class Gunicorn:
    binds: tuple[str, ...]  # from -b/--bind, in order
    config: Optional[str]  # -c/--config
    app: Optional[str]  # the WSGI app argument (module:callable)


def parse_gunicorn_args(args: list[str]) -> Gunicorn:
    binds, config, positional = [], None, []
    words = iter(args)
    for word in words:
        if word in _SHELL_SEPARATORS:
            break
        option, equals, value = word.partition("=")
        if word.startswith("-") and word not in GUNICORN_FLAGS and not equals:
            value = next(words, "")
        if option in ("-b", "--bind"):
            binds.append(value)
        elif option in ("-c", "--config"):
            config = value
        elif not word.startswith(("-", "$")):  # "$@" of a script: whatever it was given
            positional.append(word)
    return Gunicorn(tuple(binds), config, positional[-1] if positional else None)


def find_gunicorn(argv: list[str], read_script: Callable[[str], Optional[str]],
                  env: dict[str, str], _depth: int = 0) -> Optional[list[str]]:
    """gunicorn's own arguments in a container command: `gunicorn ...`, `python -m
    gunicorn ...`, inside `sh -c "..."`, or on a line of a script the command runs (read by
    `read_script(path)` from the project, None when it is not the project's); a shell's
    `$VAR` taken from the container's `env`."""
    if _depth > 3 or not argv:
        return None

    def shell_words(text: str) -> Optional[list[str]]:
        try:
            return [substitute(word, env) for word in shlex.split(text, comments=True)]
        except ValueError:
            return None

    if posixpath.basename(argv[0]) in ("sh", "bash", "dash") and "-c" in argv[1:]:
        position = argv.index("-c")
        words = shell_words(argv[position + 1]) if position + 1 < len(argv) else None
        return find_gunicorn(words, read_script, env, _depth + 1) if words else None
    for index, word in enumerate(argv):
        if posixpath.basename(word) == "gunicorn":
            return argv[index + 1:]
        if posixpath.basename(word).startswith("python") and \
                argv[index + 1:index + 3] == ["-m", "gunicorn"]:
            return argv[index + 3:]
    for line in (read_script(argv[0]) or "").splitlines():
        words = shell_words(line) if "gunicorn" in line else None
        found = find_gunicorn(words, read_script, env, _depth + 1) if words else None
        if found is not None:
            return found
    return None


def parse_bind(value: str) -> Optional[tuple[str, int]]:
    """(host, port) of a TCP bind (`0.0.0.0:8000`, `:8000`, `[::]:8000`, `host`: port 8000);
    None for unix: and fd:// binds."""
    if value.startswith(("unix:", "fd://")):
        return None
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest.lstrip(":")
    elif value.count(":") == 1:
        host, port = value.split(":")
    else:
        host, port = value, ""
    if not port:
        return host, 8000
    return (host, int(port)) if port.isdigit() else None


def reachable_host(host: str) -> bool:
    """A bind Docker's published port can reach: every interface of the container."""
    return host in ("", "0.0.0.0", "::", "*")
