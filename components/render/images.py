"""Old app images on an app server (assets/templates/prune-app-images.sh.j2).

Every release builds `djscale-app:<content hash>` on each app server; without this step the
old ones pile up until the disk is full. After the server's container runs the new image, the
step removes the other `djscale-app` images except the newest `keep_previous` ones (a quick
rollback needs no rebuild), the one that ran before the current one (the record of releases,
components/render/releases.py: what `app.release: previous` rolls back to) and any image a
container still uses, running or stopped.
"""
from __future__ import annotations

from components.render.containers import RELEASES_FILE
from components.render.templating import render_script

APP_IMAGE_REPOSITORY = "djscale-app"

# Go templates for `docker --format`: values of the script, so the Jinja template never
# contains `{{` of its own.
_IMAGE_TAGS_FORMAT = "{{.ID}} {{.Repository}}:{{.Tag}}"  # docker image ls, one line per tag
_IMAGE_ID_FORMAT = "{{.Id}}"  # docker image inspect
_IMAGE_CREATED_FORMAT = "{{.Created}}"  # docker image inspect, RFC 3339
_CONTAINER_IMAGE_FORMAT = "{{.Image}}"  # docker container inspect: the image id


def render_prune_app_images_script(current_image_ref: str, keep_previous: int = 1,
                                   repository: str = APP_IMAGE_REPOSITORY,
                                   releases_file: str = RELEASES_FILE) -> str:
    """Root script: remove `repository` images other than `current_image_ref` (an image id
    or name), the `keep_previous` newest others, the newest one `releases_file` records
    besides the current one, and those used by any container."""
    if isinstance(keep_previous, bool) or not isinstance(keep_previous, int) \
            or keep_previous < 0:
        raise ValueError(f"keep_previous must be an integer >= 0, not {keep_previous!r}")
    return render_script(
        "prune-app-images.sh.j2", current_image=current_image_ref,
        keep_previous=keep_previous, repository=repository, releases_file=releases_file,
        tags_format=_IMAGE_TAGS_FORMAT, id_format=_IMAGE_ID_FORMAT,
        created_format=_IMAGE_CREATED_FORMAT, container_image_format=_CONTAINER_IMAGE_FORMAT)
