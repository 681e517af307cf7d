"""The item lifecycle: one state machine for status, queue membership, final stamp, outbox.

Every path that changes an item's status goes through here: ingest and the
judge route items (``route_apply``, ``items_route``), the workspace and
adjudication move them (``item_transition``), an audit review closes its
sample (``item_audit_close``). Becoming final stamps ``decided_at`` and writes
the webhook outbox row in the same transaction; leaving for adjudication or a
final status takes the item out of the review queue.
"""

from collections import defaultdict
from datetime import datetime

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from simple_history.utils import bulk_update_with_history

from reviews.history_sql import update_with_history
from reviews.models import ItemStatus, Review, ReviewItem
from reviews.models.items import FINAL_STATUSES
from reviews.services.outbox import (
    webhook_audit_delivery_create,
    webhook_deliveries_create,
    webhook_withdrawn_delivery_create,
)
from reviews.services.routing import Route

S = ItemStatus
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING_CHECKS: frozenset(
        {S.PENDING_JUDGE, S.PENDING_REVIEW, S.AUTO_APPROVED, S.AUTO_REJECTED}
    ),
    S.PENDING_JUDGE: frozenset({S.PENDING_REVIEW, S.AUTO_APPROVED}),
    S.PENDING_REVIEW: frozenset({S.IN_REVIEW}),
    S.IN_REVIEW: frozenset(
        {S.PENDING_REVIEW, S.IN_ADJUDICATION, S.APPROVED, S.CORRECTED, S.REJECTED}
    ),
    S.IN_ADJUDICATION: frozenset({S.APPROVED, S.CORRECTED, S.REJECTED}),
    # A final status changes only through an audited adjudication override (reopen).
    S.APPROVED: frozenset({S.IN_ADJUDICATION}),
    S.CORRECTED: frozenset({S.IN_ADJUDICATION}),
    S.REJECTED: frozenset({S.IN_ADJUDICATION}),
    S.AUTO_APPROVED: frozenset({S.IN_ADJUDICATION}),
    S.AUTO_REJECTED: frozenset({S.IN_ADJUDICATION}),
}


# Statuses in which an item is no longer waiting in the review queue.
OUT_OF_QUEUE = frozenset({*FINAL_STATUSES, S.IN_ADJUDICATION})


class TransitionError(Exception):
    """A status change the state machine does not allow."""


def item_shown_awaiting_review(item: ReviewItem, *, held: bool) -> ReviewItem:
    """``item`` as a real item awaiting review reads: queued, "In review" while
    ``held``. In memory only, for pages that must not tell a control (which
    never moves) from real work; never saved.
    """
    item.status = ItemStatus.IN_REVIEW if held else ItemStatus.PENDING_REVIEW
    item.in_queue = True
    return item


def control_routed_to_review(*, item: ReviewItem, why: str) -> None:
    """A judged control to ``pending_review``, never the queue (controls are served by
    their own draw), ``why`` its history line, written without a user as routing is."""
    check_transition(item.status, ItemStatus.PENDING_REVIEW)
    item.status = ItemStatus.PENDING_REVIEW
    item.in_queue = False
    item.updated_at = timezone.now()
    item._change_reason = why
    item._history_user = None
    item.save(update_fields=["status", "in_queue", "priority", "review_reasons", "updated_at"])


def check_transition(from_status: str, to_status: str) -> None:
    if to_status not in ALLOWED_TRANSITIONS.get(from_status, frozenset()):
        raise TransitionError(f"An item cannot go from {from_status} to {to_status}.")


def item_transition(
    *,
    item: ReviewItem,
    to_status: str,
    reason: str,
    user=None,
    update_fields: tuple[str, ...] = (),
) -> ReviewItem:
    """Move ``item`` to ``to_status`` and save it with a history row.

    Call inside a transaction while holding the item's row lock
    (``select_for_update``), so two writers never race on one item. Becoming
    final stamps ``decided_at`` and writes the outbox row; adjudication and
    final statuses leave the queue. ``update_fields`` names the other fields
    the caller changed on ``item`` that must be saved with the status.
    """
    if not transaction.get_connection().in_atomic_block:
        raise TransitionError("item_transition must run inside a transaction.")
    check_transition(item.status, to_status)
    item.status = to_status
    fields = {"status", "updated_at", *update_fields}
    if to_status in FINAL_STATUSES and item.decided_at is None:
        item.decided_at = timezone.now()
        fields.add("decided_at")
    if to_status in OUT_OF_QUEUE and item.in_queue:
        item.in_queue = False
        fields.add("in_queue")
    item._change_reason = reason
    if user is not None:
        item._history_user = user
    update_with_history(item, sorted(fields))
    # The webhook outbox row commits with the status change; sent after commit.
    items_became_final(items=[item])
    return item


# --- routing: leaving pending_checks or pending_judge -------------------------------

# What applying a routing decision changes on an item (saved together, one history row).
ROUTE_FIELDS = (
    "status",
    "in_queue",
    "priority",
    "is_audit",
    "review_reasons",
    "final_output",
    "decided_at",
    "updated_at",
)


def route_apply(*, item: ReviewItem, decision: Route, now: datetime, reason: str) -> None:
    """Put ``item`` where routing sends it; the caller saves it (``ROUTE_FIELDS``).

    For items leaving ``pending_checks`` (ingest, before the insert) or
    ``pending_judge`` (the judge, holding the row locks). Sets status (checked
    by the state machine), queue membership, priority, audit flag and reasons;
    a final status stamps ``decided_at``, and an auto-approval releases the
    output as it is. Outbox rows for final items: ``items_became_final``.
    """
    check_transition(item.status, decision.status)
    item.status = decision.status
    item.in_queue = decision.in_queue
    item.priority = decision.priority
    item.is_audit = decision.is_audit
    item.review_reasons = decision.reasons
    if decision.status in FINAL_STATUSES:
        item.final_output = item.output if decision.status == ItemStatus.AUTO_APPROVED else None
        item.decided_at = now
    item.updated_at = now
    item._change_reason = reason


