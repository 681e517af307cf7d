"""Project-wide DRF pieces: domain errors become clear 4xx answers, and cursors that
cannot be a position are refused before they reach the database."""

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.http import JsonResponse
from django.views import defaults
from psycopg.errors import ForeignKeyViolation
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from hitlplatform.unavailable import (
    BODY,
    DATABASE_ERRORS,
    database_unavailable_logged,
    retry_after_headers,
)
from reviews.errors import DomainError
from reviews.selectors import api_key_forget
from reviews.jsontext import without_surrogates


def exception_handler(exc, context):
    response = _error_response(exc, context)
    if response is not None:
        # Messages quote the input ('"\ud800" is not a valid choice.'); a lone
        # surrogate in them made rendering the 400 fail with a 500.
        response.data = _printable(response.data)
    return response


def _error_response(exc, context) -> Response | None:
    if isinstance(exc, DomainError):
        body = {"detail": exc.message, "code": exc.code}
        if isinstance(exc.detail, dict):
            body.update(exc.detail)
        return Response(body, status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):
        return Response(
            {"detail": "Request body is larger than the configured limit.", "code": "too_large"},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, DATABASE_ERRORS):
        database_unavailable_logged(exc)
        return Response(
            dict(BODY), status=status.HTTP_503_SERVICE_UNAVAILABLE, headers=retry_after_headers()
        )
    if isinstance(exc, IntegrityError) and isinstance(exc.__cause__, ForeignKeyViolation):
        # A row the request refers to was deleted by another process meanwhile, such
        # as the project behind an API key this process reuses for a few seconds
        # (HITL_API_KEY_CACHE_SECONDS): nothing was stored; a retry reads afresh.
        api_key_forget()
        return Response(
            {
                "detail": "A record this request refers to was removed meanwhile; retry.",
                "code": "conflict",
            },
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)


def _printable(value: Any) -> Any:
    # Error bodies are a few levels deep whatever the input: recursion is safe here.
    if isinstance(value, str):
        return without_surrogates(value)
    if isinstance(value, dict):
        return {_printable(key): _printable(child) for key, child in value.items()}
    if isinstance(value, list):
        return [_printable(child) for child in value]
    return value


class IdCursorPagination(CursorPagination):
    """Cursor pagination on ``-id``.

    DRF decodes any cursor it can parse and filters on its position as given, so
    a crafted cursor (``p=abc``) reached the database as ``id < 'abc'`` and
    failed there with a 500. A position that is not an integer is an invalid
    cursor (404), as an undecodable one already is.
    """

    ordering = "-id"

    def decode_cursor(self, request):
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            try:
                int(cursor.position)
            except ValueError:
                raise NotFound(self.invalid_cursor_message) from None
        return cursor


def page_not_found(request, exception):
    """``handler404``: an API address no route matches answers in JSON, like one that does.

    ``/api/v1/items/0.5/`` (the router's ids hold no dot) or a slug the URL
    pattern refuses otherwise got Django's HTML page; the body is DRF's NotFound.
    """
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)
