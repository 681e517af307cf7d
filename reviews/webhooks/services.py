"""Webhook deliveries: send the outbox rows of final items to the project's client.

Deliveries are an outbox. The transaction that makes an item final also writes
a ``WebhookDelivery`` row, and only after it commits is a job enqueued to send
it. If Redis is down, the job is lost or the receiver fails, the row stays
``pending`` with a ``next_attempt_at``; retries back off exponentially and the
sweep (``manage.py webhooks_sweep``, or the RQ cron job) re-enqueues anything
past due. Nothing is lost; a receiver may see a delivery twice and should
de-duplicate on ``X-HITL-Delivery``.
"""

import hashlib
import hmac
import http.client
import json
import logging
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from hitlplatform.metrics.instruments import webhook_attempt_observe
from hitlplatform.queues import get_queue
from reviews.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
)
from reviews.netpolicy import (
    WebhookRefused,
    WebhookTarget,
    WebhookUnresolved,
    webhook_target_resolve,
)
from reviews.services.outbox import DELIVER_JOB, ENQUEUE_CHUNK, WEBHOOK_QUEUE, deliveries_enqueue

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-HITL-Signature"
TIMESTAMP_HEADER = "X-HITL-Timestamp"
TIMESTAMPED_SIGNATURE_HEADER = "X-HITL-Signature-V2"
# How far a receiver should let X-HITL-Timestamp be from its clock (replays older
# than this are refused; hitl.verify_webhook's default). Each attempt is signed
# anew when sent, so a retry hours later is fresh.
SIGNATURE_TOLERANCE_SECONDS = 300
DELIVERY_HEADER = "X-HITL-Delivery"
EVENT_HEADER = "X-HITL-Event"
USER_AGENT = "hitl-review-webhooks/1"
RESPONSE_EXCERPT_BYTES = 2000


@dataclass
class SendResult:
    status_code: int | None
    error: str
    excerpt: str
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def retryable(self) -> bool:
        """5xx, 408, 429, timeouts and connection errors are worth another try."""
        if self.status_code is None:
            return True
        return self.status_code >= 500 or self.status_code in (408, 429)


# --- payload and signature ----------------------------------------------------


