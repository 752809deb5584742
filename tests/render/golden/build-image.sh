#!/usr/bin/env bash
# managed by djscale, do not edit
# The app image, built on this server from the context the deploy uploaded, for the
# configured platform (images.platform): refused when the server's CPU is another one (the
# image would fail with "exec format error"). Built only when the tag is missing, with
# BuildKit (Dockerfiles may use RUN --mount, COPY --chmod, heredocs; install-docker made sure
# this engine has it); the image id is the step's only output on stdout (everything else goes
# to stderr).
set -euo pipefail
tag=djscale-app:0123
context=/var/lib/djscale/u/a
dockerfile=Dockerfile
platform=linux/amd64
expected_machine=x86_64
machine=$(uname -m)
if [ "$machine" != "$expected_machine" ]; then
    echo "djscale: images.platform is $platform but this server is $machine: set images.platform to the servers' platform" >&2
    exit 1
fi
if ! docker image inspect "$tag" >/dev/null 2>&1; then
    if [ ! -f "$context/$dockerfile" ]; then
        echo "djscale: the build context $context was not uploaded" >&2
        exit 1
    fi
    DOCKER_BUILDKIT=1 docker build --platform "$platform" \
        --build-arg BASE_IMAGE=python:3.12-slim \
        --tag "$tag" --file "$context/$dockerfile" "$context" >&2
fi
docker image inspect --format '{{.Id}}' "$tag"
