"""An image pinned by digest (`name:tag@sha256:...`, as images.* accept it) through the
program's own container script on a real host: pulled from the registry by that reference
when missing, run, and left alone on a second run. Written without a bed run: the script's
handling of the reference is proven with a stand-in docker
(tests/render/test_containers.py); Docker's side (the client pulls `fromImage=name` with the
digest as tag, the daemon's reference store drops the tag of a tag+digest reference) is read
from moby's v20.10 source."""
from __future__ import annotations

import re

from components.render.containers import (ContainerSpec, render_run_container_script,
                                          render_teardown_script)

NAME = "djscale-digest-probe"


def test_a_digest_reference_is_pulled_and_run_by_the_container_script(bed, deployed):
    image = bed.state.images["app-base"]  # in the bed registry, not used on the proxy
    bed.sudo("proxy", f"docker pull --quiet {image} >/dev/null")
    repo_digest = bed.sudo("proxy", "docker image inspect --format "
                           f"'{{{{index .RepoDigests 0}}}}' {image}").stdout.strip()
    digest = re.fullmatch(r".+@(sha256:[0-9a-f]{64})", repo_digest)[1]
    reference = f"{image}@{digest}"  # name:tag@sha256:...
    # by ID: removing the tag first would leave the digest reference naming no image
    bed.sudo("proxy", f"docker image rm --force $(docker image inspect --format "
                      f"'{{{{.Id}}}}' {image}) >/dev/null")
    spec = ContainerSpec(name=NAME, image=reference, pull=True, command=("sleep", "600"),
                         healthy_within=60, stop_timeout=1)
    script = render_run_container_script(spec)
    try:
        first = bed.sudo("proxy", script)
        assert f"{NAME} started" in first.stderr, first.stderr
        assert bed.sudo("proxy", f"docker inspect -f '{{{{.Config.Image}}}}' {NAME}"
                        ).stdout.strip() == reference
        pulled = bed.sudo("proxy", "docker image inspect --format '{{.RepoDigests}}' "
                          f"{reference}").stdout
        assert digest in pulled, pulled
        again = bed.sudo("proxy", script)
        assert "already runs these settings" in again.stderr, again.stderr
    finally:
        bed.sudo("proxy", render_teardown_script(NAME, 1), check=False)
        bed.sudo("proxy", f"docker image rm {reference} >/dev/null 2>&1 || true", check=False)
