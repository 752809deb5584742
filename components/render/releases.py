"""The record of releases on each app server, and a release pinned by the stack.

Every app server keeps `/var/lib/djscale/releases`: one line per release put in service
(written by the retire step, once nginx routes to it), `<UTC time> <image id> <origin>`,
origin being how the stack named it: `current` (built from assets/app), `previous` or
`pinned` (an image id). `app.release: previous` reads the first app server's record
(`render_resolve_release_script`, assets/templates/resolve-release.sh.j2); `previous_release`
is the same rule in Python, for the operations CLI. The prune step keeps the image that ran
before the current one (the record's), so a `previous` rollback finds it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

from components.render.app_image import APP_IMAGE_REPOSITORY
from components.render.containers import RELEASE_ORIGINS, RELEASES_FILE
from components.render.templating import render_script

__all__ = ["RELEASES_FILE", "RELEASE_ORIGINS", "ReleaseRecord", "parse_records",
           "previous_release", "release_origin", "render_resolve_release_script"]
_IMAGES_FORMAT = "{{.ID}} {{.Tag}} {{.CreatedAt}}"  # docker image ls
_ID_FORMAT = "{{.Id}}"  # docker image inspect


def release_origin(release: str) -> str:
    """What the record says for `app.release`: `current`, `previous` or `pinned`."""
    return release if release in ("current", "previous") else "pinned"


@dataclass(frozen=True)
class ReleaseRecord:
    time: str
    image: str
    origin: str


def parse_records(text: str) -> list[ReleaseRecord]:
    """The record's lines, oldest first (lines that are not three words are skipped)."""
    records = []
    for line in text.splitlines():
        words = line.split()
        if len(words) == 3:
            records.append(ReleaseRecord(*words))
    return records


def previous_release(records: Iterable[ReleaseRecord]) -> Optional[str]:
    """The image `app.release: previous` names: before the newest `current` line, the
    newest line with another image (resolve-release.sh.j2 does the same in awk)."""
    records = list(records)
    newest = max((i for i, r in enumerate(records) if r.origin == "current"), default=None)
    if newest is None:
        return None
    for record in reversed(records[:newest]):
        if record.image != records[newest].image:
            return record.image
    return None


def render_resolve_release_script(release: str, *, releases_file: str = RELEASES_FILE,
                                  repository: str = APP_IMAGE_REPOSITORY) -> str:
    """Root script for the first app server's image step when `app.release` is pinned
    (`previous` or an image id): print the image's id, failing (with the images the server
    holds) when there is none to take."""
    if release == "current":
        raise ValueError("app.release current is built, not resolved")
    return render_script("resolve-release.sh.j2", release=release,
                         releases_file=releases_file, repository=repository,
                         images_format=_IMAGES_FORMAT, id_format=_ID_FORMAT)
