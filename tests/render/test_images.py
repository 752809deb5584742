"""The old-app-images step: exact text, shellcheck, and runs against a stand-in `docker`.

The stand-in keeps a small image/container table in a JSON file and answers the few
commands the script uses the way the Docker CLI does (`image rm` refuses an image a
container uses, as dockerd does without -f), so each run shows what is left afterwards.
"""
from __future__ import annotations

import json
import sys

import pytest

from components.render.images import render_prune_app_images_script
from tests.render.conftest import assert_golden, check_shell
from tests.render.stubs import calls, make_stubs, run_sandboxed

FAKE_DOCKER = r'''
import json, sys

state_path = sys.argv[1]
args = sys.argv[2:]
state = json.load(open(state_path))
images, containers = state["images"], state["containers"]


def find(ref):
    for image in images:
        if ref == image["id"] or ref in image["tags"]:
            return image
    sys.exit(f"Error: No such image: {ref}")


def option(name):
    return args[args.index(name) + 1]


if args[:2] == ["image", "inspect"]:
    field = {"{{.Id}}": "id", "{{.Created}}": "created"}[option("--format")]
    print(find(args[-1])[field])
elif args[:2] == ["container", "ls"]:
    assert {"--all", "--quiet", "--no-trunc"} <= set(args), args
    for container in containers:
        print(container["id"])
elif args[:2] == ["container", "inspect"]:
    assert option("--format") == "{{.Image}}", args
    for cid in args[4:]:
        print(next(c["image"] for c in containers if c["id"] == cid))
elif args[:2] == ["image", "ls"]:
    assert "--no-trunc" in args and option("--format") == "{{.ID}} {{.Repository}}:{{.Tag}}"
    repository = args[-1]
    for image in images:
        for tag in image["tags"]:
            if tag.split(":")[0] == repository:
                print(image["id"], tag)
elif args[:2] == ["image", "rm"] and len(args) == 3:
    image = find(args[2])
    if args[2] in state.get("rm_fails", ()):
        sys.exit(f"Error response from daemon: cannot remove {args[2]}: device busy")
    if any(c["image"] == image["id"] for c in containers):
        sys.exit(f"Error: conflict: unable to remove {args[2]} (a container uses it)")
    if args[2] in image["tags"]:
        image["tags"].remove(args[2])
    if not image["tags"] or args[2] == image["id"]:
        images.remove(image)
    json.dump(state, open(state_path, "w"))
else:
    sys.exit(f"fake docker: unexpected command {args}")
'''


def _id(n: int) -> str:
    return "sha256:" + f"{n:x}" * 64


def _image(n: int, *tags: str) -> dict:
    return {"id": _id(n), "tags": list(tags or [f"djscale-app:hash{n}"]),
            "created": f"2026-11-{10 + n:02d}T10:00:00.{n}12345678Z"}


@pytest.fixture
def docker(tmp_path):
    """run(state, current ref, keep_previous) -> (result, images left, docker calls)."""
    fake = tmp_path / "fake_docker.py"
    fake.write_text(FAKE_DOCKER)
    state_path = tmp_path / "state.json"
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    make_stubs(bin_dir, {"docker": f'exec {sys.executable} {fake} {state_path} "$@"'})

    record = tmp_path / "releases"

    def run(images, containers=(), current=None, keep_previous=1, rm_fails=(), records=None):
        state_path.write_text(json.dumps({"images": images, "containers": list(containers),
                                          "rm_fails": list(rm_fails)}))
        log.unlink(missing_ok=True)
        record.unlink(missing_ok=True)
        if records is not None:  # the record of releases: (image number, origin), oldest first
            record.write_text("".join(f"2026-11-20T10:00:0{i}Z {_id(n)} {origin}\n"
                                      for i, (n, origin) in enumerate(records)))
        script = render_prune_app_images_script(current or images[-1]["id"], keep_previous,
                                                releases_file=str(record))
        result = run_sandboxed(script, bin_dir, log)
        left = {image["id"]: image["tags"] for image in json.loads(state_path.read_text())["images"]}
        return result, left, calls(log)
    return run


def test_prune_script_text(tmp_path):
    script = render_prune_app_images_script("sha256:abc")
    assert_golden("prune-app-images.sh", script)
    check_shell(script, tmp_path)
    assert '    docker image rm "$ref"\n' in script  # never forced (-f)


