"""Quarantine: a reviewer's decisions over a period marked untrusted.

The quarantined reviews stop counting everywhere the platform counts reviews
(``Review.objects.trusted()``): the claim query, double-review settlement,
exports' review lists and triplets. Items whose released decision rested on
them are withdrawn (``item_withdraw``): back to the queue for someone else,
history saying why, an ``item.withdrawn`` webhook to the client, and left out
of every export built afterwards until re-reviewed. Adjudicated decisions
(a senior's call) and items still in adjudication stay as they are; audit
reviews and control reviews are measurements, not decisions, and are left
alone.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from simple_history.utils import bulk_update_with_history

from reviews.access import Capability, may
from reviews.errors import DomainError, NotAllowed
from reviews.models import Project, Quarantine, Review, ReviewItem
from reviews.services.transitions import WITHDRAWABLE, item_withdraw


@dataclass(frozen=True)
class QuarantineOutcome:
    quarantine: Quarantine
    reviews: int
    withdrawn: list[int]


@transaction.atomic
def quarantine_create(
    *,
    project: Project,
    reviewer,
    start: datetime,
    end: datetime,
    reason: str,
    by=None,
) -> QuarantineOutcome:
    """Quarantine ``reviewer``'s decisions in ``project`` made in [start, end).

    ``by`` is the project admin who asks (``NotAllowed`` otherwise); None is
    the control-accuracy rule. Locks the affected items in id order, marks
    the reviews, and withdraws each released decision that rested on one
    (approved, corrected or rejected by reviewers, not adjudicated). Reviews
    already quarantined are left as they are. One transaction.
    """
    if by is not None and not may(by, Capability.ADMINISTER, project):
        raise NotAllowed("Only a project admin may quarantine a reviewer's decisions.")
    if start >= end:
        raise DomainError("The period must start before it ends.", detail={"end": ["After start."]})
    reason = reason.strip()
    if not reason:
        raise DomainError("Say why.", detail={"reason": ["A reason is required."]})
    quarantine = Quarantine(
        project=project,
        reviewer=reviewer,
        start=start,
        end=end,
        reason=reason,
        by_rule=by is None,
        created_by=by,
    )
    quarantine._history_user = by
    quarantine.save()
    reviews = list(
        Review.objects.trusted()
        .filter(
            item__project=project,
            reviewer=reviewer,
            created_at__gte=start,
            created_at__lt=end,
            is_audit=False,
            item__is_control=False,
        )
        .order_by("item_id")
    )
    items = {
        item.pk: item
        for item in ReviewItem.objects.select_for_update(of=("self",))
        .select_related("project")
        .filter(pk__in=[review.item_id for review in reviews])
        .order_by("pk")
    }
    who = f"{reviewer.get_username()}'s decisions of {start:%Y-%m-%d} to {end:%Y-%m-%d}"
    why = f"Quarantined {who}: {reason}"
    for review in reviews:
        review.quarantine = quarantine
        review._history_user = by
        review._change_reason = why[:100]
    bulk_update_with_history(reviews, Review, fields=["quarantine"], batch_size=500)
    withdrawn = []
    for review in reviews:
        item = items[review.item_id]
        if item.status in WITHDRAWABLE and not item.adjudicated:
            item_withdraw(item=item, reason=why, user=by)
            withdrawn.append(item.pk)
    quarantine.reviews_count = len(reviews)
    quarantine.items_withdrawn = len(withdrawn)
    quarantine.save(update_fields=["reviews_count", "items_withdrawn"])
    return QuarantineOutcome(quarantine=quarantine, reviews=len(reviews), withdrawn=withdrawn)


def quarantine_rule_start(*, project: Project, reviewer, now: datetime) -> datetime:
    """Where the rule's look-back begins: the project's days back, after any earlier quarantine."""
    start = now - timedelta(days=project.quarantine_lookback_days)
    last = (
        Quarantine.objects.filter(project=project, reviewer=reviewer, end__gt=start)
        .order_by("-end")
        .values_list("end", flat=True)
        .first()
    )
    return max(start, last) if last else start
