"""Typed errors: one class per kind of answer an application handles differently."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class HITLError(Exception):
    """Base of every error this client raises."""


class APIError(HITLError):
    """The server answered with an error status; ``body`` is its JSON (or None)."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.code = body.get("code") if isinstance(body, dict) else None


class AuthError(APIError):
    """401: no API key, or one that is unknown or revoked."""


class PermissionDenied(APIError):
    """403: the key or user may not do this (in this project)."""


class NotFound(APIError):
    """404: no such object among those the caller may see."""


class ValidationError(APIError):
    """400 / 413 / 415: the input was refused; ``fields`` maps each bad field to its messages.

    For a batch the server names the item by index: ``{"items": {"3": {"confidence": [...]}}}``;
    ``errors`` flattens that to ``{"items.3.confidence": [...]}``.
    """

    @property
    def fields(self) -> dict[str, Any]:
        if not isinstance(self.body, dict):
            return {}
        return {k: v for k, v in self.body.items() if k not in ("detail", "code")}

    @property
    def errors(self) -> dict[str, list[str]]:
        return flatten_errors(self.fields)


class ConflictError(APIError):
    """409: an item with this external_id exists with different content (nothing stored).

    ``external_ids`` lists the conflicting ids the server named.
    """

    @property
    def external_ids(self) -> list[str]:
        if isinstance(self.body, dict):
            return list(self.body.get("conflicting_external_ids") or [])
        return []


class RateLimited(APIError):
    """429 after the retries ran out; ``retry_after`` is the server's Retry-After in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx after the retries ran out."""


class ConnectionFailed(HITLError):
    """The server could not be reached (after the retries ran out)."""


class WaitTimeout(HITLError):
    """A wait ran past its timeout; ``last`` is the last state seen (an item or an export)."""

    def __init__(self, message: str, *, last: Any = None) -> None:
        super().__init__(message)
        self.last = last


class ExportFailed(HITLError):
    """The export's build failed on the server; ``export`` holds its error."""

    def __init__(self, message: str, *, export: Any = None) -> None:
        super().__init__(message)
        self.export = export


class ChecksumMismatch(HITLError):
    """A downloaded file's sha256 differs from the export's files listing (file removed)."""

    def __init__(self, message: str, *, expected: str, actual: str) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class WebhookVerificationError(HITLError):
    """A webhook whose signature is missing, malformed or wrong: do not trust its body."""


class StaleWebhook(WebhookVerificationError):
    """A correctly signed webhook whose timestamp is outside the tolerance (a replay?)."""


def flatten_errors(value: Any, prefix: str = "") -> dict[str, list[str]]:
    """``{"items": {"3": {"confidence": ["…"]}}}`` → ``{"items.3.confidence": ["…"]}``."""
    if isinstance(value, dict):
        flat: dict[str, list[str]] = {}
        for key, child in value.items():
            flat.update(flatten_errors(child, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(value, list) and all(isinstance(child, str) for child in value):
        return {prefix or "detail": list(value)}
    if isinstance(value, list):
        flat = {}
        for index, child in enumerate(value):
            flat.update(flatten_errors(child, f"{prefix}.{index}" if prefix else str(index)))
        return flat
    return {prefix or "detail": [str(value)]}
