"""A database that cannot be reached is a 503 with ``Retry-After``, never an HTML 500.

Clients cannot tell Django's "Server Error (500)" page from a bug; a 503 with a
JSON body (``code: database_unavailable``) and ``Retry-After`` tells them to
retry the same request later. Ingest is idempotent on ``external_id``, so a
retried batch stores nothing twice. Errors raised inside a DRF view reach
:func:`database_unavailable_response` through ``hitlplatform.api``'s exception
handler; those raised before (sessions, middleware) reach :func:`server_error`,
the ``handler500``. ``OperationalError`` also covers transient failures of a
running server (a deadlock, a statement cancelled by a restart): retrying them
is right too.
"""

import logging
import sys

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.views import defaults

logger = logging.getLogger(__name__)

DATABASE_ERRORS = (OperationalError, InterfaceError)
BODY = {
    "detail": "The database is unavailable; retry the request after Retry-After seconds.",
    "code": "database_unavailable",
}


def retry_after_headers() -> dict[str, str]:
    return {"Retry-After": str(settings.HITL_RETRY_AFTER_SECONDS)}


def database_unavailable_logged(exc: BaseException) -> None:
    logger.warning("Database unavailable, answering 503: %s", str(exc).strip()[:300])


def server_error(request):
    """``handler500``: a database error is a 503 (JSON under ``/api/``, plain text elsewhere)."""
    exc = sys.exc_info()[1]
    if not isinstance(exc, DATABASE_ERRORS):
        return defaults.server_error(request)
    database_unavailable_logged(exc)
    if request.path.startswith("/api/"):
        return JsonResponse(BODY, status=503, headers=retry_after_headers())
    return HttpResponse(
        "Service temporarily unavailable: the database cannot be reached. Try again shortly.\n",
        status=503,
        content_type="text/plain; charset=utf-8",
        headers=retry_after_headers(),
    )