def webhook_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact, key-sorted UTF-8 JSON."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def webhook_signature(*, secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of the raw body, keyed with the project's secret>``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def webhook_timestamped_signature(*, secret: str, body: bytes, timestamp: int) -> str:
    """``sha256=<hex HMAC-SHA256 of "<timestamp>." + raw body>``: a replay shows its age."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def _enqueue_retry_on_commit(delivery_id: str, delay: timedelta) -> None:
    def send() -> None:
        try:
            # RQ's scheduler keeps whole seconds and may run a job up to one second
            # early; a job that runs before next_attempt_at does nothing, so wait 1 s more.
            get_queue(WEBHOOK_QUEUE).enqueue_in(
                delay + timedelta(seconds=1), DELIVER_JOB, [delivery_id]
            )
        except Exception:
            # The row holds next_attempt_at; the sweep enqueues it once past due.
            logger.exception("Could not schedule the retry of delivery %s", delivery_id)

    transaction.on_commit(send)


# --- sending -----------------------------------------------------------------


def backoff(attempts: int) -> timedelta:
    """Wait before retry number ``attempts`` (1-based): base * 2**(n-1), capped."""
    base = settings.HITL_WEBHOOK_BACKOFF_SECONDS
    seconds = min(base * 2 ** max(attempts - 1, 0), settings.HITL_WEBHOOK_BACKOFF_MAX_SECONDS)
    return timedelta(seconds=seconds)


def webhook_deliver(*, delivery_id: str, force: bool = False, user=None) -> WebhookDelivery | None:
    """Send one pending delivery if it is due (``force``: even if not yet due).

    Holds the delivery's row lock (``SKIP LOCKED``) for the attempt, so a
    retry job, the sweep and a re-send never post the same delivery at once;
    returns None when another worker holds it. Records the attempt in the log;
    on 2xx marks it delivered; on 5xx, 408, 429, a timeout or a connection error
    schedules the next attempt with exponential backoff until
    ``HITL_WEBHOOK_MAX_ATTEMPTS``; on any other answer, a URL the address
    rule refuses (``reviews.netpolicy``: checked again here, since DNS may have
    changed since the project was saved; nothing is sent and the attempt's
    error starts with "Refused:") or a missing URL marks it failed (an admin
    can re-send it). A host that does not resolve is retried like a
    connection error.
    """
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("project")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None or delivery.status != DeliveryStatus.PENDING:
            return delivery
        now = timezone.now()
        if not force and delivery.next_attempt_at > now:
            return delivery
        project = delivery.project
        url = project.webhook_url
        if not url:
            result = SendResult(None, "The project has no webhook URL any more.", "", 0)
            permanent = True
        else:
            body = webhook_body(delivery.payload)
            sent_at = int(time.time())
            secret = project.webhook_secret
            headers = {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                SIGNATURE_HEADER: webhook_signature(secret=secret, body=body),
                TIMESTAMP_HEADER: str(sent_at),
                TIMESTAMPED_SIGNATURE_HEADER: webhook_timestamped_signature(
                    secret=secret, body=body, timestamp=sent_at
                ),
                DELIVERY_HEADER: str(delivery.pk),
                EVENT_HEADER: delivery.event,
            }
            try:
                target = webhook_target_resolve(url)
            except WebhookUnresolved as exc:
                # A resolver hiccup is worth the retries a connection error gets.
                result, permanent = SendResult(None, str(exc), "", 0), False
            except WebhookRefused as exc:
                logger.warning("Delivery %s refused: %s", delivery.pk, exc)
                result, permanent = SendResult(None, f"Refused: {exc}", "", 0), True
            else:
                result = _post(target, url, body, headers)
                permanent = not result.delivered and not result.retryable
        WebhookAttempt.objects.create(
            delivery=delivery,
            url=url,
            attempted_at=now,
            status_code=result.status_code,
            error=result.error,
            response_excerpt=result.excerpt,
            duration_ms=result.duration_ms,
            triggered_by=user,
        )
        delivery.attempts += 1
        delivery.last_attempt_at = now
        delivery.last_status_code = result.status_code
        delivery.last_error = result.error
        if result.delivered:
            delivery.status = DeliveryStatus.DELIVERED
            delivery.delivered_at = timezone.now()
        elif permanent or delivery.attempts >= settings.HITL_WEBHOOK_MAX_ATTEMPTS:
            delivery.status = DeliveryStatus.FAILED
        else:
            delay = backoff(delivery.attempts)
            delivery.next_attempt_at = now + delay
            _enqueue_retry_on_commit(str(delivery.pk), delay)
        delivery.save()
        outcome = "retry" if delivery.status == DeliveryStatus.PENDING else delivery.status
        webhook_attempt_observe(project=project.slug, outcome=outcome)
        return delivery


@transaction.atomic
def webhook_delivery_resend(*, delivery: WebhookDelivery, user) -> WebhookDelivery:
    """Queue a delivery again now, with the same id and body (an admin's re-send).

    Resets the attempt count, so a delivery that gave up gets a full set of
    retries; the attempt log keeps every earlier try.
    """
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
    delivery.status = DeliveryStatus.PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = timezone.now()
    delivery.save(update_fields=["status", "attempts", "next_attempt_at"])
    logger.info("Delivery %s re-sent by %s", delivery.pk, user)
    deliveries_enqueue([str(delivery.pk)])
    return delivery


def webhook_deliveries_sweep(*, now: datetime | None = None, send_inline: bool = False) -> int:
    """Re-enqueue pending deliveries more than the grace period past due; return how many.

    Their job was lost (Redis down at enqueue time, a worker killed mid-job, a
    scheduler not running). Raises ``redis.RedisError`` when the queue is
    unreachable; ``send_inline`` sends them from this process instead.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.HITL_WEBHOOK_SWEEP_GRACE_SECONDS)
    ids = [
        str(pk)
        for pk in WebhookDelivery.objects.due(now=cutoff)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:10_000]
    ]
    if send_inline:
        for delivery_id in ids:
            webhook_deliver(delivery_id=delivery_id)
        return len(ids)
    # Enqueued at once, not on commit: a Redis error reaches the caller, who
    # can say so (or send inline) instead of the sweep failing quietly.
    queue = get_queue(WEBHOOK_QUEUE)
    for start in range(0, len(ids), ENQUEUE_CHUNK):
        queue.enqueue(DELIVER_JOB, ids[start : start + ENQUEUE_CHUNK])
    return len(ids)


# --- HTTP to the checked address ------------------------------------------------


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _post(target: WebhookTarget, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
    """POST to ``target.address``, the address the rule checked; the URL's host
    only names the Host header and the TLS certificate. http.client follows no
    redirect and reads no proxy settings, so nothing else is contacted."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    pinned = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = pinned(
        target.host, target.port, address=target.address, timeout=settings.HITL_WEBHOOK_TIMEOUT
    )
    started = time.monotonic()
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        excerpt = response.read(RESPONSE_EXCERPT_BYTES).decode("utf-8", errors="replace")
        status_code, error = response.status, ""
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code} {response.reason}"
    except (OSError, http.client.HTTPException) as exc:
        status_code, excerpt = None, ""
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    finally:
        connection.close()
    duration_ms = int((time.monotonic() - started) * 1000)
    return SendResult(status_code, error, excerpt, duration_ms)
