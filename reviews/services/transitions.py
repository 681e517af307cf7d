"""The item state machine: every status change is checked here."""

from django.db import transaction
from django.utils import timezone

from reviews.models import ItemStatus, ReviewItem
from reviews.models.items import FINAL_STATUSES
from reviews.services.outbox import webhook_delivery_create_for_item

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


class TransitionError(Exception):
    """A status change the state machine does not allow."""


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
    final stamps ``decided_at``; ``update_fields`` names the other fields the
    caller changed on ``item`` that must be saved with the status.
    """
    if not transaction.get_connection().in_atomic_block:
        raise TransitionError("item_transition must run inside a transaction.")
    check_transition(item.status, to_status)
    item.status = to_status
    fields = {"status", "updated_at", *update_fields}
    if to_status in FINAL_STATUSES and item.decided_at is None:
        item.decided_at = timezone.now()
        fields.add("decided_at")
    item._change_reason = reason
    if user is not None:
        item._history_user = user
    item.save(update_fields=sorted(fields))
    if to_status in FINAL_STATUSES:
        # The webhook outbox row commits with the status change; sent after commit.
        webhook_delivery_create_for_item(item=item)
    return item
