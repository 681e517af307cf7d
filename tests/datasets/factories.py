"""Reviewed data for export tests: items ingested for real, then finalised for real.

Each item goes pending_review -> in_review -> final through the state machine
and ``item_finalize``, with its Review (and correction triplet) rows, under the
item's row lock, as the workspace does.
"""

from django.contrib.auth import get_user_model
from django.db import transaction

from reviews.models import CorrectionTriplet, Review, ReviewItem
from reviews.services.decisions import item_finalize
from reviews.services.transitions import item_transition
from tests.factories import ingest, item_payload


def reviewer_named(username: str):
    user, _created = get_user_model().objects.get_or_create(
        username=username, defaults={"is_staff": True}
    )
    return user


def reviewed(
    project,
    *,
    verdict: str = "approve",
    corrected_output: str | None = None,
    reason_code: str = "",
    severity: str = "none",
    reviewer=None,
    adjudicated: bool = False,
    **payload,
) -> ReviewItem:
    """Ingest one item and make ``verdict`` final on it, with its review rows."""
    reviewer = reviewer or reviewer_named("rev-export")
    if verdict != "approve" and not reason_code:
        reason_code = "factual_error"
    (item,) = ingest(project, item_payload(**payload))
    with transaction.atomic():
        item = ReviewItem.objects.select_for_update().get(pk=item.pk)
        item_transition(item=item, to_status="in_review", reason="claimed", user=reviewer)
        review = Review.objects.create(
            item=item,
            reviewer=reviewer,
            verdict=verdict,
            corrected_output=corrected_output,
            reason_code=reason_code,
            severity=severity,
            note=f"{verdict} by {reviewer.username}",
            seconds_spent=12.5,
        )
        if verdict == "correct":
            CorrectionTriplet.objects.create(
                review=review,
                item=item,
                attribute=f"chars 0-{len(item.output)}",
                old_value=item.output,
                new_value=corrected_output,
            )
        item_finalize(
            item=item,
            verdict=verdict,
            corrected_output=corrected_output,
            reason_code=reason_code,
            severity=severity,
            user=reviewer,
            reason=f"Reviewed: {verdict}",
            adjudicated=adjudicated,
        )
    return item