def items_route(*, entries: list[tuple[ReviewItem, Route, str]]) -> list[ReviewItem]:
    """The bulk form of ``route_apply`` for stored items: save them and their history.

    ``entries`` holds (item, decision, reason). Items routed alike (same status,
    queue membership, priority, audit flag and reasons: nearly all of a judge
    chunk) are saved by one UPDATE per group, their history rows by one bulk
    insert; the final ones get their outbox rows in the same transaction. Call
    inside the transaction holding the items' row locks. Returns the items.
    """
    if not entries:
        return []
    now = timezone.now()
    items = []
    groups: dict[tuple, list[ReviewItem]] = defaultdict(list)
    for item, decision, reason in entries:
        route_apply(item=item, decision=decision, now=now, reason=reason)
        item._history_user = None
        items.append(item)
        key = (item.status, item.in_queue, item.priority, item.is_audit, repr(item.review_reasons))
        groups[key].append(item)
    for group in groups.values():
        ReviewItem.objects.filter(pk__in=[item.pk for item in group]).update(
            **_routed_columns(group[0], now=now)
        )
    # The rows are saved; simple-history writes their history rows (fields=[]: no update).
    bulk_update_with_history(items, ReviewItem, fields=[], batch_size=500, default_date=now)
    items_became_final(items=items, now=now)
    return items


def _routed_columns(item: ReviewItem, *, now: datetime) -> dict:
    """What ``route_apply`` changed on ``item``, as UPDATE values valid for its whole group
    (``ROUTE_FIELDS``; an auto-approval releases each row's own output)."""
    columns = {
        "status": item.status,
        "in_queue": item.in_queue,
        "priority": item.priority,
        "is_audit": item.is_audit,
        "review_reasons": item.review_reasons,
        "updated_at": now,
    }
    if item.status in FINAL_STATUSES:
        columns["decided_at"] = now
        columns["final_output"] = F("output") if item.status == ItemStatus.AUTO_APPROVED else None
    return columns


def items_became_final(*, items: list[ReviewItem], now: datetime | None = None) -> None:
    """Write the webhook outbox rows of those ``items`` that are final (per project).

    Call in the transaction that made them final, so the rows commit with the
    status or not at all; the sending jobs are enqueued after commit.
    """
    final: dict[int, list[ReviewItem]] = defaultdict(list)
    for item in items:
        if item.status in FINAL_STATUSES:
            final[item.project_id].append(item)
    for project_items in final.values():
        webhook_deliveries_create(project=project_items[0].project, items=project_items, now=now)


def item_audit_close(*, item: ReviewItem, review: Review, reason: str, user=None) -> ReviewItem:
    """Take an audited final item out of the queue once its audit ``review`` is in.

    Its status stays final (the audit measures, it does not decide); the
    client hears the outcome from an ``item.audited`` webhook, written here so
    it commits with the review. Call inside the transaction holding the item's
    row lock.
    """
    item.in_queue = False
    item._change_reason = reason
    if user is not None:
        item._history_user = user
    item.save(update_fields=["in_queue", "updated_at"])
    webhook_audit_delivery_create(item=item, review=review)
    return item


def item_audit_reopen(*, item: ReviewItem, reason: str, user=None) -> ReviewItem:
    """Put an audited item back in the queue: its audit review was taken back (undo).

    The inverse of ``item_audit_close``, allowed only while no ``item.audited``
    webhook was written for that review (the caller checks). Call inside the
    transaction holding the item's row lock.
    """
    item.in_queue = True
    item._change_reason = reason[:100]
    if user is not None:
        item._history_user = user
    item.save(update_fields=["in_queue", "updated_at"])
    return item


# --- withdrawal: a released human decision taken back --------------------------------

WITHDRAWABLE = frozenset({S.APPROVED, S.CORRECTED, S.REJECTED})
WITHDRAW_FIELDS = (
    "status",
    "in_queue",
    "final_output",
    "final_verdict",
    "final_reason_code",
    "final_severity",
    "decided_at",
    "updated_at",
)


def item_withdraw(*, item: ReviewItem, reason: str, user=None) -> ReviewItem:
    """Take back a released human decision: the item returns to the review queue.

    The audited exception to "a final status never changes" besides reopening:
    its deciding review was quarantined. The item becomes ``pending_review``
    and claimable by someone else, loses its final output and decision (the
    next decision stamps a new ``decided_at``), and the client gets an
    ``item.withdrawn`` webhook in the same transaction. Call inside the
    transaction holding the item's row lock.
    """
    if item.status not in WITHDRAWABLE or item.adjudicated:
        raise TransitionError(f"A {item.status} item's decision cannot be withdrawn.")
    now = timezone.now()
    item.status = S.PENDING_REVIEW
    item.in_queue = True
    item.final_output = None
    item.final_verdict = item.final_reason_code = item.final_severity = ""
    item.decided_at = None
    item.updated_at = now
    item._change_reason = reason[:100]
    if user is not None:
        item._history_user = user
    item.save(update_fields=list(WITHDRAW_FIELDS))
    webhook_withdrawn_delivery_create(item=item, reason=reason, at=now)
    return item
