"""Rollback in one step (issue 12, item 3): release A, release B, then `app.release:
previous` under GET and POST load: no request fails, nothing is uploaded or built, every app
server runs A's image again and serves A's pages, and the record of releases says so. A
pinned image no server holds fails at the first server's image step, naming it, with the
site untouched. Going back to `current` rebuilds nothing.

The bed is left on the project's own source with `app.release: current`, as later proofs
expect."""
from __future__ import annotations

import uuid

import pytest

from components.render.containers import RELEASES_FILE

from . import layout
from .bed import PROJECT_DIR, stack_values
from .deploy import deploy_bed, project_copy
from .load import Load, tally

pytestmark = pytest.mark.first_suite  # the hosts' release plays no part (conftest.py)


def _image(bed, role: str) -> str:
    return bed.sudo(role, f"docker inspect --format '{{{{.Image}}}}' "
                          f"{bed.app_container(role)}").stdout.strip()


def _created(bed, image: str) -> str:
    return bed.sudo(bed.apps[0], f"docker image inspect --format '{{{{.Created}}}}' {image}"
                    ).stdout.strip()


def _release(bed, release: str) -> dict:
    app = stack_values(bed.state)["app"]
    return {"app": {**app, "release": release}}


def _pages(bed, marker: str) -> set[int]:
    """How many times `marker` is on the list page, as each app server answers it."""
    return {bed.curl(f"https://{layout.DOMAIN}/mydb/?n={i}", "-f").stdout.count(marker)
            for i in range(2 * len(bed.apps))}


def _records(bed) -> list[list[str]]:
    text = bed.sudo(bed.apps[0], f"cat {RELEASES_FILE}").stdout
    return [line.split() for line in text.splitlines()]


@pytest.fixture(scope="module")
def releases(bed, deployed, tmp_path_factory):
    """Release A (the project's source), then release B (A plus a marker), deployed."""
    deploy_bed()  # A: whatever earlier proofs deployed, the project's own source again
    a = _image(bed, bed.apps[0])
    label = f"release B {uuid.uuid4().hex[:8]}"
    marker = f"<!-- {label} -->"
    project_b = project_copy(tmp_path_factory.mktemp("b"), "b", marker=label)
    deploy_bed(project_dir=project_b)
    b = _image(bed, bed.apps[0])
    assert a != b and {_image(bed, app) for app in bed.apps} == {b}
    assert _pages(bed, marker) == {1}
    return {"a": a, "b": b, "marker": marker, "project_b": project_b}


def test_a_pinned_image_no_server_holds_fails_at_the_first_server(bed, releases):
    before = {app: bed.app_container_ids(app) for app in bed.apps}
    missing = "sha256:" + "0" * 64
    with pytest.raises(Exception) as failure:
        deploy_bed(project_dir=releases["project_b"], changes=_release(bed, missing))
    message = str(failure.value)
    assert f"'{bed.apps[0]}-image'" in message, message[:3000]
    assert "no longer holds that image" in message, message[-3000:]
    assert releases["b"] in message  # the images it holds are listed: what may be pinned
    for app in bed.apps:
        assert bed.app_container_ids(app) == before[app], app
    assert _pages(bed, releases["marker"]) == {1}  # B still serves


def test_rollback_to_previous_under_load_fails_no_request_and_builds_nothing(bed, releases):
    a, b = releases["a"], releases["b"]
    created = _created(bed, a)
    load = Load(bed)
    try:
        outputs, actions = deploy_bed(project_dir=releases["project_b"], with_actions=True,
                                      changes=_release(bed, "previous"))
    finally:
        ok, failed = tally(load.stop())
    assert failed == 0 and ok > 20, (ok, failed, load.errors())

    kinds: dict[str, set[str]] = {}  # a replace is recorded as replace + delete
    for action in actions:
        kinds.setdefault(action.name, set()).add(action.kind)
    first = bed.apps[0]
    assert kinds[f"{first}-image"] & {"update", "replace"}, kinds  # names A: no build
    assert kinds.get(f"{first}-upload-context", {"delete"}) == {"delete"}, kinds  # no upload
    assert kinds[f"{first}-release"] & {"update", "replace"}, kinds  # migrate --check
    assert _created(bed, a) == created  # the same image, not rebuilt
    assert outputs["appImage"] == a
    assert {app: _image(bed, app) for app in bed.apps} == {app: a for app in bed.apps}
    for app in bed.apps:
        assert len(bed.app_container_ids(app)) == 1, f"{app}: the old slot was not retired"
    assert _pages(bed, releases["marker"]) == {0}  # every server answers with A's pages
    assert [words[1:] for words in _records(bed)[-3:]] == [
        [a, "current"], [b, "current"], [a, "previous"]]
    # B is still there: going forward again needs no build either
    bed.sudo(first, f"docker image inspect {b} >/dev/null")

    # a second deploy with `previous` names the same image: nothing changes
    again = deploy_bed(project_dir=releases["project_b"], with_actions=True,
                       changes=_release(bed, "previous"))[1]
    changed = [f"{x.kind} {x.name}" for x in again if x.kind != "same"]
    assert not changed, changed


def test_forward_again_by_image_id_then_current_without_a_build(bed, releases):
    a, b = releases["a"], releases["b"]
    created = _created(bed, b)
    deploy_bed(project_dir=releases["project_b"], changes=_release(bed, b))
    assert {_image(bed, app) for app in bed.apps} == {b} and _created(bed, b) == created
    assert _records(bed)[-1][1:] == [b, "pinned"]
    assert _pages(bed, releases["marker"]) == {1}

    # the bed back on the project's own source (A's tag exists: no build), as later
    # proofs expect
    created_a = _created(bed, a)
    outputs = deploy_bed(project_dir=PROJECT_DIR)
    assert outputs["appImage"] == a and _created(bed, a) == created_a
    assert {_image(bed, app) for app in bed.apps} == {a}
    assert _records(bed)[-1][1:] == [a, "current"]
