"""An app host rebooted under load: `python -m bench.reboot [--workers 4] [--seconds 30]`.

On the bed that is up and deployed: GETs and POSTs in turn from the client; after `--seconds`
of steady state the first app server's host is shut down cleanly and started again (a bed
host is a container whose PID 1 is systemd: `docker stop` sends it SIGRTMIN+3, systemd
stops every unit, the nested Docker engine and its containers among them; `docker start`
boots it again, with a new network namespace, so every iptables rule is loaded again by
ufw and Docker at boot). Nothing of djscale runs in between: whatever comes back, comes
back by itself (docker.service enabled, the app container's restart policy, ufw enabled).

Measured from the power-on: systemd up, the app container healthy, a request through the
proxy served by it again (a marked request counted in its log); the requests that failed
meanwhile; and the host firewall compared with what it was before the reboot: ufw active
with the same rules, the same DOCKER-USER chain, FORWARD jumping to it first, and from
real sockets the app ports closed to the client and the database host, open to the proxy.
"""
from __future__ import annotations

import argparse
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Optional

from tests.testbed import layout
from tests.testbed.hosts import reboot_host, wait_until
from tests.testbed.probes import PEBBLE_ROOT

from ._bed import the_bed
from .load import PHASES, UnderLoad, print_stats, under_load
from .report import Row, failed_by_method, markdown_table, seconds

APP_PORTS = (layout.APP_PORT, layout.APP_PORT + 1)  # the two slots' host ports
FIREWALL = {
    "ufw status": "ufw status verbose",
    "ufw.service": "systemctl is-enabled ufw; systemctl is-active ufw",
    "DOCKER-USER": "iptables -S DOCKER-USER",
    "FORWARD's first rule": "iptables -S FORWARD | grep -m1 '^-A'",
}


def firewall_state(bed, role: str) -> dict[str, str]:
    return {what: bed.run_in(role, command, check=False).stdout.strip()
            for what, command in FIREWALL.items()}


def reachability(bed, role: str) -> dict[str, bool]:
    """Each cell that must hold for `role`'s app ports -> whether it does."""
    address, active = bed.address(role), bed.slot_port(role)
    cells = {f"client -> {role}:{port} closed": ("client", port, False) for port in APP_PORTS}
    cells.update({f"db -> {role}:{port} closed": ("db", port, False) for port in APP_PORTS})
    cells[f"proxy -> {role}:{active} open"] = ("proxy", active, True)
    return {label: bed.tcp_open(src, address, port) == expected
            for label, (src, port, expected) in cells.items()}


def firewall_differences(before: dict[str, str], after: dict[str, str],
                         cells: dict[str, bool]) -> list[str]:
    """What is not as it was (state) or not as it must be (reachability), in words."""
    wrong = [f"{what} changed" for what in before if before[what] != after.get(what)]
    if not after.get("ufw status", "").startswith("Status: active"):
        wrong.insert(0, "ufw is not active")
    return wrong + [f"not so: {cell}" for cell, holds in cells.items() if not holds]


@dataclass
class Reboot:
    role: str
    drain: float = 0                      # seconds new connections were refused before
    shutdown: float = float("nan")        # seconds `docker stop` took (a clean shutdown)
    booted: Optional[float] = None        # seconds from power-on; None: not within the bound
    healthy: Optional[float] = None
    served: Optional[float] = None
    firewall: list[str] = field(default_factory=list)  # differences; empty: intact
    before: dict = field(default_factory=dict)
    after: dict = field(default_factory=dict)


def _since(started: float, what: str, probe, bound: float) -> Optional[float]:
    try:
        wait_until(what, probe, bound, interval=0.5)
    except TimeoutError:
        return None
    return time.time() - started


def refuse_new_connections(bed, role: str) -> None:
    """`--drain`: new connections to the app's ports answered with a reset S seconds before
    the shutdown, by hand (what djscale-app-drain.service now does itself at the shutdown;
    kept to compare): nginx then tries the next server whatever the method."""
    for port in APP_PORTS:
        bed.run_in(role, f"iptables -I DOCKER-USER -p tcp -m conntrack --ctstate NEW "
                   f"--ctorigdstport {port} --ctdir ORIGINAL -j REJECT --reject-with tcp-reset")


