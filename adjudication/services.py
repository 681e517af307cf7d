"""Adjudication writes: settle two reviews, open, claim, decide and reopen cases.

Lock order, everywhere: the item row, then the case row, then the claim row.
``review_submit`` already holds the item lock when it calls ``reviews_settle``,
so nothing here can deadlock against a reviewer submitting.
"""

from datetime import timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from adjudication.agreement import preferences_agree, reviews_agree
from adjudication.models import (
    AdjudicationCase,
    CaseClaim,
    CaseKind,
    CaseStatus,
    ClaimState,
    Upheld,
)
from adjudication.selectors import senior_may_adjudicate
from reviews.access import Capability, may, projects_where
from reviews.errors import Conflict, DomainError, NotAllowed
from reviews.models import Candidate, ItemStatus, Review, ReviewItem, Severity, Verdict
from reviews.models.work import SEVERITY_RANK
from reviews.services.comparisons import PreferenceDecision, PreferenceInput, preference_decide
from reviews.services.decisions import item_finalize
from reviews.services.review_rules import corrected_output_stored, decision_validate
from reviews.services.transitions import item_transition


def _severity_rank(*severities: str) -> int:
    return max((SEVERITY_RANK.get(s, 0) for s in severities if s), default=0)


def _higher_severity(a: str, b: str) -> str:
    return a if SEVERITY_RANK.get(a, 0) >= SEVERITY_RANK.get(b, 0) else b


def _in_order(reviews) -> tuple[Review, Review]:
    first, second = sorted(reviews, key=lambda review: (review.created_at, review.pk))
    return first, second


def _preference_label(review: Review) -> str:
    """A preference in a history reason: by candidate id, never by model."""
    if review.winner_id is not None:
        corrected = ", corrected" if review.verdict == Verdict.CORRECT else ""
        return f"candidate {review.winner_id}{corrected}"
    return review.preference


