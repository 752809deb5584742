#!/usr/bin/env bash
# managed by djscale, do not edit
# Run when this host leaves the stack (or the stack is destroyed): the containers of one
# name (and leftovers carrying its label) stopped gracefully and removed, then the files
# below deleted (they hold secrets or uploads nobody needs any more). Data (PostgreSQL's,
# certificates) is never touched here. Nothing to remove is fine.
set -euo pipefail
name=djscale-app
if command -v docker >/dev/null; then
    ids=$(docker container ls --all --quiet --filter "label=djscale.container=$name")
    if [ -n "$ids" ]; then
        # shellcheck disable=SC2086
        docker stop --time 30 $ids >/dev/null
        # shellcheck disable=SC2086
        docker rm --force $ids >/dev/null
        echo "djscale: removed the $name container" >&2
    fi
fi
rm -rf -- /etc/djscale/app.env
