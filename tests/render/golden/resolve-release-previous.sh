#!/usr/bin/env bash
# managed by djscale, do not edit
# The image of a pinned release (app.release is `previous` or an image id), on the first app
# server, in place of a build: nothing is built. The image must still be here (the prune
# step keeps the previous one); it is shipped to the other servers and rolled out like any
# release. Its id is the step's only output on stdout.
#
# `previous`: the release that ran before the newest one built from the source, read from
# this server's record of releases (one line per release put in service: time, image id,
# how the stack named it), written by the retire step. Reading the record from the newest
# `current` line keeps the answer the same after the rollback has added its own lines.
set -euo pipefail
release=previous
releases_file=/var/lib/djscale/releases
repository=djscale-app

held() {
    echo "djscale: images of $repository on $(hostname) (id, tag, created):" >&2
    docker image ls --no-trunc --format '{{.ID}} {{.Tag}} {{.CreatedAt}}' "$repository" >&2 || true
}

if [ "$release" = previous ]; then
    if [ ! -s "$releases_file" ]; then
        echo "djscale: app.release is previous but no release is recorded on $(hostname) ($releases_file): pin an image id instead" >&2
        held
        exit 1
    fi
    image=$(awk '
        { image[NR] = $2 }
        $3 == "current" { newest = NR }
        END {
            if (!newest) exit
            for (i = newest - 1; i >= 1; i--) if (image[i] != image[newest]) { print image[i]; exit }
        }' "$releases_file")
    if [ -z "$image" ]; then
        echo "djscale: app.release is previous but $releases_file on $(hostname) records no release before the newest one built from the source: pin an image id instead" >&2
        tail -n 5 "$releases_file" >&2
        held
        exit 1
    fi
else
    image=$release
fi
if ! docker image inspect --format '{{.Id}}' "$image" >/dev/null 2>&1; then
    echo "djscale: app.release is $release ($image) but $(hostname) no longer holds that image (pruned, or never built here): pin one it holds, or deploy app.release: current" >&2
    held
    exit 1
fi
echo "djscale: release $release is $image (not built)" >&2
docker image inspect --format '{{.Id}}' "$image"
