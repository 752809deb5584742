"""An app host that stops answering (packets dropped, not refused):
`python -m bench.host_loss [--workers 4] [--seconds 30]`.

On the bed that is up and deployed: GETs and POSTs in turn from the client, first with every
app server answering, then while the first app server's host drops every packet from the
proxy (iptables raw PREROUTING in its network namespace: no RST, no ICMP, a host that is
gone), then after it answers again. Prints failures, throughput, latency percentiles and the
requests slower than 0.5 s per phase, and the ratios of the loss phase to the baseline. The
bound comes from `nginx.connectTimeout` (nginx tries the next server for a request not yet
sent, whatever its method) until the proxy's upstream watcher (`nginx.hostChecks`) takes the
host out; from then on nginx's connections to it are refused on the proxy, at no wait.
`--host-checks off` / `--max-fails N` deploy that config first, and the bed's own after."""
from __future__ import annotations

import argparse
import sys
import time

from tests.testbed import layout
from tests.testbed.bed import stack_values
from tests.testbed.deploy import deploy_bed

from ._bed import the_bed
from .load import Load, print_rows, summary

RULE = f"-s {layout.PROXY_ADDRESS} -j DROP"


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
    if args.max_fails is None and args.host_checks is None:
        return measure(bed, args)
    nginx = dict(stack_values(bed.state).get("nginx", {}))
    if args.max_fails is not None:
        nginx["maxFails"] = args.max_fails
    if args.host_checks is not None:
        nginx["hostChecks"] = args.host_checks == "on"
    deploy_bed(changes={"nginx": nginx})
    try:
        return measure(bed, args)
    finally:
        deploy_bed()


def measure(bed, args) -> int:
    victim = bed.apps[0]
    load = Load(bed, args.workers)
    t0 = time.time()
    time.sleep(args.seconds)
    bed.run_in(victim, f"iptables -t raw -I PREROUTING {RULE}")
    t1 = time.time()
    try:
        time.sleep(args.seconds)
    finally:
        bed.run_in(victim, f"iptables -t raw -D PREROUTING {RULE}")
    t2 = time.time()
    time.sleep(args.seconds)
    t3 = time.time()
    requests = load.stop()
    phases = [("all answering", t0, t1), (f"{victim} silent", t1, t2), ("back", t2, t3)]
    rows = [summary(label, [r for r in requests if a <= r.started < b], b - a)
            for label, a, b in phases]
    max_fails = "the bed's" if args.max_fails is None else args.max_fails
    checks = "the bed's" if args.host_checks is None else args.host_checks
    print(f"{len(bed.apps)} app servers, {args.workers} client workers, nginx.maxFails "
          f"{max_fails}, nginx.hostChecks {checks}, {victim} drops packets from the proxy "
          f"for {t2 - t1:.0f}s")
    print_rows(rows)
    before, lost = rows[0], rows[1]
    print(f"silent/before: throughput {lost['rps'] / before['rps']:.2f}, "
          f"p50 {lost['p50'] / before['p50']:.2f}, p99 {lost['p99'] / before['p99']:.2f}")
    slow = lost["over_0.5s"]
    failed = sum(r["failed"] for r in rows)
    print(f"failed requests: {failed}; slower than 0.5 s while {victim} was silent: {slow}")
    return 1 if failed or slow else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
