#!/usr/bin/env python3
# managed by djscale, do not edit
"""djscale-upstream-watch: the proxy's active check of the app servers, in Python's standard
library only (installed verbatim as /usr/local/lib/djscale/djscale-upstream-watch by
components/render/upstream_watch.py, run by djscale-upstream-watch.service).

Why: nginx (open source) has no active health checks. With `max_fails=0` (djscale's default,
so that an overload never ejects healthy servers: nginx counts a read timeout from a busy
server as a failure) an app host that stops answering (packets dropped, not refused) costs
every request nginx picks it for `proxy_connect_timeout` before nginx tries the next server.
Requests do not fail, but the surviving servers' throughput drops by that wait.

What it does, every `--interval` seconds: reads the upstream servers of djscale's live
nginx.conf (`server ADDRESS:PORT ...;` inside `upstream djscale_app`; djscale-upstream-slots
routes each, probes included, to its live release slot) and opens a TCP connection to each,
with `--timeout`. A server that fails `--failures` probes in a row is *out*: an iptables
rule in the chain DJSCALE-UPSTREAM (jumped to first from OUTPUT) answers nginx's connections
to it with a TCP reset on the proxy itself, so nginx's connect fails at once and the
request, not yet sent, goes to the next server whatever its method: no wait. It is *in* again after `--recoveries` good probes in a row.
The probes carry a firewall mark (SO_MARK) the rule exempts, so the watcher keeps seeing
the real server.

What it never does:
  * take out a server that is busy: a probe is a TCP handshake, which the server's kernel
    completes from its listen backlog whatever gunicorn's workers are doing (nginx's own
    failure counting is what cannot tell the two apart);
  * take out every server: when all of them fail, no rule is left (nginx's own retries and
    timeouts apply, as without the watcher);
  * outlive itself: the chain is emptied and unhooked when the watcher stops (and when it
    starts), so a stopped watcher never leaves a server cut off.
Transitions are printed (the journal: `journalctl -u djscale-upstream-watch`), the current
state written to `--state` as JSON.
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

CHAIN = "DJSCALE-UPSTREAM"
MARK = 0x646A  # "dj": the probes' firewall mark, exempt from the chain's rules
SO_MARK = getattr(socket, "SO_MARK", 36)  # Linux; the constant is in Python 3.12+ only
STATE_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%z"  # the state's "checked" (ops status reads it)
_UPSTREAM = re.compile(r"^\s*upstream\s+djscale_app\s*\{(.*?)^\s*\}", re.M | re.S)
_SERVER = re.compile(r"^\s*server\s+(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})\b", re.M)

Server = tuple  # (address, port)


def upstream_servers(conf: str) -> list[Server]:
    """The app servers of djscale's nginx.conf, in its order ([] without the block)."""
    block = _UPSTREAM.search(conf)
    if block is None:
        return []
    return [(address, int(port)) for address, port in _SERVER.findall(block.group(1))]


class Tracker:
    """Which servers are out, from the probes' results (pure: no sockets, no clock)."""

    def __init__(self, failures: int, recoveries: int):
        self.failures, self.recoveries = failures, recoveries
        self.failed: dict[Server, int] = {}   # failed probes in a row
        self.passed: dict[Server, int] = {}   # good probes in a row
        self.out: set[Server] = set()         # failed `failures` in a row, not recovered

    def observe(self, results: dict[Server, bool]) -> set[Server]:
        """Record one round of probes (every server of the upstream); return the servers
        whose connections are to be refused: the ones out, unless that is all of them."""
        for server in list(self.failed):
            if server not in results:  # left the upstream (a release moved its port)
                self.failed.pop(server, None)
                self.passed.pop(server, None)
                self.out.discard(server)
        for server, ok in results.items():
            if ok:
                self.failed[server] = 0
                self.passed[server] = self.passed.get(server, 0) + 1
                if server in self.out and self.passed[server] >= self.recoveries:
                    self.out.discard(server)
            else:
                self.passed[server] = 0
                self.failed[server] = self.failed.get(server, 0) + 1
                if self.failed[server] >= self.failures:
                    self.out.add(server)
        if results and self.out >= set(results):
            return set()  # none answers: cutting them all off would only fail faster
        return set(self.out)