def reboot(bed, role: str, bound: float = 300, drain: float = 0) -> Reboot:
    result = Reboot(role, drain=drain)
    container = bed.app_container(role)
    if drain:  # the rules go with the network namespace at the reboot
        refuse_new_connections(bed, role)
        time.sleep(drain)
    result.shutdown, power_on = reboot_host(bed.engine, role)

    def system_up():
        state = bed.run_in(role, "systemctl is-system-running", check=False,
                           timeout=15).stdout.strip()
        return state in ("running", "degraded")

    def healthy():
        return bed.run_in(role, f"docker inspect -f '{{{{.State.Health.Status}}}}' "
                          f"{container}", check=False, timeout=15).stdout.strip() == "healthy"

    def served():
        marker = f"reboot-{uuid.uuid4().hex[:8]}"
        bed.run_in("client", (
            f"for i in $(seq {3 * len(bed.apps)}); do curl -s -o /dev/null --max-time 5 "
            f"--cacert {PEBBLE_ROOT} --resolve {layout.DOMAIN}:443:{layout.PROXY_ADDRESS} "
            f"\"https://{layout.DOMAIN}/mydb/?{marker}=$i\"; done"), check=False, timeout=60)
        count = bed.run_in(role, f"docker logs {container} 2>&1 | grep -c {marker}",
                           check=False, timeout=30).stdout.strip()
        return count.isdigit() and int(count) > 0

    result.booted = _since(power_on, f"{role}: systemd up", system_up, bound)
    if result.booted is not None:
        result.healthy = _since(power_on, f"{role}: {container} healthy", healthy, bound)
    if result.healthy is not None:
        result.served = _since(power_on, f"{role}: served through the proxy", served, bound)
    return result


def measure(bed, workers: int = 4, steady: float = 30, after: float = 10, drain: float = 0
            ) -> tuple[UnderLoad, Reboot]:
    role = bed.apps[0]
    before = firewall_state(bed, role)
    result: list[Reboot] = []
    run = under_load(bed, lambda: result.append(reboot(bed, role, drain=drain)),
                     workers=workers,
                     before=steady, after=after)
    (outcome,) = result
    outcome.before, outcome.after = before, firewall_state(bed, role)
    cells = reachability(bed, role) if outcome.served is not None else {}
    outcome.firewall = firewall_differences(before, outcome.after, cells)
    return run, outcome


def _when(value: Optional[float], bound: str = "not within 300 s") -> str:
    return seconds(value) if value is not None else bound


def rows(run: UnderLoad, outcome: Reboot) -> list[Row]:
    during = run.phase("during")
    if outcome.served is None:
        intact = "not checked: the app did not come back"
    elif outcome.firewall:
        intact = "NO: " + "; ".join(outcome.firewall)
    else:
        intact = ("yes (ufw active, same rules and DOCKER-USER chain; app ports closed to "
                  "the client and the database host, open to the proxy)")
    drained = (f"new connections refused {outcome.drain:.0f} s before, "
               if outcome.drain else "")
    return [Row(f"app host reboot ({outcome.role}: {drained}clean shutdown "
                f"{seconds(outcome.shutdown)}, then power-on)",
                f"systemd up {_when(outcome.booted)}, app container healthy "
                f"{_when(outcome.healthy)}, served through the proxy {_when(outcome.served)} "
                f"after power-on; firewall intact: {intact}",
                during.requests, failed_by_method(during))]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reboot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--drain", type=float, default=0,
                        help="refuse new connections to the app's ports this many seconds "
                             "before the shutdown (an experiment: djscale does not)")
    args = parser.parse_args(argv)
    run, outcome = measure(the_bed(), args.workers, args.seconds, drain=args.drain)
    print_stats([(name, run.phase(name)) for name in PHASES])
    for what in FIREWALL:
        if outcome.before.get(what) != outcome.after.get(what):
            print(f"--- {what} before:\n{outcome.before.get(what)}\n--- after:\n"
                  f"{outcome.after.get(what)}")
    print(markdown_table(rows(run, outcome)))
    return 0 if outcome.served is not None and not outcome.firewall else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
