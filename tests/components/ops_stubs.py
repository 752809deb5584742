"""Stand-in commands for the hosts of tests/components/test_ops.py (tests/support/ssh_hosts.py).

Each host keeps its Docker state in /var/lib/stub/docker.json (its own /var/lib) and every
call is appended to /var/lib/stub/calls.log (argv as JSON), so a test reads what the CLI
made each host run. `sudo -n` runs the rest as the login user.
"""
from __future__ import annotations

import json
import shutil

SUDO = """#!/bin/bash
if [ "$1" = -n ]; then shift; fi
exec "$@"
"""

SYSTEMCTL = """#!/bin/bash
if [ "$1" = is-active ]; then
    echo active
    exit 0
fi
exit 1
"""

# a Python the login user may run (the test's own may live under /root)
STUB_PYTHON = "/usr/bin/python3" if shutil.which("/usr/bin/python3") else "/usr/bin/env python3"
DOCKER = f"""#!{STUB_PYTHON}
import json, sys, time

STATE, CALLS = "/var/lib/stub/docker.json", "/var/lib/stub/calls.log"
args = sys.argv[1:]
with open(CALLS, "a") as log:
    log.write(json.dumps(args) + "\\n")
state = json.load(open(STATE))
if state.get("hang"):
    time.sleep(3600)
containers, images = state.get("containers", []), state.get("images", [])


def find(ref):
    return next((c for c in containers if ref in (c["id"], c["name"])), None)


def option(name, default=None):
    return args[args.index(name) + 1] if name in args else default


if args[:2] == ["container", "ls"]:
    wanted = option("--filter", "").rsplit("=", 1)[-1]
    for c in containers:
        if c.get("label") == wanted and ("--all" in args or c["state"] == "running"):
            print(c["id"])
elif args[:2] == ["container", "inspect"]:
    fmt, refs = args[3], args[4:]
    missing = False
    for ref in refs:
        c = find(ref)
        if c is None:
            missing = True
            print("")
            continue
        if fmt == "{{{{.Image}}}}":
            print(c["image"])
        else:
            print("/" + c["name"], c["image"], c["state"], c.get("health", "none"), c["started"])
    if missing:
        print("Error: No such container", file=sys.stderr)
        sys.exit(1)
elif args[:2] == ["image", "ls"]:
    for image in images:
        print(image["id"], image["tag"], "2026-11-10 10:00:00 +0000 UTC")
elif args[0] == "logs":
    c = find(args[-1])
    lines = c.get("logs", [])
    if "--tail" in args:
        lines = lines[-int(option("--tail")):] if int(option("--tail")) else []
    for line in lines:
        stamp, _, text = line.partition(" ")
        print(line if "--timestamps" in args else text, flush=True)
    if "--follow" in args:
        for line in c.get("later", []):
            time.sleep(0.3)
            print(line, flush=True)
        time.sleep(3600)
elif args[0] == "run":
    image_at = next(i for i, a in enumerate(args[1:], 1) if a.startswith("sha256:"))
    options, command = args[1:image_at], args[image_at + 1:]
    stdin = sys.stdin.read() if "--interactive" in options and not sys.stdin.isatty() else ""
    print(json.dumps({{"image": args[image_at], "options": options, "command": command,
                      "stdin": stdin, "tty": sys.stdout.isatty()}}))
    sys.exit(int(command[-1]) if command and command[0] == "exit-with" else 0)
else:
    print(f"stub docker: unexpected {{args}}", file=sys.stderr)
    sys.exit(2)
"""

STUBS = {"sudo": SUDO, "systemctl": SYSTEMCTL, "docker": DOCKER}


def write_state(root, state: dict) -> None:
    stub = root / "var/lib/stub"
    stub.mkdir(parents=True, exist_ok=True)
    (stub / "docker.json").write_text(json.dumps(state))
    (stub / "calls.log").touch()


def docker_calls(root) -> list[list[str]]:
    path = root / "var/lib/stub/calls.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
