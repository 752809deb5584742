"""Check the Django project a stack deploys against djscale's contract, building nothing:

    python -m components.check_app --stack dev
    python -m components.check_app --stack-file path/to/Pulumi.dev.yaml [--no-import]

Reads `Pulumi.<stack>.yaml` (never decrypting anything; no Pulumi needed) with the project's
defaults, as `pulumi up` would, and checks the project it deploys (components/check_app/):
one line per problem on stdout, each naming the file or config key and what to fix; what
could not be checked on stderr as `note:` lines. `pulumi preview` and `pulumi up` stop with
the same problems before creating anything. `--no-import`: read the settings' source only,
never import them. Exit status: 0 no problem, 1 problems, 2 no stack file or an invalid
config.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from components.check_app import app_source, check_stack_app
from components.config import ConfigError, parse_config, read_stack_file
from components.config.stack_file import assume_secrets
from components.config.schema import PROJECT_DIR


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.check_app",
                                     description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--stack", help="stack name: reads Pulumi.<stack>.yaml")
    source.add_argument("--stack-file", type=Path, help="path of a Pulumi.<stack>.yaml")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR,
                        help="where Pulumi.<stack>.yaml lives (default: the djscale project)")
    parser.add_argument("--no-import", action="store_true",
                        help="check the settings' source only; never import them")
    args = parser.parse_args(argv)

    stack_file = args.stack_file or args.project_dir / f"Pulumi.{args.stack}.yaml"
    if not stack_file.is_file():
        print(f"no stack file {stack_file}", file=sys.stderr)
        return 2
    raw, present = read_stack_file(stack_file)
    try:
        cfg = parse_config(raw, assume_secrets(raw, present)[0], check_files=False)
    except ConfigError as error:
        print(f"{stack_file}: {error}", file=sys.stderr)
        return 2
    report = check_stack_app(cfg, import_locally=not args.no_import)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    for problem in report.problems:
        print(problem)
    if report.problems:
        return 1
    print(f"{app_source(cfg)[1]}: keeps djscale's contract (manage.py, settings, WSGI app, "
          f"gunicorn's port {cfg.app.container_port}, environment, /healthz, migrations)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
