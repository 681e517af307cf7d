"""Undo: a reviewer takes back the decision they just made, within the project's window.

The review is withdrawn (deleted, so simple-history keeps it with the change
reason), the item goes back to where it was before the decision and the
reviewer's claim on it is restored. Refused as soon as the decision has
consequences someone else can see: another reviewer or senior acted on the
item, the decision opened an adjudication case, or it made the item final and
a webhook told the client (then only a senior's reopen changes it).
"""

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from adjudication.models import AdjudicationCase
from reviews.errors import Conflict, NotAllowed
from reviews.models import (
    Assignment,
    AssignmentState,
    ItemStatus,
    Review,
    ReviewItem,
    WebhookDelivery,
)
from reviews.services.transitions import item_audit_reopen, item_transition, item_withdraw
from reviews.workspace.services import assignment_release, lease_for


class UndoRefused(Conflict):
    """An undo the rules refuse; the message says why and what to do instead."""

    code = "undo_refused"


def undo_deadline(review: Review, project) -> datetime | None:
    """When ``review`` stops being undoable by time alone (None: the project has no undo)."""
    if not project.undo_seconds:
        return None
    return review.created_at + timedelta(seconds=project.undo_seconds)


def _refusal(*, item: ReviewItem, review: Review, now) -> str:
    """Why ``review`` cannot be undone now, or "" when it can. Call holding the item lock."""
    project = item.project
    deadline = undo_deadline(review, project)
    if deadline is None:
        return "This project does not allow undoing decisions."
    if now > deadline:
        return (
            f"Undo is possible for {project.undo_seconds} seconds after a decision; that "
            "time has passed. Ask a senior reviewer to reopen the item if it was wrong."
        )
    if review.quarantine_id is not None:
        return "This review was quarantined; it no longer counts and cannot be undone."
    if review.assignment_id is None:
        return "This review has no claim to restore; it cannot be undone."
    since = review.created_at
    others_reviewed = (
        Review.objects.filter(item=item, created_at__gte=since).exclude(pk=review.pk).exists()
    )
    others_claimed = (
        Assignment.objects.filter(item=item, claimed_at__gte=since)
        .exclude(reviewer_id=review.reviewer_id)
        .exists()
    )
    if others_reviewed or others_claimed:
        return "Someone else has acted on this item since your decision; it cannot be undone."
    if AdjudicationCase.objects.filter(item=item, opened_at__gte=since).exists():
        return (
            "Your decision sent the item to adjudication; a senior reviewer decides it now, "
            "so it cannot be undone."
        )
    told = WebhookDelivery.objects.filter(item=item, created_at__gte=since).exists()
    if told:
        if item.is_final and not review.is_audit:
            return (
                "Your decision made the item final and a webhook told the client; it cannot "
                "be undone. Ask a senior reviewer to reopen it (Adjudication, Reopen an item)."
            )
        return (
            "A webhook already told the client about your audit; it cannot be undone. Ask a "
            "senior reviewer to reopen the item (Adjudication, Reopen an item)."
        )
    return ""


@transaction.atomic
def review_undo(*, review_id: int, reviewer) -> Assignment:
    """Withdraw ``reviewer``'s review ``review_id`` and give them back their claim on the item.

    Allowed for the review's own author only (``NotAllowed`` otherwise), within
    ``Project.undo_seconds`` of the decision and before anyone else acted on
    the item (``UndoRefused`` naming the reason: window passed, another review
    or claim since, an adjudication case opened, a webhook sent, quarantined).

    In one transaction, holding the item's row lock (then the claim's): the
    review is deleted with a history row "Undone by the reviewer"; a decision
    it made final is withdrawn (``item_withdraw``: no webhook had been written,
    so none is sent); an audit goes back to the queue; the claim becomes active
    again with a fresh lease, and any other claim the reviewer took in the
    project since (the "next" item) goes back to the queue.
    """
    item = (
        ReviewItem.objects.select_for_update(of=("self",))
        .select_related("project")
        .filter(reviews__pk=review_id)
        .first()
    )
    if item is None:
        raise NotAllowed("No such review.")
    # Read again under the item lock: a concurrent undo may have withdrawn it meanwhile.
    review = Review.objects.select_for_update().filter(pk=review_id).first()
    if review is None:
        raise NotAllowed("No such review.")
    if review.reviewer_id != reviewer.pk:
        raise NotAllowed("Only the reviewer who made a decision may undo it.")
    now = timezone.now()
    refusal = _refusal(item=item, review=review, now=now)
    if refusal:
        raise UndoRefused(refusal)
    assignment = Assignment.objects.select_for_update().get(pk=review.assignment_id)
    project = item.project

    who = reviewer.get_username()
    if review.is_audit:
        item_audit_reopen(item=item, reason=f"Audit review undone by {who}", user=reviewer)
    elif item.is_final:
        item_withdraw(item=item, reason=f"Decision undone by {who}", user=reviewer)
    review._history_user = reviewer
    review._change_reason = "Undone by the reviewer"
    review.delete()

    for other in Assignment.objects.filter(
        reviewer=reviewer,
        item__project=project,
        state=AssignmentState.ACTIVE,
        lease_expires_at__gt=now,
    ).exclude(pk=assignment.pk):
        assignment_release(assignment_id=other.pk, reviewer=reviewer)

    assignment.state = AssignmentState.ACTIVE
    assignment.closed_at = None
    assignment.lease_expires_at = now + lease_for(project)
    assignment._history_user = reviewer
    assignment._change_reason = "Restored: the reviewer undid their decision"
    assignment.save(update_fields=["state", "closed_at", "lease_expires_at"])
    if item.status == ItemStatus.PENDING_REVIEW and not item.is_control:
        item_transition(
            item=item,
            to_status=ItemStatus.IN_REVIEW,
            reason=f"Claim restored after {who} undid a decision",
            user=reviewer,
        )
    return assignment
