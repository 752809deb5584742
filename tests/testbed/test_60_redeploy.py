"""Deploying again: a second `up` changes nothing that matters; every remote step run again
changes nothing either (the image shipped again is not sent: the server holds it); a new
release rolls out under GET and POST load with no failed request, built once, the same image
everywhere, the database's data kept."""
from __future__ import annotations

import json
import shlex
import subprocess
import uuid

import pytest

from . import layout
from .bed import PROJECT_DIR
from .deploy import ENGINE_STATE_DIR, deploy_bed, project_copy
from .load import Load, tally

SUPERUSERS = ("from django.contrib.auth import get_user_model; "
              "print(get_user_model().objects.filter(is_superuser=True).count())")


def _app_exec(bed, role: str, python: str) -> str:
    """Run Python in the running app container on `role` (manage.py shell, stdin)."""
    return bed.ssh(role, f"sudo docker exec -i {bed.app_container(role)} "
                         "python3 manage.py shell",
                   input_text=python).stdout.strip().splitlines()[-1]


def _snapshot(bed) -> dict[str, str]:
    """What a redeploy must not change, per host."""
    snap = {}
    for role in bed.roles:
        snap[f"{role} ufw"] = bed.sudo(role, "ufw status verbose; ufw show added").stdout
        snap[f"{role} iptables"] = bed.sudo(role, "iptables -S; iptables -t nat -S").stdout
        snap[f"{role} ufw files"] = bed.sudo(
            role, "cat /etc/ufw/user.rules /etc/ufw/after.rules /etc/default/ufw").stdout
        if role != "db":
            snap[f"{role} containers"] = " ".join(bed.app_container_ids(role))
    hba = bed.sudo("db", "cat \"$(sudo -u postgres psql -tAc 'show hba_file')\"").stdout
    snap["db pg_hba"] = hba
    snap["db roles"] = bed.sudo("db", "sudo -u postgres psql -tAc "
                                "'select rolname from pg_roles order by 1'").stdout
    snap["superusers"] = _app_exec(bed, bed.apps[0], SUPERUSERS)
    return snap


def _assert_no_duplicates(bed, snap: dict[str, str]) -> None:
    hba = [line.split() for line in snap["db pg_hba"].splitlines()
           if line.strip() and not line.lstrip().startswith("#")]
    assert len(hba) == len({tuple(words) for words in hba}), snap["db pg_hba"]
    for app in bed.apps:
        lines = [w for w in hba if f"{bed.address(app)}/32" in w]
        assert len(lines) == 1 and lines[0][-1] == "scram-sha-256", (app, lines)
    for role in bed.roles:
        added = [line for line in snap[f"{role} ufw"].splitlines() if line.startswith("ufw ")]
        assert len(added) == len(set(added)), (role, added)
        rules = [line for line in snap[f"{role} iptables"].splitlines() if line.startswith("-A")]
        assert len(rules) == len(set(rules)), (role, sorted(r for r in rules
                                                        if rules.count(r) > 1))
    assert snap["superusers"] == "1", snap["superusers"]


