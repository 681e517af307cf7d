"""Verify the platform's webhook deliveries before trusting them.

Each delivery carries ``X-HITL-Timestamp`` (Unix seconds when this attempt was
sent) and ``X-HITL-Signature-V2: sha256=<hex HMAC-SHA256 of "<timestamp>." +
raw body>``, keyed with the project's webhook secret; every retry is signed
anew. ``X-HITL-Signature`` (the body alone) is kept for older receivers, but
it cannot show a replay's age.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from hitl.errors import StaleWebhook, WebhookVerificationError

TIMESTAMP_HEADER = "X-HITL-Timestamp"
SIGNATURE_HEADER = "X-HITL-Signature-V2"
DELIVERY_HEADER = "X-HITL-Delivery"
EVENT_HEADER = "X-HITL-Event"
DEFAULT_TOLERANCE = 300
"""Seconds a timestamp may be from this machine's clock (the server's advice)."""


def _header(headers: Mapping[str, str] | Any, name: str) -> str | None:
    """A header from a dict, an httpx / requests / Django mapping, or a WSGI environ."""
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    if value is None:
        value = headers.get("HTTP_" + name.upper().replace("-", "_"))
    if value is None and isinstance(headers, Mapping):
        wanted = name.lower()
        for key, candidate in headers.items():
            if isinstance(key, str) and key.lower() == wanted:
                return candidate
    return value


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The ``X-HITL-Signature-V2`` value for ``body`` sent at ``timestamp``."""
    signed = f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify_webhook(
    body: bytes | str,
    headers: Mapping[str, str] | Any,
    secret: str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a delivery's signature and age over the exact bytes received; return its JSON.

    Raises ``WebhookVerificationError`` for a missing, malformed or wrong
    signature (a tampered body or header, the wrong secret), and
    ``StaleWebhook`` for a correctly signed one whose timestamp is more than
    ``tolerance`` seconds away from ``now`` (a replay). Pass the raw body,
    before any JSON parsing: re-encoding changes the bytes.
    """
    if not secret:
        raise WebhookVerificationError("No webhook secret to verify with.")
    raw = body.encode() if isinstance(body, str) else bytes(body)
    stamp = _header(headers, TIMESTAMP_HEADER)
    given = _header(headers, SIGNATURE_HEADER)
    if not stamp or not given:
        raise WebhookVerificationError(
            f"Missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER}: not a signed delivery."
        )
    stamp = stamp.strip()
    if not stamp.isdigit():
        raise WebhookVerificationError(f"{TIMESTAMP_HEADER} is not a Unix time: {stamp[:40]!r}.")
    expected = sign(raw, secret, int(stamp))
    if not hmac.compare_digest(expected.encode(), given.strip().encode()):
        raise WebhookVerificationError("Signature mismatch: the body, timestamp or secret differ.")
    age = (time.time() if now is None else now) - int(stamp)
    if abs(age) > tolerance:
        raise StaleWebhook(
            f"Signed {age:.0f} s ago, outside the {tolerance:g} s tolerance (a replay?)."
        )
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise WebhookVerificationError("Correctly signed, but the body is not JSON.") from exc
