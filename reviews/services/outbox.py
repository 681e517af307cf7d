"""The webhook outbox: the delivery rows written when items become final
(``item.final``) and when an audit sample's audit review is in (``item.audited``).

The transaction that makes an item final also writes its ``WebhookDelivery``
row (``webhook_deliveries_create``), and only once it commits is a job
enqueued to send it. Sending, retries and the sweep live in
``reviews.webhooks``; the lifecycle only writes the rows and names the job.
"""

import json
import uuid
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from hitlplatform.queues import enqueue_on_commit
from reviews.models import (
    DeliveryStatus,
    Project,
    Review,
    ReviewItem,
    WebhookDelivery,
    WebhookEvent,
)
from reviews.outcomes import (
    as_json,
    audit_reviews_of,
    decision_steps_of,
    item_audit,
    item_decision,
    rubric_reviews_of,
)
from reviews.services.bulk import rows_copy

WEBHOOK_QUEUE = "webhooks"
DELIVER_JOB = "reviews.webhooks.jobs.webhook_deliver_job"
ENQUEUE_CHUNK = 200


def webhook_payload(
    *,
    item: ReviewItem,
    project: Project,
    delivery_id: str,
    event: str = WebhookEvent.ITEM_FINAL,
    audit_review: Review | None = None,
    steps: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The body sent for an item's ``event`` (what the API shows once final).

    ``decision`` and ``audit`` have the items API's shapes (``reviews.outcomes``);
    ``audit_review`` is the item's audit review, once in; ``steps`` its marked
    steps when read for many items at once.
    """
    return {
        "event": str(event),
        "delivery_id": delivery_id,
        "project": project.slug,
        "item": {
            "id": item.pk,
            "external_id": item.external_id,
            "status": item.status,
            "model_name": item.model_name,
            "model_version": item.model_version,
            "is_audit": item.is_audit,
            "final_output": item.final_output,
            "decision": as_json(item_decision(item, steps=steps)),
            "audit": as_json(item_audit(item, audit_review)),
            "metadata": item.metadata,
        },
    }


def webhook_deliveries_due(*, project: Project, items: list[ReviewItem]) -> bool:
    """Whether ``webhook_deliveries_create`` writes a row for any of these final items:
    the project has a webhook URL and one of them is not a control."""
    return bool(project.webhook_url) and any(not item.is_control for item in items)


def webhook_deliveries_create(
    *, project: Project, items: list[ReviewItem], now: datetime | None = None
) -> list[str]:
    """Write one pending delivery per final item of ``project``, enqueue them on commit.

    Call inside the transaction that made the items final: the rows commit with
    the items or not at all. Does nothing when the project has no webhook URL.
    On PostgreSQL the rows go in with one COPY and one job is enqueued per
    ``ENQUEUE_CHUNK`` deliveries, no per-item queries, so bulk ingest stays
    fast. Returns the delivery ids.
    """
    items = [item for item in items if not item.is_control]  # never sent to clients
    if not webhook_deliveries_due(project=project, items=items):
        return []
    now = now or timezone.now()
    # An audit sample made final again (an override) may hold its audit already.
    audits = audit_reviews_of(items)
    steps = decision_steps_of(items)
    scored = rubric_reviews_of(items)  # the decision's rubric scores: one query, not one each
    rows = []
    for item in items:
        if item.final_verdict:
            item.rubric_reviews = scored.get(item.pk, [])
        delivery_id = uuid.uuid4()
        payload = webhook_payload(
            item=item,
            project=project,
            delivery_id=str(delivery_id),
            audit_review=audits.get(item.pk),
            steps=steps.get(item.pk),
        )
        rows.append((delivery_id, item.pk, WebhookEvent.ITEM_FINAL, payload))
    return _deliveries_write(project=project, rows=rows, now=now)


def webhook_audit_delivery_create(*, item: ReviewItem, review: Review) -> list[str]:
    """Write the ``item.audited`` delivery of an audit sample whose audit ``review`` is in.

    Call in the transaction that records the audit review; does nothing when the
    project has no webhook URL. Returns the delivery ids (none or one).
    """
    project = item.project
    if not project.webhook_url:
        return []
    delivery_id = uuid.uuid4()
    payload = webhook_payload(
        item=item,
        project=project,
        delivery_id=str(delivery_id),
        event=WebhookEvent.ITEM_AUDITED,
        audit_review=review,
    )
    rows = [(delivery_id, item.pk, WebhookEvent.ITEM_AUDITED, payload)]
    return _deliveries_write(project=project, rows=rows, now=timezone.now())


def webhook_withdrawn_delivery_create(*, item: ReviewItem, reason: str, at: datetime) -> list[str]:
    """Write the ``item.withdrawn`` delivery of a released decision taken back.

    The body is the item as it is now (back in review: no ``final_output``, no
    ``decision``) plus ``withdrawn`` with the reason and time. Call in the
    transaction that withdraws it; nothing without a webhook URL.
    """
    project = item.project
    if not project.webhook_url or item.is_control:
        return []
    delivery_id = uuid.uuid4()
    payload = webhook_payload(
        item=item, project=project, delivery_id=str(delivery_id), event=WebhookEvent.ITEM_WITHDRAWN
    )
    payload["withdrawn"] = {"reason": reason, "at": at.isoformat()}
    rows = [(delivery_id, item.pk, WebhookEvent.ITEM_WITHDRAWN, payload)]
    return _deliveries_write(project=project, rows=rows, now=timezone.now())


def _deliveries_write(*, project: Project, rows: list[tuple], now: datetime) -> list[str]:
    """Insert pending deliveries ``(id, item id, event, payload)``, enqueue them on commit."""
    if connection.vendor == "postgresql":
        _copy_deliveries(project=project, rows=rows, now=now)
    else:
        WebhookDelivery.objects.bulk_create(
            [
                WebhookDelivery(
                    id=delivery_id,
                    project=project,
                    item_id=item_id,
                    event=event,
                    payload=payload,
                    next_attempt_at=now,
                    created_at=now,
                )
                for delivery_id, item_id, event, payload in rows
            ],
            batch_size=1000,
        )
    ids = [str(delivery_id) for delivery_id, _item_id, _event, _payload in rows]
    deliveries_enqueue(ids)
    return ids


def _copy_deliveries(*, project: Project, rows: list[tuple], now: datetime) -> None:
    columns = ("id", "project_id", "item_id", "event", "payload", "status", "attempts")
    columns += ("next_attempt_at", "last_error", "created_at")
    rows_copy(
        WebhookDelivery,
        columns,
        (
            (
                delivery_id,
                project.pk,
                item_id,
                str(event),
                json.dumps(payload, ensure_ascii=False),
                DeliveryStatus.PENDING.value,
                0,
                now,
                "",
                now,
            )
            for delivery_id, item_id, event, payload in rows
        ),
    )


def deliveries_enqueue(delivery_ids: list[str]) -> None:
    """Enqueue sending jobs for ``delivery_ids`` (in chunks) once the transaction commits."""
    for start in range(0, len(delivery_ids), ENQUEUE_CHUNK):
        enqueue_on_commit(WEBHOOK_QUEUE, DELIVER_JOB, delivery_ids[start : start + ENQUEUE_CHUNK])
