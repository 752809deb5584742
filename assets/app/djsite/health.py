"""`GET /healthz`: 200 when the database answers `SELECT 1`, else 503.

Answered by a middleware placed first in MIDDLEWARE, so the check stays cheap and works
for every caller: no session, no CSRF, no auth, no URL resolution, and no ALLOWED_HOSTS
check (Docker's HEALTHCHECK and the rollout gates call it by IP address, with a Host header
that is not the site's name). It tells nothing but "the database answers" in one word.
"""
import logging

from django.db import DatabaseError, InterfaceError, connection
from django.http import HttpResponse

HEALTH_PATHS = frozenset({"/healthz", "/healthz/"})

logger = logging.getLogger(__name__)


def database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except (DatabaseError, InterfaceError) as exc:
        # The broken connection is closed by Django at the end of this request
        # (close_if_unusable_or_obsolete), so the next check connects afresh.
        logger.warning("health check: database unavailable: %s", exc)
        return False


def healthz(request) -> HttpResponse:
    if database_answers():
        response = HttpResponse("ok\n", content_type="text/plain")
    else:
        response = HttpResponse("database unavailable\n", status=503,
                                content_type="text/plain")
    response["Cache-Control"] = "no-store"
    return response


class HealthCheckMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info in HEALTH_PATHS and request.method in ("GET", "HEAD"):
            return healthz(request)
        return self.get_response(request)