def reviews_settle(*, item: ReviewItem, reviews: list[Review], user) -> None:
    """Settle an item whose second blind review has just been stored.

    Call from ``review_submit`` inside its transaction, holding the item's row
    lock, with the item in ``in_review`` and its two reviews (by different
    reviewers). Agreement (same verdict; for corrections the same corrected
    output after whitespace normalisation, or as parsed JSON when the original
    output is a JSON document) makes the item final at once with review A's
    decision and the higher of the two severities. Disagreement moves the item
    to ``in_adjudication`` and opens an ``AdjudicationCase`` for a senior.
    ``user`` (the second reviewer) is the history user of either change.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("reviews_settle must run inside review_submit's transaction.")
    if len(reviews) != 2:
        raise ValueError(f"Reconciling needs exactly two reviews, got {len(reviews)}.")
    review_a, review_b = _in_order(reviews)
    if review_a.reviewer_id == review_b.reviewer_id:
        raise ValueError("The two reviews of an item must come from different reviewers.")
    if item.is_comparison:
        agree = preferences_agree(review_a=review_a, review_b=review_b)
        said_a, said_b = _preference_label(review_a), _preference_label(review_b)
    else:
        agree = reviews_agree(
            original=item.output,
            verdict_a=review_a.verdict,
            output_a=review_a.corrected_output,
            verdict_b=review_b.verdict,
            output_b=review_b.corrected_output,
        )
        said_a, said_b = review_a.verdict, review_b.verdict
    if agree:
        item_finalize(
            item=item,
            verdict=review_a.verdict,
            corrected_output=review_a.corrected_output,
            reason_code=review_a.reason_code or review_b.reason_code,
            severity=_higher_severity(review_a.severity, review_b.severity),
            user=user,
            reason=f"Two blind reviews agree: {said_a}",
            preference=review_a.preference,
            candidate=review_a.winner,
        )
        return
    item_transition(
        item=item,
        to_status=ItemStatus.IN_ADJUDICATION,
        reason=f"Two blind reviews disagree ({said_a} / {said_b})",
        user=user,
    )
    case = AdjudicationCase(
        item=item,
        project_id=item.project_id,
        kind=CaseKind.DISAGREEMENT,
        review_a=review_a,
        review_b=review_b,
        severity_rank=_severity_rank(review_a.severity, review_b.severity),
        opened_at=timezone.now(),
        open_reason=f"Review A: {said_a}; review B: {said_b}.",
    )
    case._history_user = user
    case._change_reason = "Opened: two blind reviews disagree"
    case.save()


def _live_claims(now):
    return CaseClaim.objects.filter(
        case=OuterRef("pk"), state=ClaimState.ACTIVE, lease_expires_at__gt=now
    )


def _expire_stale_claims(*, case: AdjudicationCase, now) -> None:
    """Close claims on ``case`` whose lease ran out. Call holding the case row lock."""
    for stale in CaseClaim.objects.select_for_update().filter(
        case=case, state=ClaimState.ACTIVE, lease_expires_at__lte=now
    ):
        stale.state = ClaimState.EXPIRED
        stale.closed_at = now
        stale._change_reason = "Lease expired"
        stale.save(update_fields=["state", "closed_at"])


def _new_claim(*, case: AdjudicationCase, user, now) -> CaseClaim:
    claim = CaseClaim(
        case=case,
        senior=user,
        claimed_at=now,
        lease_expires_at=now + timedelta(minutes=case.project.lease_minutes),
    )
    claim._history_user = user
    claim._change_reason = "Claimed"
    claim.save()
    return claim


@transaction.atomic
def case_claim_next(*, user, project=None) -> CaseClaim | None:
    """Give ``user`` the next open case they may decide, or None when there is none.

    A live claim the senior already holds comes back first. Otherwise the
    highest severity, then oldest, open case of a project where ``user`` is a
    senior (or admin, or a superuser), without a live claim, and none of whose
    reviews is ``user``'s. ``SELECT … FOR UPDATE SKIP LOCKED`` on the case row
    lets concurrent seniors claim different cases without waiting.
    """
    now = timezone.now()
    own = CaseClaim.objects.select_related("case").filter(
        senior=user, state=ClaimState.ACTIVE, lease_expires_at__gt=now, case__status="open"
    )
    if project is not None:
        own = own.filter(case__project=project)
    claim = own.order_by("claimed_at").first()
    if claim is not None:
        return claim
    projects = projects_where(user, Capability.ADJUDICATE)
    if project is not None:
        projects = projects.filter(pk=project.pk)
    case = (
        AdjudicationCase.objects.open()
        .filter(project__in=projects)
        .not_reviewed_by(user)
        .exclude(Exists(_live_claims(now)))
        .in_queue_order()
        .select_for_update(skip_locked=True, of=("self",))
        .first()
    )
    if case is None:
        return None
    _expire_stale_claims(case=case, now=now)
    return _new_claim(case=case, user=user, now=now)


def _lock_case(case_id: int) -> tuple[ReviewItem, AdjudicationCase]:
    """Lock the item, then the case (the module's lock order)."""
    item_id = AdjudicationCase.objects.values_list("item_id", flat=True).get(pk=case_id)
    item = ReviewItem.objects.select_for_update().select_related("project").get(pk=item_id)
    case = (
        AdjudicationCase.objects.select_for_update(of=("self",))
        .select_related("review_a__reviewer", "review_b__reviewer", "project")
        .get(pk=case_id)
    )
    return item, case


@transaction.atomic
def case_claim(*, case: AdjudicationCase, user) -> CaseClaim:
    """Claim one chosen case for ``user`` (from the queue page).

    Refused when ``user`` may not adjudicate it (not a senior of the project,
    or one of its reviewers), when it is decided, or when another senior holds
    a live claim. A live claim of ``user``'s own is returned as it is.
    """
    _item, case = _lock_case(case.pk)
    if not senior_may_adjudicate(user=user, case=case):
        raise NotAllowed("You may not adjudicate this case.")
    if case.status != CaseStatus.OPEN:
        raise Conflict("This case is already decided.")
    now = timezone.now()
    live = (
        CaseClaim.objects.select_for_update()
        .filter(case=case, state=ClaimState.ACTIVE, lease_expires_at__gt=now)
        .first()
    )
    if live is not None:
        if live.senior_id == user.pk:
            return live
        raise Conflict(f"{live.senior} is working on this case.")
    _expire_stale_claims(case=case, now=now)
    return _new_claim(case=case, user=user, now=now)


@transaction.atomic
def case_claim_release(*, claim: CaseClaim, user) -> CaseClaim:
    """Give a case back to the queue. Only the claim's senior may; releasing twice is a no-op."""
    claim = CaseClaim.objects.select_for_update().get(pk=claim.pk)
    if claim.senior_id != user.pk:
        raise NotAllowed("This is not your claim.")
    if claim.state == ClaimState.ACTIVE:
        claim.state = ClaimState.RELEASED
        claim.closed_at = timezone.now()
        claim._history_user = user
        claim._change_reason = "Released"
        claim.save(update_fields=["state", "closed_at"])
    return claim


# The senior's decision form names two of the shared decision fields its own way.
_DECISION_FIELDS = {"corrected_output": "final_output", "note": "rationale"}


def _decision_from(
    *,
    case: AdjudicationCase,
    item: ReviewItem,
    upheld: str,
    verdict: str,
    final_output: str | None,
    reason_code: str,
    severity: str,
    rationale: str,
) -> tuple[str, str | None, str, str]:
    """The (verdict, corrected output, reason code, severity) a decision stands for.

    A rationale is always required. The senior's own decision (``neither``)
    follows the same rules as a review (``decision_validate``), the rationale
    standing for the review's note; all refusals come back at once, per field.
    """
    errors: dict[str, list[str]] = {}
    if upheld in (Upheld.A, Upheld.B):
        review = case.review_a if upheld == Upheld.A else case.review_b
        if review is None:
            errors["upheld"] = ["Write the final decision instead."]
    elif upheld == Upheld.NEITHER:
        found = decision_validate(
            project=item.project,
            original=item.output,
            verdict=verdict,
            corrected_output=final_output,
            reason_code=reason_code,
            severity=severity,
            note=rationale,
        )
        errors = {_DECISION_FIELDS.get(field, field): messages for field, messages in found.items()}
    else:
        errors["upheld"] = ["Choose A, B or neither."]
    if not rationale:
        errors.setdefault("rationale", ["Explain the decision."])
    if errors:
        only_rationale = set(errors) == {"rationale"}
        message = "A rationale is required." if only_rationale else "The decision is incomplete."
        raise DomainError(message, detail=errors)
    if upheld in (Upheld.A, Upheld.B):
        return review.verdict, review.corrected_output, review.reason_code, review.severity
    if verdict == Verdict.APPROVE:
        return verdict, None, "", Severity.NONE
    if verdict == Verdict.CORRECT:
        stored = corrected_output_stored(original=item.output, corrected_output=final_output)
        return verdict, stored, reason_code, severity
    return verdict, None, reason_code, severity


def _preference_from(
    *, case: AdjudicationCase, item: ReviewItem, upheld: str, data: PreferenceInput
) -> PreferenceDecision:
    """What a senior's decision on a comparison case stands for; ``DomainError`` per field."""
    errors: dict[str, list[str]] = {}
    decision = None
    if upheld in (Upheld.A, Upheld.B):
        review = case.review_a if upheld == Upheld.A else case.review_b
        if review is None or not review.preference:
            errors["upheld"] = ["Write the final decision instead."]
        else:
            decision = PreferenceDecision(
                preference=review.preference,
                winner=review.winner,
                verdict=review.verdict,
                corrected_output=review.corrected_output,
                reason_code=review.reason_code,
                severity=review.severity,
            )
    elif upheld == Upheld.NEITHER:
        candidates = list(Candidate.objects.filter(item=item).order_by("position"))
        decision, found = preference_decide(project=item.project, candidates=candidates, data=data)
        errors = {_DECISION_FIELDS.get(field, field): messages for field, messages in found.items()}
    else:
        errors["upheld"] = ["Choose A, B or neither."]
    if not data.note:
        errors.setdefault("rationale", ["Explain the decision."])
    if errors:
        only_rationale = set(errors) == {"rationale"}
        message = "A rationale is required." if only_rationale else "The decision is incomplete."
        raise DomainError(message, detail=errors)
    return decision


@transaction.atomic
def case_decide(
    *,
    case: AdjudicationCase,
    claim_id: int,
    user,
    upheld: str,
    rationale: str,
    verdict: str = "",
    final_output: str | None = None,
    reason_code: str = "",
    severity: str = "",
    preference: str = "",
    winner_id: int | None = None,
) -> AdjudicationCase:
    """Record a senior's final decision on ``case`` and make the item final with it.

    On a comparison, upholding A or B takes that review's preference; the
    senior's own decision is ``preference`` (winner / tie / all_bad),
    ``winner_id`` and optionally ``final_output`` correcting the winner, held to
    the reviewers' rules (``reviews.services.comparisons.preference_decide``).

    ``upheld`` is ``a`` or ``b`` (take that review's decision) or ``neither``
    (``verdict``, ``final_output`` for a correction, ``reason_code`` and
    ``severity`` are the senior's own, held to the rules of a review:
    ``reviews.services.review_rules.decision_validate``, the rationale as the
    note). A rationale is required. The decision
    must carry the id of the senior's live claim on the case: a second submit
    of the same form, an expired lease or someone else's claim is refused, and
    the one-decided-claim-per-case constraint backs this up. The item becomes
    final through ``item_finalize(adjudicated=True)`` with the senior as history
    user and the rationale in the change reason; it is the gold label.
    Locks the item, then the case, then the claim.
    """
    rationale = (rationale or "").strip()
    item, case = _lock_case(case.pk)
    if not senior_may_adjudicate(user=user, case=case):
        raise NotAllowed("You may not adjudicate this case.")
    if case.status != CaseStatus.OPEN:
        raise Conflict("This case is already decided.")
    claim = CaseClaim.objects.select_for_update().filter(pk=claim_id, case=case).first()
    now = timezone.now()
    if claim is None or claim.senior_id != user.pk:
        raise Conflict("Claim this case before deciding it.")
    if claim.state != ClaimState.ACTIVE:
        raise Conflict("This claim is closed; claim the case again.")
    if claim.lease_expires_at <= now:
        raise Conflict("Your claim on this case expired; claim it again.")
    if item.status != ItemStatus.IN_ADJUDICATION:
        raise Conflict(f"The item is {item.status}, not in adjudication.")
    candidate = None
    if item.is_comparison:
        decision = _preference_from(
            case=case,
            item=item,
            upheld=upheld,
            data=PreferenceInput(
                preference=preference,
                winner_id=winner_id,
                corrected_output=final_output,
                reason_code=reason_code,
                note=rationale,
                severity=severity,
            ),
        )
        verdict, corrected = decision.verdict, decision.corrected_output
        reason_code, severity = decision.reason_code, decision.severity
        preference, candidate = decision.preference, decision.winner
    else:
        verdict, corrected, reason_code, severity = _decision_from(
            case=case,
            item=item,
            upheld=upheld,
            verdict=verdict,
            final_output=final_output,
            reason_code=reason_code,
            severity=severity,
            rationale=rationale,
        )
        preference = ""
    label = {Upheld.A: "upheld review A", Upheld.B: "upheld review B"}.get(
        upheld, f"senior's own decision ({preference or verdict})"
    )
    item_finalize(
        item=item,
        verdict=verdict,
        corrected_output=corrected,
        reason_code=reason_code,
        severity=severity,
        user=user,
        reason=f"Adjudicated (case {case.pk}), {label}: {rationale}",
        adjudicated=True,
        preference=preference,
        candidate=candidate,
    )
    case.status = CaseStatus.DECIDED
    case.decided_by = user
    case.decided_at = now
    case.upheld = upheld
    case.final_verdict = verdict
    case.final_output = item.final_output
    case.final_reason_code = reason_code
    case.final_severity = severity
    case.rationale = rationale
    case._history_user = user
    case._change_reason = f"Decided: {label}"
    case.save()
    claim.state = ClaimState.DECIDED
    claim.closed_at = now
    claim._history_user = user
    claim._change_reason = "Decided"
    claim.save(update_fields=["state", "closed_at"])
    return case


def _reviews_for_reopen(item: ReviewItem) -> tuple[Review | None, Review | None]:
    """The two reviews a reopened item is judged on: the last case's, else its last two."""
    last_case = (
        AdjudicationCase.objects.filter(item=item, review_a__isnull=False)
        .select_related("review_a", "review_b")
        .order_by("-opened_at", "-id")
        .first()
    )
    if last_case is not None:
        return last_case.review_a, last_case.review_b
    latest = list(Review.objects.filter(item=item).order_by("-created_at", "-id")[:2])
    if len(latest) < 2:
        return None, None
    return _in_order(latest)


@transaction.atomic
def item_reopen(*, item: ReviewItem, user, reason: str) -> AdjudicationCase:
    """Send a final item back to adjudication: a senior's audited override.

    Only a senior (or admin) of the item's project, or a superuser, may reopen,
    and only a final item; the reason is required and recorded in the item's
    history and on the new case. The item goes to ``in_adjudication`` through
    the state machine with ``decided_at`` cleared so the next decision stamps
    it; the new case carries the item's earlier two reviews (none if it had
    fewer) and remembers the status and output it had.
    """
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("A reason is required.", detail={"reason": ["Say why you reopen it."]})
    item = ReviewItem.objects.select_for_update().select_related("project").get(pk=item.pk)
    if not may(user, Capability.ADJUDICATE, item.project_id):
        raise NotAllowed("Only a senior reviewer of this project may reopen items.")
    if not item.is_final:
        raise Conflict(f"Only a final item can be reopened; this one is {item.status}.")
    review_a, review_b = _reviews_for_reopen(item)
    previous_status, previous_output = item.status, item.final_output
    item.decided_at = None
    item_transition(
        item=item,
        to_status=ItemStatus.IN_ADJUDICATION,
        reason=f"Reopened by {user}: {reason}",
        user=user,
        update_fields=("decided_at",),
    )
    severities = [r.severity for r in (review_a, review_b) if r is not None]
    case = AdjudicationCase(
        item=item,
        project_id=item.project_id,
        kind=CaseKind.REOPEN,
        review_a=review_a,
        review_b=review_b,
        severity_rank=_severity_rank(*severities, item.final_severity),
        opened_at=timezone.now(),
        opened_by=user,
        open_reason=reason,
        reopened_status=previous_status,
        reopened_output=previous_output,
    )
    case._history_user = user
    case._change_reason = f"Reopened: {reason}"
    case.save()
    return case
