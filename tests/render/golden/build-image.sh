#!/usr/bin/env bash
# managed by djscale, do not edit
# The app image, built on this server from the context the deploy uploaded, for the
# configured platform (images.platform): refused when the server's CPU is another one (the
# image would fail with "exec format error"). The base image (images.appBase) is pulled
# first, every time this step runs, so a release gets the base's security fixes (a failed
# pull falls back, loudly, to the copy the server holds); the pull
# goes through the engine, which applies its own registry settings, and the build then uses
# that local copy. The tag is the context's hash plus the base's id: a new base is a new
# image. Built only when the tag is missing, with
# BuildKit (Dockerfiles may use RUN --mount, COPY --chmod, heredocs; install-docker made sure
# this engine has it); the image id is the step's only output on stdout (everything else goes
# to stderr).
set -euo pipefail
tag=djscale-app:0123
base_image=python:3.12-slim
context=/var/lib/djscale/u/a
dockerfile=Dockerfile
platform=linux/amd64
expected_machine=x86_64
machine=$(uname -m)
if [ "$machine" != "$expected_machine" ]; then
    echo "djscale: images.platform is $platform but this server is $machine: set images.platform to the servers' platform" >&2
    exit 1
fi
if ! docker pull --quiet --platform "$platform" "$base_image" >&2; then
    if ! docker image inspect "$base_image" >/dev/null 2>&1; then
        echo "djscale: pulling images.appBase ($base_image) failed and this server has no copy: the release is not built" >&2
        exit 1
    fi
    echo "djscale: WARNING: pulling images.appBase ($base_image) failed: building on the copy this server already holds, without the base's latest fixes" >&2
fi
base_id=$(docker image inspect --format '{{.Id}}' "$base_image")
base_id=${base_id#sha256:}
tag="$tag-${base_id:0:12}"
if ! docker image inspect "$tag" >/dev/null 2>&1; then
    if [ ! -f "$context/$dockerfile" ]; then
        echo "djscale: the build context $context was not uploaded" >&2
        exit 1
    fi
    DOCKER_BUILDKIT=1 docker build --platform "$platform" \
        --build-arg "BASE_IMAGE=$base_image" \
        --tag "$tag" --file "$context/$dockerfile" "$context" >&2
fi
docker image inspect --format '{{.Id}}' "$tag"
