"""Every benchmark, one table: `python -m bench [--fresh-bed] [--rows ROW,...] [--seconds S]`.

Rows (in the table's order): steady (steady state), rollout (a release under load),
host-loss (an app host silent), pg-restart (PostgreSQL restarted under load), reboot (an
app host rebooted), mocks (the program under the mock runtime for N = 1, 2, 10, 50, 100),
deploys (wall time: fresh, code change, no-op). All but `mocks` run on the bed: the one
that is up (deployed by this command if it is not yet, which is then the fresh deploy), or,
with `--fresh-bed`, one brought up for the run (`--apps`, `--suite`) and torn down after it
(unless `--keep`). Only one bed may exist on a machine: `--fresh-bed` replaces the one up.

Prints the table in markdown, with the machine it ran on, to paste into the README (and to
`--out`). Every load is bounded in time and count and goes to the bed's proxy only
(tests/testbed/load.py). Exit status 1 when a row could not be measured."""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import traceback
from pathlib import Path

from tests.testbed import bed as testbed
from tests.testbed import layout

from . import deploys, host_loss, mocks, pg_restart, reboot, rollout, steady
from ._bed import the_bed
from .report import Row, machine_line, markdown_table

ROWS = ("steady", "rollout", "host-loss", "pg-restart", "reboot", "mocks", "deploys")
BED_ROWS = tuple(r for r in ROWS if r != "mocks")


def _rows(text: str) -> list[str]:
    rows = [r.strip() for r in text.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown rows {unknown}: choose from {list(ROWS)}")
    return rows


def _lines(path: str) -> list[str]:
    return [line for line in Path(path).read_text().splitlines() if ":" in line]


def _machine(bed=None, workers: int = 0, phase: float = 0) -> str:
    meminfo = dict(line.split(":", 1) for line in _lines("/proc/meminfo"))
    cpu = next((line.split(":", 1)[1].strip() for line in _lines("/proc/cpuinfo")
                if line.startswith("model name")), platform.machine())
    kw = {}
    if bed is not None:
        version = bed.run_in("db", "cat /etc/debian_version", check=False).stdout.strip()
        kw = dict(suite=bed.state.suite, debian_version=version, apps=len(bed.apps))
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if bed is not None:
        when += f"; {workers} client workers, {phase:.0f} s phases"
    return machine_line(cores=os.cpu_count() or 0, cpu=cpu,
                        mem_bytes=int(meminfo["MemTotal"].split()[0]) * 1024,
                        kernel=platform.release(),
                        load=" ".join(Path("/proc/loadavg").read_text().split()[:3]),
                        when=when, **kw)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=_rows, default=list(ROWS),
                        help=f"comma-separated, from {','.join(ROWS)} (default: all)")
    parser.add_argument("--seconds", type=float, default=30,
                        help="length of each load phase (steady state, before and after an "
                             "event, a host's silence); default 30")
    parser.add_argument("--workers", type=int, default=4, help="client workers (default 4)")
    parser.add_argument("--fresh-bed", action="store_true",
                        help="bring a bed up first (replacing any), tear it down at the end")
    parser.add_argument("--apps", type=int, default=3, help="app servers of a fresh bed")
    parser.add_argument("--suite", choices=layout.SUITES, default=None,
                        help="Debian suite of a fresh bed's hosts")
    parser.add_argument("--keep", action="store_true", help="keep the fresh bed at the end")
    parser.add_argument("--out", help="also write the table (markdown) to this file")
    args = parser.parse_args(argv)
    selected = [r for r in ROWS if r in args.rows]
    on_bed = any(r in BED_ROWS for r in selected)
    if on_bed and not args.fresh_bed and layout.BedState.load() is None:
        parser.error("no bed is up: --fresh-bed, or `python -m tests.testbed up --apps 3` "
                     "first (or --rows mocks)")

    measured: dict[str, list[Row]] = {}
    errors = 0

    def run(name: str, measure) -> None:
        nonlocal errors
        print(f"[bench {time.strftime('%H:%M:%S')}] {name}", flush=True)
        try:
            measured.setdefault(name, []).extend(measure())
        except Exception as exc:  # noqa: BLE001  (one row fails, the others are measured)
            errors += 1
            traceback.print_exc()
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            measured.setdefault(name, []).append(Row(name, f"not measured: {first[:300]}"))

    bed, machine = None, "" if on_bed else _machine()  # with the bed: once it is up
    try:
        if on_bed and args.fresh_bed:
            testbed.up(app_count=args.apps, suite=args.suite)
        if on_bed:
            bed = the_bed()
            machine = _machine(bed, args.workers, args.seconds)
            if not deploys.deployed():  # every bed row needs a deployed bed: the fresh deploy
                run("deploys", lambda: deploys.rows([deploys.fresh()]))
        s, w = args.seconds, args.workers
        bed_rows = {
            "steady": lambda: steady.rows(steady.measure(bed, w, s)),
            "rollout": lambda: rollout.rows(rollout.measure(bed, w, s)),
            "host-loss": lambda: host_loss.rows(host_loss.measure(bed, w, s)),
            "pg-restart": lambda: pg_restart.rows(pg_restart.measure(bed, w, s)),
            "reboot": lambda: reboot.rows(*reboot.measure(bed, w, s)),
            "deploys": lambda: deploys.rows(deploys.changes()),
        }
        for name in selected:
            if name in bed_rows:
                run(name, bed_rows[name])
    finally:
        if on_bed and args.fresh_bed and not args.keep:
            testbed.down()
    if "mocks" in selected:
        run("mocks", lambda: mocks.rows(mocks.measure()))

    text = (machine or _machine()) + "\n\n" + markdown_table(
        [row for name in ROWS for row in measured.get(name, [])])
    print("\n" + text)
    if args.out:
        with open(args.out, "w") as out:
            out.write(text)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
