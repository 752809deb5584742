"""The record of releases and a pinned release (components/render/releases.py): the image
step of a rollback (exact text, shellcheck, runs against a stand-in `docker` and a record
file), the same `previous` rule in Python, and the retire step appending to the record."""
from __future__ import annotations

import json
import sys
from dataclasses import replace

import pytest

from components.render.containers import render_retire_slot_script
from components.render.releases import (ReleaseRecord, parse_records, previous_release,
                                        release_origin, render_resolve_release_script)
from tests.render.conftest import assert_golden, check_shell, make_config
from tests.render.stubs import calls, make_stubs, run_sandboxed

A, B, C = ("sha256:" + c * 64 for c in "abc")

FAKE_DOCKER = r'''
import json, sys
images = json.load(open(sys.argv[1]))  # id -> tag
args = sys.argv[2:]
if args[:2] == ["image", "inspect"]:
    assert args[2:4] == ["--format", "{{.Id}}"], args
    ref = args[4]
    found = [i for i, tag in images.items() if ref in (i, tag)]
    if not found:
        sys.exit(f"Error: No such image: {ref}")
    print(found[0])
elif args[:2] == ["image", "ls"]:
    assert args[2:] == ["--no-trunc", "--format", "{{.ID}} {{.Tag}} {{.CreatedAt}}",
                        "djscale-app"], args
    for image, tag in images.items():
        print(image, tag.split(":")[1], "2026-11-10 10:00:00 +0000 UTC")
else:
    sys.exit(f"fake docker: unexpected {args}")
'''


@pytest.fixture
def resolve(tmp_path):
    """run(release, records text or None, images held) -> (result, docker calls)."""
    fake = tmp_path / "fake_docker.py"
    fake.write_text(FAKE_DOCKER)
    held = tmp_path / "images.json"
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    make_stubs(bin_dir, {"docker": f'exec {sys.executable} {fake} {held} "$@"'})
    record = tmp_path / "releases"

    def run(release, records, images=(A, B, C)):
        held.write_text(json.dumps({image: f"djscale-app:{image[7:11]}" for image in images}))
        record.unlink(missing_ok=True)
        if records is not None:
            record.write_text(records)
        log.unlink(missing_ok=True)
        script = render_resolve_release_script(release, releases_file=str(record))
        return run_sandboxed(script, bin_dir, log), calls(log)
    return run


def _records(*lines: tuple[str, str]) -> str:
    return "".join(f"2026-11-1{i}T10:00:00Z {image} {origin}\n"
                   for i, (image, origin) in enumerate(lines))


def test_resolve_script_text(tmp_path):
    script = render_resolve_release_script("previous")
    assert_golden("resolve-release-previous.sh", script)
    check_shell(script, tmp_path)
    assert "docker build" not in script  # the mocks tell a build from a resolve by this
    assert "(not built)" in script
    pinned = render_resolve_release_script(A)
    assert f"release={A}\n" in pinned and "releases_file=/var/lib/djscale/releases\n" in pinned
    with pytest.raises(ValueError):
        render_resolve_release_script("current")
    assert "release='x; rm -rf /'\n" in render_resolve_release_script("x; rm -rf /")


@pytest.mark.parametrize("lines, expected", [
    ([(A, "current"), (B, "current")], A),
    # the rollback's own line (and a later restart of the same image) changes nothing
    ([(A, "current"), (B, "current"), (A, "previous")], A),
    ([(A, "current"), (B, "current"), (B, "current"), (A, "previous"), (A, "previous")], A),
    # a new build after the rollback: what ran before it was A, not B
    ([(A, "current"), (B, "current"), (A, "previous"), (C, "current")], A),
    ([(A, "current"), (B, "pinned"), (C, "current")], B),
])
def test_previous_is_what_ran_before_the_newest_build(resolve, lines, expected):
    assert previous_release(parse_records(_records(*lines))) == expected
    result, log = resolve("previous", _records(*lines))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{expected}\n"  # the id is the only output
    assert f"djscale: release previous is {expected} (not built)" in result.stderr
    assert not [line for line in log if "build" in line]


@pytest.mark.parametrize("records, why", [
    (None, "no release is recorded"),
    ("", "no release is recorded"),
    (_records((A, "current")), "records no release before the newest one built"),
    (_records((A, "pinned"), (A, "current"), (A, "current")),
     "records no release before the newest one built"),
    (_records((A, "previous"), (B, "pinned")), "records no release before the newest one built"),
])
def test_previous_without_a_release_before_is_refused_with_the_images_held(resolve, records,
                                                                          why):
    assert previous_release(parse_records(records or "")) is None
    result, _ = resolve("previous", records)
    assert result.returncode == 1 and result.stdout == ""
    assert why in result.stderr, result.stderr
    assert "pin an image id instead" in result.stderr
    assert f"{A} aaaa 2026-11-10" in result.stderr  # what the operator may pin


def test_a_pruned_image_is_refused_by_name(resolve):
    result, _ = resolve("previous", _records((A, "current"), (B, "current")), images=(B,))
    assert result.returncode == 1 and result.stdout == ""
    assert f"app.release is previous ({A}) but" in result.stderr
    assert "no longer holds that image" in result.stderr
    result, _ = resolve(C, None, images=(A, B))
    assert result.returncode == 1 and f"app.release is {C} ({C}) but" in result.stderr


def test_an_image_id_pin_needs_no_record(resolve):
    result, log = resolve(B, None)
    assert (result.returncode, result.stdout) == (0, f"{B}\n"), result.stderr
    assert log == [f"docker image inspect --format {{{{.Id}}}} {B}"] * 2


def test_record_lines_and_origins():
    assert parse_records(f"2026-11-10T10:00:00Z {A} current\n\nbroken line\n") == [
        ReleaseRecord("2026-11-10T10:00:00Z", A, "current")]
    assert [release_origin(r) for r in ("current", "previous", A)] == [
        "current", "previous", "pinned"]


def test_the_retire_step_records_the_release_it_switched_to(tmp_path):
    from components.plans.app_server import app_slots
    cfg = make_config()
    slots = app_slots(cfg, cfg.app_servers[0])
    record = tmp_path / "releases"
    slots = replace(slots, state_file=str(tmp_path / "app-slot"), releases_file=str(record))
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    # the active slot's container runs B; no old container is left to retire
    make_stubs(bin_dir, {"docker": (
        f'if [ "$1 $2 $3 $4" = "container inspect --format {{{{.Image}}}}" ]; then '
        f'echo {B}; exit 0; fi; exit 1')})
    record.write_text(f"2026-11-10T10:00:00Z {A} current\n")
    for origin in ("previous", "pinned"):
        script = render_retire_slot_script(slots, slots.ports[1], origin)
        result = run_sandboxed(script, bin_dir, log)
        assert result.returncode == 0, result.stderr
    lines = record.read_text().splitlines()
    assert lines[0] == f"2026-11-10T10:00:00Z {A} current"
    assert [line.split()[1:] for line in lines[1:]] == [[B, "previous"], [B, "pinned"]]
    assert all(len(line.split()[0]) == 20 and line.split()[0].endswith("Z") for line in lines)
    assert (tmp_path / "app-slot").read_text() == "b\n"
    assert "docker container inspect --format {{.Image}} djscale-app-b" in calls(log)
    with pytest.raises(ValueError, match="release origin"):
        render_retire_slot_script(slots, slots.ports[1], "rollback")
