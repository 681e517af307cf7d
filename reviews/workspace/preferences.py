"""Preferences: a reviewer's decision on a comparison item (best candidate, tie, all bad).

The claim rules are the single items' (``reviews.workspace.services``): the
same claim lock, the same refusals of a double submit, a stale tab or an
expired lease, the same blind double review handed to adjudication.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone

from adjudication.services import reviews_settle
from reviews.models import AssignmentState, Candidate, ItemStatus, Review
from reviews.services.comparisons import (
    PreferenceInput,
    preference_decide,
    preference_describe,
)
from reviews.services.decisions import item_finalize
from reviews.services.search import item_notes_append
from reviews.services.transitions import item_transition
from reviews.workspace.services import (
    NOTE_MAX_CHARS,
    ReviewInvalid,
    StaleAssignment,
    _close,
    _history,
    _lock_claim,
    _return_if_unclaimed,
    reviews_needed,
)


def candidates_in_claim_order(assignment, candidates: list[Candidate]) -> list[Candidate]:
    """``candidates`` in the order this claim shows them (drawn at the claim)."""
    by_id = {candidate.pk: candidate for candidate in candidates}
    shown = [by_id[pk] for pk in assignment.candidate_order if pk in by_id]
    # A claim made before its order existed shows the rest in the submitted order.
    rest = sorted(
        (c for c in candidates if c.pk not in set(assignment.candidate_order)),
        key=lambda c: c.position,
    )
    return shown + rest


@transaction.atomic
def preference_submit(
    *, assignment_id: int, reviewer, data: PreferenceInput, active_seconds: float | None = None
) -> Review:
    """Record ``reviewer``'s preference on the comparison of their claim, exactly once.

    Refused (``StaleAssignment``) like ``review_submit`` unless the claim is
    active, the caller's own and unexpired. Refused (``ReviewInvalid``,
    messages per field) when ``preference_decide`` refuses it: the winner must
    be one of the item's candidates (a tampered id names nothing), all bad
    needs a reason and a severity, a corrected winner the correction rules.
    The review stores the preference, the winner, the order the candidates were
    shown in, reason, severity and note; its verdict is approve (winner, tie),
    correct (corrected winner) or reject (all bad). With one review required
    the preference is final (the winner's output or its correction is the gold
    answer); with two, the second goes to ``reviews_settle`` (final on
    agreement, an adjudication case on disagreement). Holds the item's lock.
    """
    now = timezone.now()
    item, assignment = _lock_claim(assignment_id=assignment_id, reviewer=reviewer, now=now)
    project = item.project
    if item.is_final:
        raise StaleAssignment("This item was already decided; nothing was recorded.")
    if not item.is_comparison:
        raise ReviewInvalid(
            "This item has one output.", detail={"preference": ["Approve, reject or correct it."]}
        )
    candidates = list(Candidate.objects.filter(item=item).order_by("position"))
    decision, errors = preference_decide(project=project, candidates=candidates, data=data)
    if len(data.note) > NOTE_MAX_CHARS:
        errors["note"] = [f"At most {NOTE_MAX_CHARS} characters."]
    if errors:
        raise ReviewInvalid("Please correct the errors below.", detail=errors)

    elapsed = max(0.0, (now - assignment.claimed_at).total_seconds())
    if active_seconds is not None and active_seconds >= 0:
        elapsed = min(elapsed, float(active_seconds))
    reason = preference_describe(
        preference=decision.preference, winner=decision.winner, verdict=decision.verdict
    )
    review = Review(
        item=item,
        reviewer=reviewer,
        assignment=assignment,
        verdict=decision.verdict,
        corrected_output=decision.corrected_output,
        reason_code=decision.reason_code,
        note=data.note.strip(),
        severity=decision.severity,
        seconds_spent=round(elapsed, 1),
        preference=decision.preference,
        winner=decision.winner,
        candidate_order=[c.pk for c in candidates_in_claim_order(assignment, candidates)],
    )
    _history(review, user=reviewer, reason=reason[:100])
    try:
        review.save()
    except IntegrityError as exc:
        raise StaleAssignment(
            "You already reviewed this item; it was recorded once and this submit was ignored."
        ) from exc
    # Blind: the claim's and the item's history say a review came in, never what it said.
    _close(
        assignment,
        state=AssignmentState.SUBMITTED,
        user=reviewer,
        reason="Review submitted",
        now=now,
    )
    if item.status == ItemStatus.PENDING_REVIEW:
        item_transition(
            item=item, to_status=ItemStatus.IN_REVIEW, reason="Review submitted", user=reviewer
        )
    required = reviews_needed(item, project)
    reviews = (
        [review]
        if required == 1
        else list(Review.objects.trusted().filter(item=item).order_by("created_at", "pk"))
    )
    if len(reviews) < required:
        _return_if_unclaimed(
            item,
            now=now,
            user=reviewer,
            reason=f"Review {len(reviews)} of {required} submitted; waiting for another reviewer",
        )
        return review
    for settled in reviews:
        item_notes_append(item=item, note=settled.note)
    if required == 1:
        item_finalize(
            item=item,
            verdict=review.verdict,
            corrected_output=review.corrected_output,
            reason_code=review.reason_code,
            severity=review.severity,
            user=reviewer,
            reason=reason,
            preference=review.preference,
            candidate=review.winner,
        )
    else:
        reviews_settle(item=item, reviews=reviews[:2], user=reviewer)
    return review
