"""A release whose container never becomes healthy (issue 8, item 3): the deploy fails naming
the host and the step, the first app server is back on the previous release, the others are
untouched, the site keeps answering; the next release deploys with no manual step."""
from __future__ import annotations

import uuid

import pytest

from . import layout
from .deploy import deploy_bed, project_copy
from .load import Load, tally

pytestmark = pytest.mark.first_suite  # the hosts' release plays no part (conftest.py)


def test_an_unhealthy_release_stops_at_the_first_server_and_the_next_one_needs_no_hand(
        bed, deployed, tmp_path):
    first, others = bed.apps[0], bed.apps[1:]
    before = {app: bed.app_container_ids(app) for app in bed.apps}

    broken = project_copy(tmp_path, "broken")
    health = broken / "assets/app/djsite/health.py"
    health.write_text(health.read_text().replace(
        "def database_answers() -> bool:\n", "def database_answers() -> bool:\n    return False\n"))
    load = Load(bed)
    try:
        with pytest.raises(Exception) as failure:
            deploy_bed(project_dir=broken)
    finally:
        ok, failed = tally(load.stop())
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

    marker = uuid.uuid4().hex[:8]
    fixed = project_copy(tmp_path, "fixed", marker=f"fixed {marker}")
    outputs, actions = deploy_bed(project_dir=fixed, with_actions=True)
    for app in bed.apps:
        assert bed.app_container_ids(app) != before[app], f"{app}: not on the fixed release"
        leftovers = bed.sudo(app, "docker ps -a --filter label=djscale.container=djscale-app "
                                  "--format '{{.Names}}'").stdout.split()
        assert leftovers == [bed.app_container(app)], (app, leftovers)
    page = bed.curl(f"https://{layout.DOMAIN}/mydb/", "-f").stdout
    assert f"<!-- fixed {marker} -->" in page
    assert others  # the proof needs a second server that kept serving
