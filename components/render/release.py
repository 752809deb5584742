"""The release on the first app server (assets/templates/release.sh.j2): migrations,
collectstatic and the superuser, in a one-off container of the release's image, its
environment (secrets) on stdin and never in a file."""
from __future__ import annotations

from components.render.appenv import DB_CA_PATH
from components.render.templating import render_script

# Where djscale versions before the release's environment came on stdin kept it (the app's
# env file plus the superuser's credentials): the release script and the teardown delete it.
LEGACY_RELEASE_ENV_PATH = "/etc/djscale/release.env"

# Run by `sh -c` in the app image (WORKDIR = the app). Idempotent: `createsuperuser
# --noinput` fails when the user exists, so check first (any other failure of the check,
# e.g. no database, fails createsuperuser too: not hidden).
RELEASE_STEPS = """set -e
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
"""


def render_release_script(image_ref: str, *, db_ca_file: str = DB_CA_PATH,
                          legacy_env_file: str = LEGACY_RELEASE_ENV_PATH) -> str:
    """Root script: RELEASE_STEPS in a one-off container of `image_ref` (an image id), its
    environment read from stdin (`appenv.render_app_env(..., superuser_password=...)`) and
    passed on through a pipe, the database's certificate mounted where the app's settings
    look for it."""
    return render_script("release.sh.j2", image=image_ref, legacy_env_file=legacy_env_file,
                         volume=f"{db_ca_file}:{DB_CA_PATH}:ro", steps=RELEASE_STEPS)
