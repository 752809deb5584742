#!/usr/bin/env bash
# managed by djscale, do not edit
# The release, on the first app server each time the app image or the release's environment
# changes: the image's migrations applied (never new ones made), static files collected and
# the superuser created if missing, in a one-off container of the new image.
# Its environment (the app's settings plus the superuser's credentials: secrets) is this
# script's stdin. It is held in memory and handed to `docker run --env-file` through a pipe
# (process substitution): it is never written to a file, so nothing of it stays behind,
# whatever way the release ends. No `set -x`, and printf is a shell builtin: no command line
# holds it.
set -euo pipefail
legacy_env_file=/etc/djscale/release.env
# djscale versions before this one kept the release's environment in a root-only file that
# stayed after the release: take it away.
rm -f -- "$legacy_env_file"

release_env=''
IFS= read -r -d '' release_env || true
if [[ "$release_env" != *DJANGO_SUPERUSER_PASSWORD=* ]]; then
    echo "djscale: expected the release's environment on stdin" >&2
    exit 1
fi
docker run --rm --env-file <(printf '%s\n' "$release_env") --volume /etc/djscale/db-ca.pem:/etc/djscale/db-ca.pem:ro sha256:abc sh -c 'set -e
python manage.py migrate --noinput
python manage.py collectstatic --noinput
if python manage.py shell <<"PY"; then
import os, sys
from django.contrib.auth import get_user_model
name = os.environ["DJANGO_SUPERUSER_USERNAME"]
sys.exit(0 if get_user_model().objects.filter(username=name).exists() else 3)
PY
  echo "djscale: superuser exists"
else
  python manage.py createsuperuser --noinput
fi
'
