#!/usr/bin/env bash
# managed by djscale, do not edit
# The release, on the first app server each time the app image or the release's environment
# changes: the image's migrations applied (never new ones made), static files collected and
# the superuser created if missing, in a one-off container of the new image. For a pinned
# release (a rollback) the migrations are only checked, never applied or reversed.
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
set +e
python manage.py shell <<"PY"
import os, sys
from django.contrib.auth import get_user_model
from django.db import models
User = get_user_model()
field = User.USERNAME_FIELD
variable = "DJANGO_SUPERUSER_" + field.upper()
login = os.environ.get(variable)
if not login:
    sys.exit(f"djscale: {User._meta.label} logs in by {field!r}, so createsuperuser reads "
             f"{variable}: djscale writes DJANGO_SUPERUSER_USERNAME and _EMAIL only; set "
             f"{variable} in app.env")
if isinstance(User._meta.get_field(field), models.EmailField):
    lookup = {field + "__iexact": login}
else:
    lookup = {field: getattr(User, "normalize_username", str)(login)}
sys.exit(0 if User._default_manager.filter(**lookup).exists() else 3)
PY
found=$?
set -e
case "$found" in
  0) echo "djscale: superuser exists" ;;
  3) python manage.py createsuperuser --noinput ;;
  *) exit "$found" ;;
esac
'
