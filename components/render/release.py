"""The release on the first app server (assets/templates/release.sh.j2): migrations,
collectstatic and the superuser, in a one-off container of the release's image, its
environment (secrets) on stdin and never in a file."""
from __future__ import annotations

from components.render.appenv import DB_CA_PATH
from components.render.templating import render_script

# Where djscale versions before the release's environment came on stdin kept it (the app's
# env file plus the superuser's credentials): the release script and the teardown delete it.
LEGACY_RELEASE_ENV_PATH = "/etc/djscale/release.env"

# Run by `sh -c` in the app image (WORKDIR = the app). Idempotent for any user model:
# `createsuperuser --noinput` fails when the user exists, so check first, by the model's own
# login field (USERNAME_FIELD, read here at release time: `username` for Django's model,
# `email` for one that logs in by email), whose value createsuperuser reads from
# DJANGO_SUPERUSER_<FIELD>. Emails are compared without case (managers normalize them).
# The check exits 0 (the user exists) or 3 (create it); any other failure (no database, a
# login field djscale sets no variable for) fails the release.
RELEASE_STEPS = """set -e
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
"""


# A pinned release (`app.release`: `previous` or an image id, a rollback) touches no schema:
# its migrations ran when it was the new release, and the database may hold newer ones
# (expand/contract: the older code works with them; Django ignores applied migrations it does
# not know). `migrate --check` applies nothing and fails when the image has a migration the
# database lacks (an image that never was a release here). Its static files are collected
# again: the pages it serves name them.
PINNED_RELEASE_STEPS = """set -e
python manage.py migrate --check
python manage.py collectstatic --noinput
"""


def render_release_script(image_ref: str, *, db_ca_file: str = DB_CA_PATH,
                          legacy_env_file: str = LEGACY_RELEASE_ENV_PATH,
                          steps: str = RELEASE_STEPS) -> str:
    """Root script: `steps` (RELEASE_STEPS, or PINNED_RELEASE_STEPS for a rollback) in a
    one-off container of `image_ref` (an image id), its environment read from stdin
    (`appenv.render_app_env(..., superuser_password=...)`) and passed on through a pipe, the
    database's certificate mounted where the app's settings look for it."""
    return render_script("release.sh.j2", image=image_ref, legacy_env_file=legacy_env_file,
                         volume=f"{db_ca_file}:{DB_CA_PATH}:ro", steps=steps)
