#!/usr/bin/env python3
# managed by djscale, do not edit
"""djscale-upstream-slots: routes nginx's connections to each app server's live release slot,
on the proxy, without reloading nginx (installed verbatim as
/usr/local/lib/djscale/djscale-upstream-slots by components/render/upstream_slots.py; run by
the deploy's switch step and, at boot, by djscale-upstream-slots.service before Docker
starts nginx).

Why: each app server runs its release in one of two slots, host ports `app.port` (a) and
`app.port + 1` (b); a release starts in the idle slot, and the switch must send new requests
to it. Rewriting nginx's upstream means `nginx -s reload`, and a reload costs requests: the
old workers close the client connections they hold that have not sent a request yet, so an
HTTP/2 connection a client has just opened (its first request on the wire) gets GOAWAY and a
close (curl: exit 16; measured: about one request per ten reloads under load). nginx.conf
lists every server on `app.port` once and for all; this program's iptables chain,
DJSCALE-SLOTS in the nat table (jumped to first from OUTPUT), rewrites the destination of
each new connection nginx opens to ADDRESS:app.port into ADDRESS:SLOT. NAT is decided on a
connection's first packet and kept by conntrack for the rest, so a switch changes only the
connections opened after it: requests in flight, and any connection already open, finish on
the old slot, which the app server then drains and stops. nginx is never signalled.

The map (`--map`, /etc/djscale/upstream-slots), one line per app server, `#` comments:
    ADDRESS PORT SLOT_PORT
`apply` replaces the chain's rules in one iptables-restore (one transaction: a connection
sees the old map or the new, never none) and hooks the chain first in nat OUTPUT; `check`
validates a map without touching iptables; `show` prints the rules in force.
"""
from __future__ import annotations

import argparse
import ipaddress
import re
import subprocess
import sys
from pathlib import Path

CHAIN = "DJSCALE-SLOTS"

Route = tuple  # (address, port, slot port)


class MapError(ValueError):
    pass


def _port(text: str, what: str, number: int) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise MapError(f"line {number}: {what} {text!r} is not a port (1-65535)")
    return int(text)


def parse_map(text: str) -> list[Route]:
    """The routes of a map, in its order; MapError naming the line of the first bad one."""
    routes: list[Route] = []
    seen: set[tuple[str, int]] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 3:
            raise MapError(f"line {number}: want ADDRESS PORT SLOT_PORT, got {raw.strip()!r}")
        try:
            address = str(ipaddress.IPv4Address(fields[0]))
        except ValueError:
            raise MapError(f"line {number}: {fields[0]!r} is not an IPv4 address") from None
        port = _port(fields[1], "port", number)
        slot = _port(fields[2], "slot port", number)
        if (address, port) in seen:
            raise MapError(f"line {number}: {address}:{port} is routed twice")
        seen.add((address, port))
        routes.append((address, port, slot))
    return routes


def chain_rules(routes: list[Route]) -> str:
    """iptables-restore input (--noflush) that makes the chain route exactly `routes`."""
    lines = ["*nat", f":{CHAIN} - [0:0]"]  # declared: created, or emptied when it exists
    for address, port, slot in routes:
        lines.append(f"-A {CHAIN} -d {address}/32 -p tcp -m tcp --dport {port} "
                     f"-j DNAT --to-destination {address}:{slot}")
    return "\n".join(lines + ["COMMIT", ""])


_RULE = re.compile(rf"^-A {CHAIN} -d ([\d.]+)/32 -p tcp -m tcp --dport (\d+) -j DNAT "
                   r"--to-destination [\d.]+:(\d+)$", re.M)


def routes_in_force(rules: str) -> list[Route]:
    """The routes of the chain's rules as `iptables -t nat -S DJSCALE-SLOTS` prints them
    (what chain_rules wrote), in their order."""
    return [(address, int(port), int(slot)) for address, port, slot in _RULE.findall(rules)]


def _iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["iptables", "-w", "-t", "nat", *args], capture_output=True,
                          text=True, check=check)


def apply(routes: list[Route]) -> None:
    """The chain routes exactly `routes`, hooked first in nat OUTPUT (nginx runs on the
    host's network: its connections are the proxy's own). Docker appends its own jump to
    nat OUTPUT and ufw touches only the filter table: neither removes this one."""
    subprocess.run(["iptables-restore", "-w", "--noflush"], input=chain_rules(routes),
                   capture_output=True, text=True, check=True)
    if _iptables("-C", "OUTPUT", "-j", CHAIN, check=False).returncode != 0:
        _iptables("-I", "OUTPUT", "1", "-j", CHAIN)


def show() -> str:
    return _iptables("-S", CHAIN).stdout


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="djscale-upstream-slots", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("apply", "check", "show"))
    parser.add_argument("--map", help="the map file (apply, check)")
    args = parser.parse_args(argv)
    if args.action == "show":
        sys.stdout.write(show())
        return 0
    if not args.map:
        parser.error(f"{args.action} needs --map")
    try:
        routes = parse_map(Path(args.map).read_text())
    except (OSError, MapError) as err:
        print(f"djscale-upstream-slots: {args.map}: {err}", file=sys.stderr)
        return 1
    if args.action == "apply":
        try:
            apply(routes)
        except subprocess.CalledProcessError as err:
            print(f"djscale-upstream-slots: {' '.join(err.cmd)} failed: "
                  f"{(err.stderr or '').strip()}", file=sys.stderr)
            return 1
        for address, port, slot in routes:
            print(f"{address}:{port} -> {address}:{slot}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
