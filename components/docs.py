"""Generated documentation: README's tables and Pulumi.yaml's config block.

    python -m components.docs --write    # rewrite them from the code
    python -m components.docs --check    # exit 1 when one differs (a test runs this)

The configuration table and `Pulumi.yaml`'s config block come from the key declarations
(components/config/docs.py); the "What each server receives" table from the plans of the
`dev` stack (components/plans/describe.py). Nothing here imports pulumi.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from components.config import SECRET_KEYS, parse_config, read_stack_file
from components.config import docs as config_docs
from components.plans import stack_plans
from components.plans import describe

PROJECT_DIR = Path(__file__).resolve().parents[1]
EXAMPLE_STACK = "Pulumi.dev.yaml"  # whose plans the README table shows


def replace_between(text: str, begin: str, end: str, body: str) -> str:
    start, stop = text.index(begin), text.index(end)
    return text[:start] + begin + "\n" + body + text[stop:]


def generated(project_dir: Path) -> list[tuple[Path, str]]:
    """(file, what it must hold) for every generated file."""
    raw, _ = read_stack_file(project_dir / EXAMPLE_STACK)
    plans = stack_plans(parse_config(raw, SECRET_KEYS, check_files=False))
    readme, project = project_dir / "README.md", project_dir / "Pulumi.yaml"
    text = replace_between(readme.read_text(), config_docs.TABLE_BEGIN, config_docs.TABLE_END,
                           config_docs.readme_table())
    text = replace_between(text, describe.TABLE_BEGIN, describe.TABLE_END,
                           describe.readme_table(plans))
    return [(readme, text), (project, config_docs.replace_config_block(
        project.read_text(), config_docs.pulumi_config_block()))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.docs",
                                     description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite README.md and Pulumi.yaml")
    mode.add_argument("--check", action="store_true", help="exit 1 when one is out of date")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR)
    args = parser.parse_args(argv)
    stale = [(path, text) for path, text in generated(args.project_dir)
             if path.read_text() != text]
    for path, text in stale:
        if args.write:
            path.write_text(text)
        else:
            print(f"{path} is out of date: python -m components.docs --write", file=sys.stderr)
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
