"""An app host that stops answering (packets dropped, not refused):
`python -m bench.host_loss [--workers 4] [--seconds 30] [--host-checks on|off] [--max-fails N]`.

On the bed that is up and deployed: GETs and POSTs in turn from the client, first with every
app server answering, then while the first app server's host drops every packet from the
proxy (iptables raw PREROUTING in its network namespace: no RST, no ICMP, a host that is
gone), then after it answers again. Failures, the slowest request, p99, the requests over
0.5 s and the throughput while it is silent. The bound comes from `nginx.connectTimeout`
(nginx tries the next server for a request not yet sent, whatever its method) until the
proxy's upstream watcher (`nginx.hostChecks`) takes the host out; from then on nginx's
connections to it are refused on the proxy, at no wait. `--host-checks off` /
`--max-fails N` deploy that config first, and the bed's own after."""
from __future__ import annotations

import argparse
import sys
import time

from tests.testbed import layout
from tests.testbed.bed import stack_values
from tests.testbed.deploy import deploy_bed

from ._bed import the_bed
from .load import PHASES, UnderLoad, print_stats, under_load
from .report import Row, failed_by_method, markdown_table, ratio, seconds

RULE = f"-s {layout.PROXY_ADDRESS} -j DROP"


def measure(bed, workers: int = 4, silent: float = 30) -> UnderLoad:
    victim = bed.apps[0]

    def silence():
        bed.run_in(victim, f"iptables -t raw -I PREROUTING {RULE}")
        try:
            time.sleep(silent)
        finally:
            bed.run_in(victim, f"iptables -t raw -D PREROUTING {RULE}")

    return under_load(bed, silence, workers=workers, before=silent, after=silent)


def rows(run: UnderLoad, config: str = "") -> list[Row]:
    lost, before = run.phase("during"), run.phase("before")
    return [Row(f"silent host loss (app1 drops every packet from the proxy for "
                f"{run.event_seconds:.0f} s{config})",
                f"max {seconds(lost.max)}, p99 {seconds(lost.p99)} "
                f"({ratio(lost.p99, before.p99)} steady), {lost.over_half_second} over 0.5 s, "
                f"{ratio(lost.rps, before.rps)} of the throughput",
                lost.requests, failed_by_method(lost))]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.host_loss", description=__doc__)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--max-fails", type=int, default=None,
                        help="deploy with this nginx.maxFails first (and the bed's own "
                             "config again afterwards)")
    parser.add_argument("--host-checks", choices=("on", "off"), default=None,
                        help="deploy with nginx.hostChecks on or off first (and the bed's own "
                             "config again afterwards)")
    args = parser.parse_args(argv)
    bed = the_bed()
    nginx = dict(stack_values(bed.state).get("nginx", {}))
    config = []
    if args.max_fails is not None:
        nginx["maxFails"] = args.max_fails
        config.append(f"nginx.maxFails {args.max_fails}")
    if args.host_checks is not None:
        nginx["hostChecks"] = args.host_checks == "on"
        config.append(f"nginx.hostChecks {args.host_checks}")
    if config:
        deploy_bed(changes={"nginx": nginx})
    try:
        run = measure(bed, args.workers, args.seconds)
    finally:
        if config:
            deploy_bed()
    print_stats([(name, run.phase(name)) for name in PHASES])
    print(markdown_table(rows(run, "".join(f", {c}" for c in config))))
    lost = run.phase("during")
    return 1 if lost.failed or lost.over_half_second else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
