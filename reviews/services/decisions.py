"""Final decisions on items: the one place an item becomes approved, corrected or rejected."""

from reviews.models import ItemStatus, ReviewItem, Verdict
from reviews.services.transitions import item_transition

VERDICT_STATUS = {
    Verdict.APPROVE: ItemStatus.APPROVED,
    Verdict.CORRECT: ItemStatus.CORRECTED,
    Verdict.REJECT: ItemStatus.REJECTED,
}


def item_finalize(
    *,
    item: ReviewItem,
    verdict: str,
    corrected_output: str | None,
    reason_code: str,
    severity: str,
    user,
    reason: str,
    adjudicated: bool = False,
    preference: str = "",
    candidate=None,
) -> ReviewItem:
    """Make a human decision final on ``item`` and release its output.

    Approve releases the original output, correct releases ``corrected_output``,
    reject releases nothing. A comparison's decision is a ``preference``
    (reviews.models.comparisons): approving the winning ``candidate`` releases
    its output, correcting it the correction; a tie (approve, no candidate) and
    all bad (reject) release nothing. Call inside a transaction holding the item's row
    lock; the status change goes through the state machine and writes one
    history row with ``user`` and ``reason``.
    """
    if verdict == Verdict.CORRECT and corrected_output is None:
        raise ValueError("A correction needs the corrected output.")
    approved = item.output
    if item.is_comparison:
        approved = candidate.output if candidate is not None else None
    item.final_output = {
        Verdict.APPROVE: approved,
        Verdict.CORRECT: corrected_output,
        Verdict.REJECT: None,
    }[verdict]
    item.final_preference = preference
    item.final_candidate = candidate
    item.final_verdict = verdict
    item.final_reason_code = reason_code
    item.final_severity = severity
    item.adjudicated = adjudicated
    return item_transition(
        item=item,
        to_status=VERDICT_STATUS[verdict],
        reason=reason,
        user=user,
        update_fields=(
            "final_output",
            "final_verdict",
            "final_reason_code",
            "final_severity",
            "adjudicated",
            "final_preference",
            "final_candidate",
        ),
    )