def probe_all(servers: list[Server], timeout: float, mark: int = MARK) -> dict[Server, bool]:
    """One TCP handshake to each server, all at once, each within `timeout` seconds."""
    results: dict[Server, bool] = {server: False for server in servers}
    selector = selectors.DefaultSelector()
    for server in servers:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_MARK, mark)
            sock.setblocking(False)
            code = sock.connect_ex(server)
        except OSError:
            sock.close()
            continue
        if code == 0:
            results[server] = True
            sock.close()
        elif code in (errno.EINPROGRESS, errno.EALREADY):
            selector.register(sock, selectors.EVENT_WRITE, server)
        else:
            sock.close()
    deadline = time.monotonic() + timeout
    while selector.get_map():
        left = deadline - time.monotonic()
        if left <= 0:
            break
        for key, _ in selector.select(left):
            sock = key.fileobj
            results[key.data] = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
            selector.unregister(sock)
            sock.close()
    for key in list(selector.get_map().values()):
        key.fileobj.close()
    selector.close()
    return results


def chain_rules(out: set[Server], mark: int = MARK) -> str:
    """iptables-restore input (--noflush) that makes the chain refuse exactly `out`."""
    lines = ["*filter", f":{CHAIN} - [0:0]"]  # declared: created, or emptied when it exists
    # Matched on the connection's original destination: djscale-upstream-slots' nat rule
    # (nat OUTPUT runs before filter OUTPUT) has already rewritten the port nginx asked for
    # into the live slot's. --ctdir ORIGINAL: the packets nginx sends, never replies.
    for address, port in sorted(out):
        lines.append(f"-A {CHAIN} -p tcp -m conntrack --ctorigdst {address}/32 "
                     f"--ctorigdstport {port} --ctdir ORIGINAL "
                     f"-m mark ! --mark {mark:#x} -j REJECT --reject-with tcp-reset")
    return "\n".join(lines + ["COMMIT", ""])


def _iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["iptables", "-w", *args], capture_output=True, text=True,
                          check=check)


def apply(out: set[Server], mark: int = MARK) -> None:
    """Make the chain refuse exactly `out`, in one iptables-restore; hooked first in
    OUTPUT while it refuses anything (ufw keeps its own chains and leaves this jump), and
    gone when it refuses nothing."""
    if not out:
        clear()
        return
    subprocess.run(["iptables-restore", "-w", "--noflush"], input=chain_rules(out, mark),
                   capture_output=True, text=True, check=True)
    if _iptables("-C", "OUTPUT", "-j", CHAIN, check=False).returncode != 0:
        _iptables("-I", "OUTPUT", "1", "-j", CHAIN)


def clear() -> None:
    """No rule left behind: the jump removed (every copy), the chain emptied and deleted."""
    while _iptables("-D", "OUTPUT", "-j", CHAIN, check=False).returncode == 0:
        pass
    _iptables("-F", CHAIN, check=False)
    _iptables("-X", CHAIN, check=False)


def _name(server: Server) -> str:
    return f"{server[0]}:{server[1]}"


def _write_state(path: Path, servers: list[Server], refused: set[Server]) -> None:
    state = {"checked": time.strftime(STATE_TIME_FORMAT),
             "servers": [_name(s) for s in servers],
             "out": sorted(_name(s) for s in refused)}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state) + "\n")
    os.replace(tmp, path)


def watch(args) -> None:
    tracker = Tracker(args.failures, args.recoveries)
    refused: set[Server] = set()
    conf_path, state_path = Path(args.conf), Path(args.state)
    state_path.parent.mkdir(parents=True, exist_ok=True)
    clear()
    while True:
        started = time.monotonic()
        try:
            servers = upstream_servers(conf_path.read_text())
        except OSError:  # before the first deploy's nginx.conf: nothing to watch yet
            servers = []
        now = tracker.observe(probe_all(servers, args.timeout))
        if now != refused or (now and _iptables("-C", "OUTPUT", "-j", CHAIN,
                                                check=False).returncode != 0):
            apply(now)
            for server in sorted(now - refused):
                print(f"{_name(server)} did not take a connection {args.failures} times in "
                      f"a row: nginx's connections to it are refused on the proxy until it "
                      f"answers again", flush=True)
            for server in sorted(refused - now):
                if server in servers:
                    print(f"{_name(server)} answers again: back in the upstream", flush=True)
            if tracker.out and not now:
                print("every app server fails its probe: none is cut off (nginx's own "
                      "retries apply)", flush=True)
            refused = now
        _write_state(state_path, servers, refused)
        time.sleep(max(0.0, args.interval - (time.monotonic() - started)))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="djscale-upstream-watch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conf", help="djscale's live nginx.conf")
    parser.add_argument("--state", help="JSON file of the current state")
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=0.5)
    parser.add_argument("--failures", type=int, default=2)
    parser.add_argument("--recoveries", type=int, default=2)
    parser.add_argument("--clear", action="store_true",
                        help="remove the chain and its jump, then exit")
    args = parser.parse_args(argv)
    if args.clear:
        clear()
        return 0
    if not args.conf or not args.state:
        parser.error("--conf and --state are required (or --clear)")

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        watch(args)
    finally:
        clear()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
