"""Client load on the bed: GETs and POSTs in turn from the `client` container (the internet)
to the site, in the background. The proofs that no request fails under a release, a
rollback, a scale-in or a lost host use it, and so do the benchmarks (bench/).

Each of `workers` loops sends a GET (it wants 200) then a POST (it wants 403: Django's CSRF
refusal, so the app itself answered; a POST that nginx answered 502, or sent twice, would
not), each over a new TLS connection, and records every request: method, status, seconds,
the wall-clock time it started (the client shares the machine's clock), ok or not.

Bounded in time and in count, and aimed at the bed alone: a worker stops at the stop file,
after `seconds`, or after its share of `max_requests`, whichever comes first; curl gives a
request `max_time` seconds; the domain resolves to the bed's proxy (`--resolve`), so no
request leaves the bed's network.
"""
from __future__ import annotations

import math
import shlex
import time
import uuid
from dataclasses import dataclass

from . import layout
from .probes import PEBBLE_ROOT

WORKER = r"""
n=0; end=$((SECONDS + {seconds}))
while [ ! -e /tmp/{marker}.stop ] && [ $SECONDS -lt $end ] && [ $n -lt {max_requests} ]; do
  n=$((n + 1))
  if [ $((n % 2)) = 0 ]; then method=POST; want=403; else method=GET; want=200; fi
  started=$(date +%s.%N)
  out=$(curl -s -o /dev/null -w '%{{http_code}} %{{time_total}}' --max-time {max_time} \
        --cacert {pebble_root} -X $method {http_flag} \
        --resolve {domain}:443:{proxy} "https://{domain}/mydb/?{marker}={worker}-$n")
  curl_exit=$?
  set -- $out
  ok=0; [ "$1" = $want ] && ok=1
  echo "$method $1 $2 $started $ok $curl_exit" >> /tmp/{marker}-{worker}.log
done
touch /tmp/{marker}-{worker}.done
"""


@dataclass(frozen=True)
class Request:
    method: str
    status: str     # "000" when curl got no HTTP answer (refused, reset, timed out)
    seconds: float
    started: float  # epoch seconds
    ok: bool
    curl_exit: int = 0  # curl's exit status: why there was no answer (7 refused, 28 timed out...)

    @property
    def ended(self) -> float:
        return self.started + self.seconds


def parse_log(text: str) -> list[Request]:
    """The workers' log lines (`method status seconds started ok curl-exit`), in start
    order."""
    requests = []
    for line in text.splitlines():
        if not line.strip():
            continue
        method, status, seconds, started, ok, curl_exit = line.split()
        requests.append(Request(method, status, float(seconds), float(started), ok == "1",
                                int(curl_exit)))
    return sorted(requests, key=lambda r: r.started)


def tally(requests: list[Request]) -> tuple[int, int]:
    """(answered as wanted, failed)."""
    failed = sum(1 for r in requests if not r.ok)
    return len(requests) - failed, failed


class Load:
    """Started at construction, until `stop()` (or its bounds)."""

    def __init__(self, bed, workers: int = 4, seconds: int = 900,
                 max_requests: int = 100_000, max_time: int = 15, http1: bool = False):
        """`http1`: the workers speak HTTP/1.1 instead of HTTP/2 (what curl and nginx
        agree on otherwise), for a proof that reloads nginx on purpose: README,
        Benchmarks, "An nginx reload drops new HTTP/2 connections now and then"."""
        self.bed, self.workers, self.max_time = bed, workers, max_time
        self.marker = f"load-{uuid.uuid4().hex[:8]}"
        self.requests: list[Request] = []
        bed.fetch_pebble_root()
        share = math.ceil(max_requests / workers)
        for worker in range(workers):
            script = WORKER.format(marker=self.marker, worker=worker, seconds=int(seconds),
                                   max_requests=share, max_time=int(max_time),
                                   pebble_root=PEBBLE_ROOT, domain=layout.DOMAIN,
                                   proxy=layout.PROXY_ADDRESS,
                                   http_flag="--http1.1" if http1 else "")
            bed.run_in("client", f"nohup bash -c {shlex.quote(script)} >/dev/null 2>&1 &")

    def stop(self) -> list[Request]:
        """Stop the workers, wait for their last requests (each within `max_time`), and
        return every request, in start order."""
        self.bed.run_in("client", f"touch /tmp/{self.marker}.stop")
        done = f"ls /tmp/{self.marker}-*.done 2>/dev/null | wc -l"
        deadline = time.monotonic() + self.max_time + 15
        while time.monotonic() < deadline:
            if int(self.bed.run_in("client", done).stdout.strip() or 0) >= self.workers:
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"the load's workers did not stop within {self.max_time + 15}s")
        out = self.bed.run_in("client", f"cat /tmp/{self.marker}-*.log 2>/dev/null",
                              check=False).stdout
        self.requests = parse_log(out)
        return self.requests

    def errors(self) -> str:
        """The failed requests (method, status, seconds), the last ones; and the app
        containers' last error lines (a 500's exception)."""
        failed = [r for r in self.requests if not r.ok]
        text = "\n".join(f"{r.method} got {r.status} (curl exit {r.curl_exit}) after "
                         f"{r.seconds:.3f}s" for r in failed[-20:])
        for app in self.bed.apps:
            text += f"\n--- {app}:\n" + self.bed.sudo(app, (
                "for c in $(docker ps -aq --filter label=djscale.container=djscale-app); do "
                "docker logs --since 15m $c 2>&1 | grep -E -A3 'Error|Traceback|Exception' "
                "| tail -n 30; done"), check=False).stdout
        return text