def test_prune_script_quotes_its_values():
    script = render_prune_app_images_script("img; rm -rf /", keep_previous=2,
                                            repository="my app")
    assert "--format '{{.Id}}' 'img; rm -rf /')" in script
    assert "repository='my app'\nkeep_previous=2\n" in script


@pytest.mark.parametrize("bad", [-1, True, "1"])
def test_prune_script_rejects_a_bad_keep_count(bad):
    with pytest.raises(ValueError):
        render_prune_app_images_script("sha256:abc", keep_previous=bad)


def test_keeps_current_and_newest_previous_and_removes_older(docker):
    # Listed out of age order: the script sorts by creation time, not by listing order.
    images = [_image(2), _image(1), _image(4), _image(3, "djscale-app:hash3", "djscale-app:x"),
              _image(5)]
    result, left, log = docker(images, current="djscale-app:hash5")
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(left) == {_id(5), _id(4)}
    assert f"djscale: keeping {_id(4)} (previous image, for a rollback)" in result.stdout
    assert "djscale: removed 3 old djscale-app image(s)" in result.stdout
    removed = sorted(line for line in log if line.startswith("docker image rm"))
    assert removed == ["docker image rm djscale-app:hash1", "docker image rm djscale-app:hash2",
                       "docker image rm djscale-app:hash3", "docker image rm djscale-app:x"]


def test_the_release_that_ran_before_stays_however_old(docker):
    """Rolled back to 1 while 2 and 3 were built, then 4 built: `app.release: previous`
    now names 1 (what ran before 4), so it stays beside the newest previous (3)."""
    images = [_image(1), _image(2), _image(3), _image(4)]
    records = [(1, "current"), (2, "current"), (3, "current"), (1, "previous"), (4, "current")]
    result, left, _ = docker(images, records=records)
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(left) == {_id(1), _id(3), _id(4)}
    assert (f"djscale: keeping {_id(1)} (the release before this one, for app.release: "
            "previous)") in result.stdout
    # when it is the newest previous too, it is kept once: nothing else stays
    result, left, _ = docker(images, records=[(3, "current"), (4, "current")])
    assert set(left) == {_id(3), _id(4)}
    # and after a rollback to 1 (4 the release before it), 4 stays: `current` needs no build
    result, left, _ = docker(images, current=_id(1),
                             records=[(3, "current"), (4, "current"), (1, "previous")])
    assert set(left) == {_id(1), _id(4)}, result.stdout


def test_an_image_used_by_a_container_stays(docker):
    images = [_image(1), _image(2), _image(3), _image(4)]
    stopped = {"id": "c" * 64, "image": _id(1)}  # e.g. an operator's stopped one-off container
    running = {"id": "d" * 64, "image": _id(4)}
    result, left, _ = docker(images, containers=[stopped, running])
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(left) == {_id(1), _id(3), _id(4)}  # 2 removed; 1 is used, 3 is the previous
    assert f"djscale: keeping {_id(1)} (used by a container)" in result.stdout


def test_other_repositories_and_other_tags_are_left_alone(docker):
    shared = _image(1, "djscale-app:hash1", "registry.example/app:v1")
    images = [shared, _image(6, "postgres:16"), _image(2), _image(3)]
    result, left, _ = docker(images, keep_previous=0)
    assert result.returncode == 0, result.stdout + result.stderr
    assert left == {_id(1): ["registry.example/app:v1"], _id(6): ["postgres:16"],
                    _id(3): ["djscale-app:hash3"]}


@pytest.mark.parametrize("images", [
    [_image(1)],  # only the current image
    [_image(1), _image(2)],  # current and previous
])
def test_nothing_to_do_is_fine(docker, images):
    result, left, log = docker(images)
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(left) == {image["id"] for image in images}
    assert not [line for line in log if line.startswith("docker image rm")]
    assert "djscale: removed 0 old djscale-app image(s)" in result.stdout


def test_a_failed_removal_fails_the_step(docker):
    result, left, _ = docker([_image(1), _image(2), _image(3)], rm_fails=["djscale-app:hash1"])
    assert result.returncode != 0
    assert "cannot remove djscale-app:hash1" in result.stderr
    assert _id(1) in left


def test_a_missing_current_image_fails_the_step(docker):
    result, left, log = docker([_image(1), _image(2), _image(3)], current="djscale-app:gone")
    assert result.returncode != 0
    assert len(left) == 3
    assert not [line for line in log if line.startswith("docker image rm")]
