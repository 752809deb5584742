"""Inspect before deploy: write every file and script each host will receive.

    python -m components.render --stack dev --out out/dev
    python -m components.render --stack-file tests/fixtures/stack_two_apps.yaml --out DIR

Reads `Pulumi.<stack>.yaml` (never decrypting anything), validates it as `pulumi up` would
and writes each host's plan (components/plans/, the same plan the components deploy):
files at DIR/<host>/<path on the server>, the scripts remote steps run under
DIR/<host>/steps/NN-<step>.sh (NN: position in the plan) and what a step reads on stdin as
DIR/<host>/steps/NN-<step>.stdin, containers as DIR/<host>/docker/JSON, and a listing in
DIR/SUMMARY.txt. Secrets appear as placeholders
(`<secret:database password>`), so the output is safe to share and to diff between two
versions of a stack or of djscale. Nothing here imports pulumi.
Exits 2 with the config problems when the stack's config is invalid.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from components.config import ConfigError, parse_config, read_stack_file
from components.config.stack_file import assume_secrets
from components.plans import stack_plans
from components.plans.describe import host_files, inspect_values, summary

PROJECT_DIR = Path(__file__).resolve().parents[2]
MARKER = ".djscale-inspect"


def _prepare(out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).exists():
            raise SystemExit(f"{out} is not empty and not an earlier inspect output: "
                             "refusing to overwrite it")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by `python -m components.render`; replaced on re-run\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.render",
                                     description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--stack", help="stack name: reads Pulumi.<stack>.yaml")
    source.add_argument("--stack-file", type=Path, help="path of a Pulumi.<stack>.yaml")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR,
                        help="where Pulumi.<stack>.yaml lives (default: the djscale project)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    args = parser.parse_args(argv)

    stack_file = args.stack_file or args.project_dir / f"Pulumi.{args.stack}.yaml"
    if not stack_file.is_file():
        print(f"no stack file {stack_file}", file=sys.stderr)
        return 2
    raw, present = read_stack_file(stack_file)
    secrets, missing = assume_secrets(raw, present)
    try:
        cfg = parse_config(raw, secrets, check_files=False)
    except ConfigError as error:
        print(f"{stack_file}: {error}", file=sys.stderr)
        return 2
    for key in missing:
        print(f"note: secret {key} is not set in {stack_file.name}: rendered with a "
              f"placeholder; `pulumi up` refuses until it is set", file=sys.stderr)

    _prepare(args.out)
    plans = stack_plans(cfg)
    values = inspect_values(cfg)
    for plan in plans:
        for written in host_files(plan, values):
            target = args.out / plan.host / written.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(written.content)
            target.chmod(0o755 if written.executable else 0o644)
    listing = summary(plans)
    (args.out / "SUMMARY.txt").write_text(listing)
    print(f"stack {stack_file.name}: wrote {args.out}/")
    print(listing, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
