"""A release whose container never becomes healthy (issue 8, item 3): the deploy fails naming
the host and the step, the first app server is back on the previous release, the others are
untouched, the site keeps answering; the next release deploys with no manual step."""
from __future__ import annotations

import shutil
import time
import uuid

import pytest

from . import layout
from .bed import PROJECT_DIR
from .deploy import deploy_bed

pytestmark = pytest.mark.first_suite  # the hosts' release plays no part (conftest.py)

LOAD = r"""
ok=0; failed=0; n=0; end=$((SECONDS + {seconds}))
while [ $SECONDS -lt $end ] && [ ! -e /tmp/{marker}.stop ]; do
  n=$((n + 1))
  if [ $((n % 2)) = 0 ]; then  # a POST: nginx must never send it twice, so never retries it
    method=POST; want=403       # Django's CSRF refusal: the app itself answered
  else
    method=GET; want=200
  fi
  code=$(curl -s -o /dev/null -w '%{{http_code}}' --max-time 10 --cacert /tmp/pebble-root.pem \
         -X $method --resolve {domain}:443:{proxy} "https://{domain}/mydb/?{marker}=$n")
  if [ "$code" = $want ]; then ok=$((ok+1)); else failed=$((failed+1)); echo "$method got $code" >&2; fi
done
echo "ok=$ok failed=$failed" > /tmp/{marker}.result
"""


def _project_copy(tmp_path, name: str):
    project = tmp_path / name
    shutil.copytree(PROJECT_DIR, project, ignore=shutil.ignore_patterns(
        ".git", "__pycache__", ".pytest_cache", "tests", "out", ".testbed"))
    return project


class _Load:
    """GETs and POSTs in turn from the client (the internet) in the background, until
    stopped; a request fails when the app did not answer it (GET 200, POST 403 from
    Django's CSRF check: a POST that nginx answered 502 or sent twice would not)."""

    def __init__(self, bed, seconds: int = 900):
        self.bed, self.marker = bed, f"load-{uuid.uuid4().hex[:8]}"
        script = LOAD.format(seconds=seconds, marker=self.marker, domain=layout.DOMAIN,
                             proxy=layout.PROXY_ADDRESS)
        bed.run_in("client", f"nohup bash -c {_quote(script)} >/tmp/{self.marker}.log 2>&1 &")

    def stop(self) -> tuple[int, int]:
        self.bed.run_in("client", f"touch /tmp/{self.marker}.stop")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            out = self.bed.run_in("client", f"cat /tmp/{self.marker}.result 2>/dev/null",
                                  check=False).stdout
            if out.startswith("ok="):
                ok, failed = (int(part.split("=")[1]) for part in out.split())
                return ok, failed
            time.sleep(1)
        raise AssertionError("the load never finished")

    def errors(self) -> str:
        """What the failed requests got (method and status), last lines; and the app
        containers' last error lines (a 500's exception)."""
        text = self.bed.run_in("client", f"tail -n 20 /tmp/{self.marker}.log",
                               check=False).stdout
        for app in self.bed.apps:
            text += f"\n--- {app}:\n" + self.bed.sudo(app, (
                "for c in $(docker ps -aq --filter label=djscale.container=djscale-app); do "
                "docker logs --since 15m $c 2>&1 | grep -E -A3 'Error|Traceback|Exception' "
                "| tail -n 30; done"), check=False).stdout
        return text


def _quote(text: str) -> str:
    import shlex
    return shlex.quote(text)


def test_an_unhealthy_release_stops_at_the_first_server_and_the_next_one_needs_no_hand(
        bed, deployed, tmp_path):
    first, others = bed.apps[0], bed.apps[1:]
    before = {app: bed.app_container_ids(app) for app in bed.apps}

    broken = _project_copy(tmp_path, "broken")
    health = broken / "assets/app/djsite/health.py"
    health.write_text(health.read_text().replace(
        "def database_answers() -> bool:\n", "def database_answers() -> bool:\n    return False\n"))
    load = _Load(bed)
    try:
        with pytest.raises(Exception) as failure:
            deploy_bed(project_dir=broken)
    finally:
        ok, failed = load.stop()
    message = str(failure.value)
    assert f"'{first}-start'" in message, message[:3000]
    assert layout.app_address(1) in message, message[:3000]  # the host
    assert "did not become ready" in message, message[-3000:]
    assert "the running release keeps serving" in message, message[-3000:]
    assert failed == 0 and ok > 0, (ok, failed, load.errors())  # the running one kept serving

    # the first server kept its running container (the new slot's was removed); the
    # others were never touched
    for app in bed.apps:
        assert bed.app_container_ids(app) == before[app], app
    answered = {bed.curl(f"https://{layout.DOMAIN}/healthz", "-o", "/dev/null",
                         "-w", "%{http_code}").stdout for _ in range(10)}
    assert answered == {"200"}, answered

    fixed = _project_copy(tmp_path, "fixed")
    marker = uuid.uuid4().hex[:8]
    base = fixed / "assets/app/mydb/templates/mydb/base.html"
    base.write_text(base.read_text() + f"<!-- fixed {marker} -->\n")
    outputs, actions = deploy_bed(project_dir=fixed, with_actions=True)
    for app in bed.apps:
        assert bed.app_container_ids(app) != before[app], f"{app}: not on the fixed release"
        leftovers = bed.sudo(app, "docker ps -a --filter label=djscale.container=djscale-app "
                                  "--format '{{.Names}}'").stdout.split()
        assert leftovers == [bed.app_container(app)], (app, leftovers)
    page = bed.curl(f"https://{layout.DOMAIN}/mydb/", "-f").stdout
    assert f"<!-- fixed {marker} -->" in page
    assert others  # the proof needs a second server that kept serving
