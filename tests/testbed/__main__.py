"""`python -m tests.testbed up|down|status|deploy|ssh` — the live test bed from a shell.

    up [--apps N] [--suite S]
                    bring the bed up (tears down a previous one first); hosts of Debian S:
                    bookworm (default, or DJSCALE_TESTBED_SUITE) or trixie
    deploy          run the real __main__.py against the bed (stand-in engine), print outputs
    status          what is running
    ssh ROLE [CMD]  a shell (or command) on db, app1.., proxy as the deploy user
    down            remove everything the bed made
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from . import bed, layout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.testbed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="bring the bed up")
    p_up.add_argument("--apps", type=int, default=2, help="number of app servers (default 2)")
    p_up.add_argument("--suite", choices=layout.SUITES, default=None,
                      help="Debian suite of the hosts (default: DJSCALE_TESTBED_SUITE, "
                      "else bookworm)")
    sub.add_parser("down", help="tear the bed down")
    sub.add_parser("status", help="show the bed")
    sub.add_parser("deploy", help="deploy the program onto the bed")
    p_ssh = sub.add_parser("ssh", help="SSH to a bed host as the deploy user")
    p_ssh.add_argument("role")
    p_ssh.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    if args.command == "up":
        state = bed.up(app_count=args.apps, suite=args.suite)
        print(json.dumps(bed.status(), indent=2))
        print(f"stack file: {bed.STACK_FILE}  (bed up in {state.up_seconds}s)")
    elif args.command == "down":
        bed.down()
    elif args.command == "status":
        print(json.dumps(bed.status(), indent=2))
    elif args.command == "deploy":
        from .deploy import deploy_bed

        outputs = deploy_bed()
        print(json.dumps({k: ("[secret]" if "password" in k.lower() else v)
                          for k, v in outputs.items()}, indent=2, default=str))
    elif args.command == "ssh":
        state = layout.BedState.load()
        if state is None:
            print("the bed is not up", file=sys.stderr)
            return 1
        roles = layout.host_roles(state.app_count)
        if args.role not in roles:
            print(f"unknown role {args.role!r}: one of {', '.join(roles)}", file=sys.stderr)
            return 1
        from .hosts import ssh_options

        argv = ["ssh", *ssh_options(), f"{layout.SSH_USER}@{roles[args.role]}", *args.cmd]
        os.execvp("ssh", argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
