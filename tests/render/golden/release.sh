#!/usr/bin/env bash
# managed by djscale, do not edit
# The release, on the first app server each time the app image changes: the image's
# migrations applied (never new ones made), static files collected and the superuser created
# if missing, in a one-off container of the new image. Its env file is the app's settings
# plus the superuser's credentials.
set -euo pipefail
docker run --rm --env-file /etc/djscale/release.env --volume /etc/djscale/db-ca.pem:/etc/djscale/db-ca.pem:ro sha256:abc sh -c 'set -e
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
