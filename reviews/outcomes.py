"""What a client is told about an item's outcome: its decision and its audit.

One shape for the items API and the webhook payload, so the two never drift.
A human decision carries the reviewer's (or senior's) verdict, reason code and
severity, and the steps the reviewers marked wrong (``steps``: turn number,
tool call id or "", reason, severity, note). An automatic one carries
``auto_approve`` or ``auto_reject`` and the reasons routing recorded:
``check_failed:<check>`` for each blocking check that failed (the check's
message is in the item's checks), ``no_trigger`` when monitor mode released
it, and ``audit_sample`` when it was also drawn for an audit. An audit sample
carries the outcome of its audit review once it is in: who audited, whether
they agreed with the release, their reason and when.
A human decision also carries the rubric scores of the reviews behind it
(``rubric_scores``: who scored and their scores per criterion key).
"""

from datetime import datetime
from typing import Any

from reviews.models import ItemStatus, Review, ReviewItem, StepVerdict, Verdict
from reviews.principals import principal_label

AUTO_APPROVE = "auto_approve"
AUTO_REJECT = "auto_reject"
REASON_NO_TRIGGER = "no_trigger"
AUDIT_PENDING = "pending"
AUDIT_DONE = "done"


def decision_steps_of(items: list[ReviewItem]) -> dict[int, list[dict[str, Any]]]:
    """The marked steps of each human-decided item among ``items`` (one query; none when
    no item was decided by people).

    The marks of the reviews that count (``StepVerdict.objects.counted``),
    ordered by step, then part.
    """
    ids = [item.pk for item in items if item.is_final and item.final_verdict and item.pk]
    steps: dict[int, list[dict[str, Any]]] = {pk: [] for pk in ids}
    if not ids:
        return steps
    rows = (
        StepVerdict.objects.counted()
        .filter(item_id__in=ids)
        .order_by("item_id", "step", "part", "id")
        .values_list("item_id", "step", "part", "reason", "severity", "note")
    )
    for item_id, step, part, reason, severity, note in rows:
        steps[item_id].append(
            {"step": step, "part": part, "reason": reason, "severity": severity, "note": note}
        )
    return steps


def item_decision(
    item: ReviewItem, *, steps: list[dict[str, Any]] | None = None
) -> dict[str, Any] | None:
    """The final decision on ``item``, or None while it is not final.

    ``steps``: the item's marked steps when the caller read them for many items
    at once (``decision_steps_of``); read here otherwise.

    Lists attach ``item.rubric_reviews`` per page (``rubric_reviews_of``: one
    query); a single human decision reads its reviews' scores itself.
    """
    if not item.is_final:
        return None
    verdict = item.final_verdict
    reasons: list[str] = []
    if verdict and steps is None:
        steps = decision_steps_of([item])[item.pk]
    if not verdict:
        approved = item.status == ItemStatus.AUTO_APPROVED
        verdict = AUTO_APPROVE if approved else AUTO_REJECT
        reasons = [str(reason) for reason in item.review_reasons]
        if approved:
            reasons.insert(0, REASON_NO_TRIGGER)
    return {
        "verdict": verdict,
        "automatic": verdict in (AUTO_APPROVE, AUTO_REJECT),
        "reasons": reasons,
        "reason_code": item.final_reason_code,
        "severity": item.final_severity,
        "adjudicated": item.adjudicated,
        "decided_at": item.decided_at,
        "steps": steps or [],
        "rubric_scores": _rubric_scores(item) if item.final_verdict else [],
    }


def _rubric_scores(item: ReviewItem) -> list[dict[str, Any]]:
    reviews = getattr(item, "rubric_reviews", None)
    if reviews is None:
        reviews = rubric_reviews_of([item]).get(item.pk, [])
    return [
        {"reviewer": principal_label(review.reviewer), "scores": review.rubric_scores}
        for review in reviews
    ]


def rubric_reviews_of(items: list[ReviewItem]) -> dict[int, list[Review]]:
    """The scored, trusted, non-audit reviews of each humanly decided item (one query).

    Oldest first; none (and no query) when no item of ``items`` has a human decision.
    """
    ids = [item.pk for item in items if item.final_verdict and item.pk is not None]
    if not ids:
        return {}
    found: dict[int, list[Review]] = {}
    reviews = (
        Review.objects.trusted()
        .filter(item_id__in=ids, is_audit=False)
        .exclude(rubric_scores={})
        .select_related("reviewer")
        .order_by("item_id", "created_at", "id")
    )
    for review in reviews:
        found.setdefault(review.item_id, []).append(review)
    return found


def item_audit(item: ReviewItem, review: Review | None) -> dict[str, Any] | None:
    """The audit of an audit sample (``review``: its audit review, if in); None for others."""
    if not item.is_audit:
        return None
    if review is None:
        return {
            "status": AUDIT_PENDING,
            "audited_by": None,
            "agreed": None,
            "verdict": None,
            "reason_code": "",
            "severity": "",
            "note": "",
            "corrected_output": None,
            "audited_at": None,
        }
    return {
        "status": AUDIT_DONE,
        "audited_by": principal_label(review.reviewer),
        "agreed": review.verdict == Verdict.APPROVE,
        "verdict": review.verdict,
        "reason_code": review.reason_code,
        "severity": review.severity,
        "note": review.note,
        "corrected_output": review.corrected_output,
        "audited_at": review.created_at,
    }


def audit_reviews_of(items: list[ReviewItem]) -> dict[int, Review]:
    """The audit review of each audit sample among ``items`` that has one (one query)."""
    ids = [item.pk for item in items if item.is_audit and item.pk is not None]
    if not ids:
        return {}
    reviews = Review.objects.filter(item_id__in=ids, is_audit=True).select_related("reviewer")
    return {review.item_id: review for review in reviews}


def as_json(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """``value`` with its datetimes in ISO 8601, for a JSON body stored as it is."""
    if value is None:
        return None
    return {
        key: child.isoformat() if isinstance(child, datetime) else child
        for key, child in value.items()
    }
