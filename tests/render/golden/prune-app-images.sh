#!/usr/bin/env bash
# managed by djscale, do not edit
# Old app images, after this server's container runs the current one: every other image of
# the app's repository goes, except the newest previous one(s) (kept for a quick rollback),
# the one that ran before the current one (the record of releases: `app.release: previous`
# rolls back to it, however old it is) and any image a container uses, running or stopped.
# Nothing to do is fine; a failed removal fails the step. `docker image rm` without -f:
# never forced.
set -euo pipefail
repository=djscale-app
keep_previous=1
releases_file=/var/lib/djscale/releases
current_id=$(docker image inspect --format '{{.Id}}' sha256:abc)

# The newest recorded release whose image is not the current one.
ran_before=$(awk -v current="$current_id" '$2 != current { image = $2 } END { print image }' \
  "$releases_file" 2>/dev/null || true)

# Image ids used by any container, running or stopped.
used=$(docker container ls --all --quiet --no-trunc \
  | xargs -r docker container inspect --format '{{.Image}}')

# "<id> <repository>:<tag>" for each tag of the repository.
tags=$(docker image ls --no-trunc --format '{{.ID}} {{.Repository}}:{{.Tag}}' "$repository")

# The other images, newest first: "<created, epoch seconds> <id>".
candidates=$(awk -v current="$current_id" '$1 != current { print $1 }' <<<"$tags" \
  | sort -u \
  | while read -r id; do
      created=$(docker image inspect --format '{{.Created}}' "$id")
      printf '%s %s\n' "$(date -d "$created" +%s)" "$id"
    done \
  | sort -k1,1nr -k2,2)

removed=0
kept=0
while read -r _ id; do
  [ -n "$id" ] || continue
  if [ "$id" = "$ran_before" ]; then
    kept=$((kept + 1))
    echo "djscale: keeping $id (the release before this one, for app.release: previous)"
    continue
  fi
  if [ "$kept" -lt "$keep_previous" ]; then
    kept=$((kept + 1))
    echo "djscale: keeping $id (previous image, for a rollback)"
    continue
  fi
  if grep -qxF "$id" <<<"$used"; then
    echo "djscale: keeping $id (used by a container)"
    continue
  fi
  awk -v id="$id" '$1 == id { print $2 }' <<<"$tags" | while read -r ref; do
    docker image rm "$ref"
  done
  removed=$((removed + 1))
done <<<"$candidates"
echo "djscale: removed $removed old $repository image(s)"
