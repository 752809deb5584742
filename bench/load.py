"""Client load for the benchmarks: `workers` loops in the bed's client (the internet), each
sending GET and POST in turn to the site, a new TLS connection per request, every request
recorded (method, status, seconds, the wall-clock second it started). Needs the bed up and
deployed (`python -m tests.testbed up && python -m tests.testbed deploy`)."""
from __future__ import annotations

import shlex
import time
import uuid
from dataclasses import dataclass

from tests.testbed import layout

WORKER = r"""
n=0
while [ ! -e /tmp/{marker}.stop ]; do
  n=$((n + 1))
  if [ $((n % 2)) = 0 ]; then method=POST; want=403; else method=GET; want=200; fi
  started=$(date +%s.%N)
  out=$(curl -s -o /dev/null -w '%{{http_code}} %{{time_total}}' --max-time 15 \
        --cacert /tmp/pebble-root.pem -X $method \
        --resolve {domain}:443:{proxy} "https://{domain}/mydb/?{marker}={worker}-$n")
  set -- $out
  ok=0; [ "$1" = $want ] && ok=1
  echo "$method $1 $2 $started $ok" >> /tmp/{marker}-{worker}.log
done
"""


@dataclass(frozen=True)
class Request:
    method: str
    status: str
    seconds: float
    started: float
    ok: bool


class Load:
    def __init__(self, bed, workers: int = 4):
        self.bed, self.workers = bed, workers
        self.marker = f"bench-{uuid.uuid4().hex[:8]}"
        bed.fetch_pebble_root()
        for worker in range(workers):
            script = WORKER.format(marker=self.marker, worker=worker, domain=layout.DOMAIN,
                                   proxy=layout.PROXY_ADDRESS)
            bed.run_in("client", f"nohup bash -c {shlex.quote(script)} >/dev/null 2>&1 &")

    def stop(self) -> list[Request]:
        self.bed.run_in("client", f"touch /tmp/{self.marker}.stop")
        time.sleep(16)  # the last requests finish (curl --max-time 15)
        out = self.bed.run_in("client", f"cat /tmp/{self.marker}-*.log", check=False).stdout
        requests = []
        for line in out.splitlines():
            method, status, seconds, started, ok = line.split()
            requests.append(Request(method, status, float(seconds), float(started), ok == "1"))
        return sorted(requests, key=lambda r: r.started)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(label: str, requests: list[Request], seconds: float) -> dict:
    times = [r.seconds for r in requests]
    failed = [r for r in requests if not r.ok]
    row = {"label": label, "requests": len(requests), "failed": len(failed),
           "failed_post": sum(1 for r in failed if r.method == "POST"),
           "rps": len(requests) / seconds if seconds else float("nan"),
           "p50": percentile(times, 50), "p90": percentile(times, 90),
           "p99": percentile(times, 99), "max": max(times, default=float("nan")),
           "over_0.5s": sum(1 for t in times if t > 0.5)}
    return row


def print_rows(rows: list[dict]) -> None:
    print(f"{'phase':<22}{'requests':>9}{'failed':>7}{'POST':>5}{'req/s':>8}{'p50 s':>8}"
          f"{'p90 s':>8}{'p99 s':>8}{'max s':>8}{'>0.5s':>7}")
    for r in rows:
        print(f"{r['label']:<22}{r['requests']:>9}{r['failed']:>7}{r['failed_post']:>5}"
              f"{r['rps']:>8.1f}{r['p50']:>8.3f}{r['p90']:>8.3f}{r['p99']:>8.3f}"
              f"{r['max']:>8.3f}{r['over_0.5s']:>7}")