def _diff(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return [key for key in before if before[key] != after.get(key)]


@pytest.fixture(scope="module")
def first(bed, deployed):
    snap = _snapshot(bed)
    _assert_no_duplicates(bed, snap)
    return snap


def test_a_second_deployment_changes_nothing(bed, first):
    outputs, actions = deploy_bed(with_actions=True)
    changed = [f"{a.kind} {a.type} {a.name}" for a in actions if a.kind != "same"]
    assert not changed, changed
    after = _snapshot(bed)
    assert not _diff(first, after), {k: (first[k], after[k]) for k in _diff(first, after)}
    _assert_no_duplicates(bed, after)


def test_every_remote_step_run_again_changes_nothing(bed, first):
    """As if the engine's state were lost and every step ran again on configured servers:
    each `command:remote:Command` create script, in the original order, over SSH."""
    from . import engine
    commands = [r for r in engine.resources("testbed", ENGINE_STATE_DIR)  # in state order
                if r["type"] == "command:remote:Command" and r["inputs"].get("create")
                and not r.get("delete")]  # teardowns have nothing to create
    assert len(commands) > 10, [r["name"] for r in commands]
    by_address = {address: role for role, address in bed.roles.items()}
    for record in commands:
        inputs = record["inputs"]
        role = by_address[inputs["connection"]["host"]]
        proc = bed.ssh(role, inputs["create"], check=False, timeout=600,
                       input_text=inputs.get("stdin") or "")
        assert proc.returncode == 0, (f"{record['name']} on {role} failed again:\n"
                                      f"{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}")
    # the image shipped again to every other server: each already holds it, nothing sent
    ships = [r for r in engine.resources("testbed", ENGINE_STATE_DIR)
             if r["type"] == "command:local:Command" and not r.get("delete")]
    assert len(ships) == len(bed.apps) - 1, [r["name"] for r in ships]
    for record in ships:
        inputs = record["inputs"]
        proc = subprocess.run(shlex.split(inputs["create"]), input=inputs["stdin"],
                              capture_output=True, text=True, timeout=600, cwd=PROJECT_DIR)
        assert proc.returncode == 0, (record["name"], proc.stderr[-1500:])
        target = json.loads(inputs["stdin"])["target"]["host"]
        assert f"{target} already holds sha256:" in proc.stdout, (record["name"], proc.stdout)
    after = _snapshot(bed)
    assert not _diff(first, after), {k: (first[k], after[k]) for k in _diff(first, after)}
    _assert_no_duplicates(bed, after)


def _running_image(bed, role: str) -> str:
    return bed.sudo(role, f"docker inspect --format '{{{{.Image}}}}' "
                          f"{bed.app_container(role)}").stdout.strip()


def test_a_rollout_under_load_fails_no_request_and_keeps_the_data(bed, first, tmp_path):
    """Issue 10: a new release deployed while the client sends GETs and POSTs in turn: no
    request fails (no 502 for a POST, no POST sent twice), the image is built once (on the
    first server) and every server runs the same image id afterwards, the data is kept."""
    text = f"Rollout survivor {uuid.uuid4().hex[:8]}?"
    pk = _app_exec(bed, bed.apps[0], (
        "from django.utils import timezone; from mydb.models import Question; "
        f"print(Question.objects.create(question_text={text!r}, pub_date=timezone.now()).pk)"))
    assert pk.isdigit(), pk
    old_ids = {app: bed.app_container_ids(app) for app in bed.apps}
    old_image = _running_image(bed, bed.apps[0])
    # a new release: the same program, one template changed (the image's content hash too)
    release = uuid.uuid4().hex[:8]
    project = project_copy(tmp_path, marker=f"release {release}")
    load = Load(bed)
    try:
        outputs, actions = deploy_bed(project_dir=project, with_actions=True)
    finally:
        ok, failed = tally(load.stop())
    assert failed == 0 and ok > 20, (ok, failed, load.errors())

    ran = {a.name: a.type for a in actions if a.kind != "same"}  # triggers: a replace
    # the switch is the map of live slots; nginx.conf is the same, so nginx is not reloaded
    assert "proxy-upstream-slots" in ran and "proxy-nginx-tls-conf" not in ran, ran
    first_app = bed.apps[0]
    assert ran[f"{first_app}-image"] == "command:remote:Command"  # the one build
    for app in bed.apps[1:]:  # shipped, not built
        assert ran[f"{app}-image"] == "command:local:Command", ran
    images = {app: _running_image(bed, app) for app in bed.apps}
    assert len(set(images.values())) == 1 and old_image not in images.values(), images
    for app in bed.apps:
        assert bed.app_container_ids(app) != old_ids[app], f"{app}: container not replaced"
        assert len(bed.app_container_ids(app)) == 1, f"{app}: the old slot was not retired"
    page = bed.curl(f"https://{layout.DOMAIN}/mydb/{pk}/", "-f").stdout
    assert text in page.replace("&#x27;", "'"), page[:2000]
    assert f"<!-- release {release} -->" in page
    served = {bed.curl(f"https://{layout.DOMAIN}/mydb/?after={i}", "-f").stdout.count(
        f"<!-- release {release} -->") for i in range(2 * len(bed.apps))}
    assert served == {1}, served  # every server answers with the new release
    assert _app_exec(bed, bed.apps[-1], SUPERUSERS) == "1"
