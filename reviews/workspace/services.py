"""The reviewer workspace: claims with leases, release, skip, expiry, step verdicts and
review submission.

Locking contract: every writer of an item's review state locks the item row
(``SELECT … FOR UPDATE``) before it reads assignments or reviews of that item,
and a submit locks its assignment row first. Claims lock with ``SKIP LOCKED``,
so concurrent reviewers walk past each other's candidates instead of waiting.
"""

import json
import random
import re
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import BooleanField, Exists, OuterRef
from django.db.models.expressions import RawSQL
from django.utils import timezone
from simple_history.utils import bulk_update_with_history

from adjudication.services import reviews_settle
from reviews.access import Capability, may
from reviews.diffing import correction_triplets
from reviews.errors import Conflict, DomainError, NotAllowed
from reviews.history_sql import insert_with_history, update_with_history
from reviews.models import (
    Assignment,
    AssignmentState,
    CheckResult,
    CorrectionTriplet,
    ItemStatus,
    Project,
    Review,
    ReviewItem,
    Severity,
    StepVerdict,
    Verdict,
)
from reviews.models.items import SUBMITTED_CONTENT_FIELDS
from reviews.precompiled import Precompiled
from reviews.quality.controls import control_review_score, controls_claimable
from reviews.quality.evaluate import second_review_due
from reviews.quality.jobs import reviewer_quality_enqueue
from reviews.services.comparisons import claim_candidate_order
from reviews.services.decisions import item_finalize
from reviews.services.review_rules import OTHER_REASON, corrected_output_stored, decision_validate
from reviews.services.rubric import rubric_of, rubric_scores_validate
from reviews.services.search import item_notes_append
from reviews.services.transitions import item_audit_close, item_transition
from reviews.transcripts import MARKABLE_ROLES, tool_call_ids, transcript_of

# How long a skipped item stays out of the skipping reviewer's queue.
SKIP_HIDES_FOR = timedelta(hours=24)
# Candidates re-checked per claim before giving up (each one was taken by a
# concurrent claim between the candidate scan and the row lock).
CLAIM_ATTEMPTS = 20
NOTE_MAX_CHARS = 5000


class StaleAssignment(Conflict):
    """A submit, release or skip on a claim that is no longer the caller's to use."""

    code = "stale_assignment"


class ReviewInvalid(DomainError):
    """A review the rules refuse; ``detail`` holds messages per form field."""


@dataclass(frozen=True)
class QueueNarrowing:
    """A reviewer's choice of part of a queue: one model version, routing reason, or check.

    ``reason`` is one of the item's routing reasons (``low_confidence``,
    ``risk_keyword:overdose``, ``judge_flag``...); ``check`` the name of a check
    the item failed (a warning: blocking failures never reach the queue).
    Empty fields narrow nothing.
    """

    model_version: str = ""
    reason: str = ""
    check: str = ""

    def __bool__(self) -> bool:
        return bool(self.model_version or self.reason or self.check)

    def apply(self, queryset):
        if self.model_version:
            queryset = queryset.filter(model_version=self.model_version)
        if self.reason:
            if connection.vendor == "postgresql":
                queryset = queryset.filter(review_reasons__contains=[self.reason])
            else:  # SQLite has no JSON containment: match the quoted element.
                quoted = json.dumps(self.reason)
                queryset = queryset.filter(review_reasons__icontains=quoted)
        if self.check:
            queryset = queryset.filter(
                Exists(
                    CheckResult.objects.filter(item=OuterRef("pk"), name=self.check, passed=False)
                )
            )
        return queryset


@dataclass(frozen=True)
class ReviewInput:
    verdict: str
    corrected_output: str | None = None
    reason_code: str = ""
    note: str = ""
    severity: str = ""
    # Criterion key -> what the reviewer entered (reviews.services.rubric).
    rubric: dict = field(default_factory=dict)


def reviews_needed(item: ReviewItem, project: Project) -> int:
    """Audit samples take one review; other items what their project requires, plus one
    when sent to a second blind review."""
    if item.is_audit:
        return 1
    return project.reviews_required + (1 if item.second_review else 0)


def user_can_review(*, user, project: Project) -> bool:
    return may(user, Capability.REVIEW, project)


def _history(obj, *, user, reason: str) -> None:
    obj._history_user = user
    obj._change_reason = reason


def _close(assignment: Assignment, *, state: str, user, reason: str, now) -> None:
    assignment.state = state
    assignment.closed_at = now
    _history(assignment, user=user, reason=reason)
    update_with_history(assignment, ["state", "closed_at"])


def _active_claims(item: ReviewItem, now):
    return Assignment.objects.filter(
        item=item, state=AssignmentState.ACTIVE, lease_expires_at__gt=now
    )


def _expire_on_item(item: ReviewItem, *, now, user) -> None:
    """Close the item's active claims whose lease ran out. Call holding the item lock."""
    expired = Assignment.objects.filter(
        item=item, state=AssignmentState.ACTIVE, lease_expires_at__lte=now
    )
    for assignment in expired:
        _close(
            assignment,
            state=AssignmentState.EXPIRED,
            user=user,
            reason=f"Lease expired at {assignment.lease_expires_at.isoformat()}",
            now=now,
        )


def _return_if_unclaimed(item: ReviewItem, *, now, user, reason: str) -> None:
    """An in-review item nobody holds any more goes back to pending review."""
    if item.status == ItemStatus.IN_REVIEW and not _active_claims(item, now).exists():
        item_transition(item=item, to_status=ItemStatus.PENDING_REVIEW, reason=reason, user=user)


# Whether an item (the row of the ``reviews_reviewitem`` table in the query around it)
# may be claimed by %(reviewer)s now: never reviewed by them; not held by them (an
# unexpired claim) nor skipped by them since %(skip_since)s; and fewer unexpired claims
# plus trusted reviews than it needs. One SQL condition for the claim's hot path: the
# ORM form of the same rule (four Exists, compiled on every claim) cost more CPU than
# the whole claim's SQL. Each NOT EXISTS is an anti-join probing an index per queue row.
_NOT_MINE = """
NOT EXISTS (SELECT 1 FROM reviews_review r
            WHERE r.item_id = reviews_reviewitem.id AND r.reviewer_id = %(reviewer)s)
AND NOT EXISTS (SELECT 1 FROM reviews_assignment a
                WHERE a.item_id = reviews_reviewitem.id AND a.reviewer_id = %(reviewer)s
                  AND ((a.state = 'active' AND a.lease_expires_at > %(now)s)
                       OR (a.state = 'skipped' AND a.closed_at > %(skip_since)s)))
"""
# One review required: nobody holds it, and no trusted review is in unless it was sent
# to a second blind review. The item's own flag sits inside the sub-select so the
# planner keeps an anti-join (an OR around an EXISTS becomes a hash of every review).
_ROOM_FOR_ONE = """
AND NOT EXISTS (SELECT 1 FROM reviews_assignment a
                WHERE a.item_id = reviews_reviewitem.id AND a.state = 'active'
                  AND a.lease_expires_at > %(now)s)
AND NOT EXISTS (SELECT 1 FROM reviews_review r
                WHERE r.item_id = reviews_reviewitem.id AND r.quarantine_id IS NULL
                  AND NOT reviews_reviewitem.second_review)
"""
# More reviews required: unexpired claims plus trusted reviews below what the item
# needs (audit samples need one).
_ROOM_FOR_MORE = """
AND (SELECT count(*) FROM reviews_assignment a
     WHERE a.item_id = reviews_reviewitem.id AND a.state = 'active'
       AND a.lease_expires_at > %(now)s)
  + (SELECT count(*) FROM reviews_review r
     WHERE r.item_id = reviews_reviewitem.id AND r.quarantine_id IS NULL)
  < CASE WHEN reviews_reviewitem.is_audit THEN 1 ELSE %(required)s END
"""
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _claimable_condition(*, reviewer, project: Project, now) -> RawSQL:
    """The claim rule of ``claimable_items`` as one boolean SQL expression."""
    return _claimable_sql(
        reviewer_id=reviewer.pk,
        now=now,
        skip_since=now - SKIP_HIDES_FOR,
        required=project.reviews_required,
    )


def _claimable_sql(*, reviewer_id: int, now, skip_since, required: int) -> RawSQL:
    sql = _NOT_MINE + (_ROOM_FOR_ONE if required == 1 else _ROOM_FOR_MORE)
    adapt = connection.ops.adapt_datetimefield_value
    values = {
        "reviewer": reviewer_id,
        "now": adapt(now),
        "skip_since": adapt(skip_since),
        "required": required,
    }
    params = [values[name] for name in _PLACEHOLDER.findall(sql)]
    # Constant SQL; every value goes as a parameter.
    return RawSQL(_PLACEHOLDER.sub("%s", sql), params, output_field=BooleanField())  # noqa: S611


def claimable_items(
    *, reviewer, project: Project, now=None, narrowing: QueueNarrowing | None = None
):
    """Items of ``project`` that ``reviewer`` may claim now, in queue order.

    In the queue; never reviewed by this reviewer; not held by them; not
    skipped by them in the last 24 hours; and fewer unexpired claims plus
    trusted reviews than the item needs (one for audit samples; with one review
    required, an item sent to a second blind review takes one more).
    ``narrowing`` keeps only one model version, routing reason or failed check.

    The rule is one SQL condition naming the items table by its own name, so
    run this queryset itself (``first()``, ``exists()``, ``values_list()``),
    never as a subquery of another query (it would be aliased there).
    """
    now = now or timezone.now()
    queue = ReviewItem.objects.in_queue().filter(project=project)
    if narrowing:
        queue = narrowing.apply(queue)
    return queue.filter(_claimable_condition(reviewer=reviewer, project=project, now=now))


def _claim_statements(required: int) -> tuple[Precompiled, Precompiled]:
    """The claim's two statements on an unnarrowed queue, compiled once per thread.

    The first locks the first claimable item (``FOR UPDATE SKIP LOCKED``, without
    the submitted text: the claim and its history row need none of it); the
    second re-checks that item in a fresh statement and says whether it has
    expired claims. ``required`` (1 or more) picks the rule's SQL.
    """

    def queue(reviewer_id, project_id, now, skip_since, required_value):
        rule = _claimable_sql(
            reviewer_id=reviewer_id,
            now=now,
            skip_since=skip_since,
            required=required_value if required > 1 else 1,
        )
        return ReviewItem.objects.in_queue().filter(project_id=project_id).filter(rule)

    def candidate(*values):
        return (
            queue(*values)
            .defer(*SUBMITTED_CONTENT_FIELDS, "review_notes")
            .select_for_update(skip_locked=True, of=("self",))[:1]
        )

    def recheck(item_id, *values):
        now = values[2]
        expired = Assignment.objects.filter(
            item=OuterRef("pk"), state=AssignmentState.ACTIVE, lease_expires_at__lte=now
        )
        return (
            queue(*values)
            .filter(pk=item_id)
            .annotate(stale=Exists(expired))
            .only("pk")
            .order_by()[:1]
        )

    sample_now = timezone.now().replace(year=1999)
    values = [-9001, -9002, sample_now, sample_now.replace(year=1998)]
    if required > 1:
        values.append(-9003)
    return (
        Precompiled(
            (lambda *v: candidate(*v, None)) if required == 1 else candidate, sample=values
        ),
        Precompiled(
            (lambda item_id, *v: recheck(item_id, *v, None)) if required == 1 else recheck,
            sample=[-9004, *values],
        ),
    )


_CLAIM_ONE_OF_ONE = _claim_statements(1)
_CLAIM_ONE_OF_MORE = _claim_statements(2)


def _control_due(project: Project) -> bool:
    """Whether this claim serves a control: a draw at the project's ``control_rate``."""
    return project.control_rate > 0 and random.random() < project.control_rate


def _claim_control(*, reviewer, project: Project, now, narrowing) -> Assignment | None:
    """Claim a control for ``reviewer`` if one is left and real work waits too.

    Controls come only beside real work (an empty queue that still hands out
    items would give them away), within the reviewer's part of the queue.
    """
    controls = controls_claimable(reviewer=reviewer, project=project, now=now)
    if narrowing:
        controls = narrowing.apply(controls)
    control = controls.select_for_update(skip_locked=True, of=("self",)).first()
    if control is None:
        return None
    if not claimable_items(
        reviewer=reviewer, project=project, now=now, narrowing=narrowing
    ).exists():
        return None
    return _claim(item=control, project=project, reviewer=reviewer, now=now, stale=False)


def lease_for(project: Project) -> timedelta:
    """How long a claim in ``project`` lasts."""
    return timedelta(minutes=project.lease_minutes or settings.HITL_DEFAULT_LEASE_MINUTES)


# The claim's and the submit's lookups by key, compiled once per thread: building and
# compiling each cost more CPU than PostgreSQL's answer (reviews.precompiled).
_HELD_CLAIM = Precompiled(
    lambda reviewer_id, project_id, now: Assignment.objects.filter(
        reviewer_id=reviewer_id,
        item__project_id=project_id,
        state=AssignmentState.ACTIVE,
        lease_expires_at__gt=now,
    ).order_by("claimed_at")[:1],
    sample=[-8001, -8002, timezone.now().replace(year=1999)],
)
# Locked: the item of a claim (with its project), then the claim.
_CLAIM_ITEM_LOCKED = Precompiled(
    lambda assignment_id: (
        ReviewItem.objects.select_for_update(of=("self",))
        .select_related("project")
        .filter(assignments__pk=assignment_id)
        .order_by("pk")[:1]
    ),
    sample=[-8003],
)
_CLAIM_LOCKED = Precompiled(
    lambda assignment_id: Assignment.objects.select_for_update().filter(pk=assignment_id),
    sample=[-8004],
)


@transaction.atomic
def assignment_claim_next(
    *, reviewer, project: Project, narrowing: QueueNarrowing | None = None
) -> Assignment | None:
    """Claim the next item of ``project`` for ``reviewer``; None when nothing is left.

    With ``narrowing``, only items of that part of the queue are candidates
    (a claim already held is returned whatever it holds).

    A reviewer holds one claim per project at a time: an unexpired claim is
    returned again instead of taking a second item. Otherwise the first
    claimable item in queue order is locked with ``FOR UPDATE SKIP LOCKED``
    (concurrent claims never wait on or share a candidate), re-checked in a
    fresh statement (a claim committed after our scan began is visible then),
    and claimed for the project's lease. Expired claims on it are closed on the
    way; the first claim moves it from pending_review to in_review.
    """
    if not user_can_review(user=reviewer, project=project):
        raise NotAllowed("You are not a member of this project.")
    now = timezone.now()
    held = _HELD_CLAIM(reviewer.pk, project.pk, now)
    if held:
        return held[0]
    if _control_due(project):
        control = _claim_control(reviewer=reviewer, project=project, now=now, narrowing=narrowing)
        if control is not None:
            return control
    if not narrowing:
        return _claim_next_unnarrowed(reviewer=reviewer, project=project, now=now)
    tried: list[int] = []
    for _attempt in range(CLAIM_ATTEMPTS):
        item = (
            claimable_items(reviewer=reviewer, project=project, now=now, narrowing=narrowing)
            .exclude(pk__in=tried)
            # The claim and the status change's history row need none of the submitted
            # text (the page reads it); decoding its JSON was a third of the scan's cost.
            .defer(*SUBMITTED_CONTENT_FIELDS, "review_notes")
            .select_for_update(skip_locked=True, of=("self",))
            .first()
        )
        if item is None:
            return None
        # One statement re-checks the candidate and says whether it has expired claims.
        stale = (
            claimable_items(reviewer=reviewer, project=project, now=now)
            .filter(pk=item.pk)
            .annotate(
                stale=Exists(
                    Assignment.objects.filter(
                        item=OuterRef("pk"),
                        state=AssignmentState.ACTIVE,
                        lease_expires_at__lte=now,
                    )
                )
            )
            .values_list("stale", flat=True)
            .first()
        )
        if stale is not None:
            return _claim(item=item, project=project, reviewer=reviewer, now=now, stale=stale)
        tried.append(item.pk)
    return None


def _claim_next_unnarrowed(*, reviewer, project: Project, now) -> Assignment | None:
    """``assignment_claim_next``'s candidate loop on the whole queue, with its two
    statements precompiled (the same SQL the querysets there compile to)."""
    required = project.reviews_required
    candidate, recheck = _CLAIM_ONE_OF_ONE if required == 1 else _CLAIM_ONE_OF_MORE
    values = [reviewer.pk, project.pk, now, now - SKIP_HIDES_FOR]
    if required > 1:
        values.append(required)
    tried: list[int] = []
    for _attempt in range(CLAIM_ATTEMPTS):
        if tried:  # rare: a concurrent claim took the candidate; the queryset skips them
            found = list(
                claimable_items(reviewer=reviewer, project=project, now=now)
                .exclude(pk__in=tried)
                .defer(*SUBMITTED_CONTENT_FIELDS, "review_notes")
                .select_for_update(skip_locked=True, of=("self",))[:1]
            )
        else:
            found = candidate(*values)
        if not found:
            return None
        item = found[0]
        checked = recheck(item.pk, *values)
        if checked:
            return _claim(
                item=item, project=project, reviewer=reviewer, now=now, stale=checked[0].stale
            )
        tried.append(item.pk)
    return None


def _claim(
    *,
    item: ReviewItem,
    project: Project,
    reviewer,
    now,
    stale: bool,
    by=None,
) -> Assignment:
    """Claim ``item`` for ``reviewer``; ``by`` is the senior who assigned it (None: a claim)."""
    actor = by or reviewer
    if stale:
        _expire_on_item(item, now=now, user=actor)
    assignment = Assignment(
        item=item,
        reviewer=reviewer,
        claimed_at=now,
        lease_expires_at=now + lease_for(project),
        candidate_order=claim_candidate_order(item=item, reviewer=reviewer),
    )
    if by is None:
        reason, why = "Claimed from the queue", f"Claimed by {reviewer.get_username()}"
    else:
        who = f"{reviewer.get_username()} by {by.get_username()}"
        reason = why = f"Assigned to {who}"
    _history(assignment, user=actor, reason=reason)
    insert_with_history(assignment)
    # A control is claimed by many reviewers and never moves: it has no status to change.
    if item.status == ItemStatus.PENDING_REVIEW and not item.is_control:
        item_transition(item=item, to_status=ItemStatus.IN_REVIEW, reason=why, user=actor)
    return assignment


@transaction.atomic
def assignment_assign(*, item_id: int, reviewer, by) -> Assignment:
    """Claim an item on ``reviewer``'s behalf: a senior hands it to a named reviewer.

    ``by`` must adjudicate in the item's project and ``reviewer`` review there
    (``NotAllowed`` otherwise); the item must be one ``reviewer`` could claim
    now (in the queue, not reviewed or held by them, room for another claim),
    else ``Conflict``. The claim runs for the project's lease like any other
    and shows in the reviewer's queue; history names ``by``. Holds the item lock.
    """
    item = (
        ReviewItem.objects.select_for_update(of=("self",))
        .select_related("project")
        .filter(pk=item_id)
        .first()
    )
    if item is None or not may(by, Capability.ADJUDICATE, item.project_id):
        raise NotAllowed("Only a senior reviewer of the item's project may assign it.")
    project = item.project
    if not user_can_review(user=reviewer, project=project):
        raise NotAllowed(f"{reviewer.get_username()} does not review in {project.name}.")
    now = timezone.now()
    stale = (
        claimable_items(reviewer=reviewer, project=project, now=now)
        .filter(pk=item.pk)
        .annotate(
            stale=Exists(
                Assignment.objects.filter(
                    item=OuterRef("pk"), state=AssignmentState.ACTIVE, lease_expires_at__lte=now
                )
            )
        )
        .values_list("stale", flat=True)
        .first()
    )
    if stale is None:
        raise Conflict(
            f"{reviewer.get_username()} cannot take {item.external_id} now (not in the queue, "
            "already reviewed or held by them, or claimed by enough reviewers)."
        )
    return _claim(item=item, project=project, reviewer=reviewer, now=now, stale=stale, by=by)


def _lock_claim(*, assignment_id: int, reviewer, now) -> tuple[ReviewItem, Assignment]:
    """Lock the claim's item, then the claim, and check it is still the caller's to use.

    Items are always locked before assignments (claims do the same), so a
    submit and a claim on one item cannot deadlock.
    """
    found = _CLAIM_ITEM_LOCKED(assignment_id)
    if not found:
        raise StaleAssignment("This claim does not exist.")
    item = found[0]
    (assignment,) = _CLAIM_LOCKED(assignment_id)
    if assignment.reviewer_id != reviewer.pk:
        raise StaleAssignment("This item is claimed by another reviewer; nothing was recorded.")
    if assignment.state == AssignmentState.SUBMITTED:
        raise StaleAssignment(
            "You already submitted a review for this item (another tab or the back button?). "
            "It was recorded once; this second submit was ignored."
        )
    if assignment.state in (AssignmentState.RELEASED, AssignmentState.SKIPPED):
        raise StaleAssignment(
            "You released this item earlier, so it is no longer yours; nothing was recorded."
        )
    if assignment.state == AssignmentState.EXPIRED or assignment.lease_expires_at <= now:
        local = timezone.localtime(assignment.lease_expires_at)
        raise StaleAssignment(
            f"Your claim on this item expired at {local:%H:%M} and the item went back to the "
            "queue; nothing was recorded. Start reviewing to claim an item again."
        )
    return item, assignment


@transaction.atomic
def assignment_release(*, assignment_id: int, reviewer, skip: bool = False) -> Assignment:
    """Give a claimed item back to the queue at once.

    ``skip`` also keeps it out of this reviewer's queue for 24 hours (someone
    else takes it); a plain release may come back to them. An in-review item
    nobody else holds returns to pending_review.
    """
    now = timezone.now()
    item, assignment = _lock_claim(assignment_id=assignment_id, reviewer=reviewer, now=now)
    state = AssignmentState.SKIPPED if skip else AssignmentState.RELEASED
    verb = "Skipped" if skip else "Released"
    _close(assignment, state=state, user=reviewer, reason=f"{verb} by the reviewer", now=now)
    _return_if_unclaimed(
        item, now=now, user=reviewer, reason=f"{verb} by {reviewer.get_username()}"
    )
    return assignment


def assignment_expire_stale(*, now=None) -> int:
    """Close every active claim whose lease ran out; returns how many were closed.

    Claims never depend on this (they ignore expired leases and close them
    lazily); it tidies the records and returns orphaned in-review items to
    pending_review. One short transaction per item, holding its row lock.
    """
    now = now or timezone.now()
    item_ids = list(
        Assignment.objects.filter(state=AssignmentState.ACTIVE, lease_expires_at__lte=now)
        .values_list("item_id", flat=True)
        .distinct()
    )
    closed = 0
    for item_id in item_ids:
        with transaction.atomic():
            item = ReviewItem.objects.select_for_update().get(pk=item_id)
            stale = Assignment.objects.filter(
                item=item, state=AssignmentState.ACTIVE, lease_expires_at__lte=now
            ).count()
            _expire_on_item(item, now=now, user=None)
            _return_if_unclaimed(item, now=now, user=None, reason="Lease expired")
            closed += stale
    return closed


def review_validate(*, project: Project, item: ReviewItem, data: ReviewInput) -> dict:
    """Messages per field for a review the rules refuse; empty when it is acceptable.

    The decision rules are ``decision_validate``'s, shared with adjudication;
    the note's length is the review form's own.
    """
    errors = decision_validate(
        project=project,
        original=item.output,
        verdict=data.verdict,
        corrected_output=data.corrected_output,
        reason_code=data.reason_code,
        severity=data.severity,
        note=data.note,
    )
    if data.verdict in Verdict.values and len(data.note) > NOTE_MAX_CHARS:
        errors["note"] = [f"At most {NOTE_MAX_CHARS} characters."]
    return errors


def _describe(data: ReviewInput) -> str:
    text = Verdict(data.verdict).label
    if data.verdict != Verdict.APPROVE:
        text += f": {data.reason_code} ({data.severity})"
    if data.note.strip():
        text += f" — {data.note.strip()}"
    return text[:100]


@transaction.atomic
def review_submit(
    *,
    assignment_id: int,
    reviewer,
    data: ReviewInput,
    active_seconds: float | None = None,
    criteria: list | None = None,
) -> Review:
    """Record ``reviewer``'s decision on the item of their claim, exactly once.

    Refused (``StaleAssignment``) unless the claim is active, the caller's own
    and unexpired: a double submit, a submit from an old tab or on an expired
    or stolen lease records nothing. Refused (``ReviewInvalid``, messages per
    field) when the review breaks the rules: reject and correct need a reason
    from the project's taxonomy and a severity, "other" needs a note, a
    correction must change the output, and every required rubric criterion
    needs a score in its range (``reviews.services.rubric``). Time spent is
    the claim's age, or the page's active time when given (never more than the
    claim's age).

    Then: an audit sample leaves the queue with its status untouched; with one
    review required the decision is made final; with two, the first review
    waits blind for the second, and the second hands both to
    ``adjudication.services.reviews_settle`` (final on agreement, a case on
    disagreement). Holds the item's row lock throughout.

    ``criteria`` are the project's rubric criteria when the caller has read them
    already (the review form did, to parse the scores): one query fewer.
    """
    now = timezone.now()
    item, assignment = _lock_claim(assignment_id=assignment_id, reviewer=reviewer, now=now)
    project = item.project
    audit = item.is_audit and item.status == ItemStatus.AUTO_APPROVED
    if item.is_final and not audit:
        raise StaleAssignment("This item was already decided; nothing was recorded.")
    if item.is_comparison:
        raise ReviewInvalid(
            "A comparison takes a preference.",
            detail={"action": ["Choose the best candidate, a tie or all bad."]},
        )
    errors = review_validate(project=project, item=item, data=data)
    if criteria is None:
        criteria = rubric_of(project)
    scores, rubric_errors = rubric_scores_validate(criteria=criteria, raw=data.rubric)
    errors.update(rubric_errors)
    if errors:
        raise ReviewInvalid("Please correct the errors below.", detail=errors)

    elapsed = max(0.0, (now - assignment.claimed_at).total_seconds())
    if active_seconds is not None and active_seconds >= 0:
        elapsed = min(elapsed, float(active_seconds))
    correcting = data.verdict == Verdict.CORRECT
    approving = data.verdict == Verdict.APPROVE
    reason = _describe(data)
    review = Review(
        item=item,
        reviewer=reviewer,
        assignment=assignment,
        verdict=data.verdict,
        corrected_output=(
            corrected_output_stored(original=item.output, corrected_output=data.corrected_output)
            if correcting
            else None
        ),
        reason_code="" if approving else data.reason_code,
        note=data.note.strip(),
        severity=Severity.NONE if approving else data.severity,
        seconds_spent=round(elapsed, 1),
        rubric_scores=scores,
        is_audit=audit,
    )
    _history(review, user=reviewer, reason=reason)
    try:
        # No savepoint needed: on a violation nothing else runs, the whole
        # transaction rolls back with the exception.
        insert_with_history(review)
    except IntegrityError as exc:
        raise StaleAssignment(
            "You already reviewed this item; it was recorded once and this submit was ignored."
        ) from exc
    _step_verdicts_attach(assignment=assignment, review=review, user=reviewer)
    if correcting:
        CorrectionTriplet.objects.bulk_create(
            CorrectionTriplet(
                review=review,
                item=item,
                attribute=triplet.attribute[:500],
                old_value=triplet.old_value,
                new_value=triplet.new_value,
                created_at=now,
            )
            for triplet in correction_triplets(item.output, review.corrected_output)
        )
    # Blind: the claim's history says a review came in, never what it said.
    _close(
        assignment,
        state=AssignmentState.SUBMITTED,
        user=reviewer,
        reason="Review submitted",
        now=now,
    )

    if item.is_control:
        control_review_score(review=review, item=item)
        reviewer_quality_enqueue(project_id=project.pk, reviewer_id=reviewer.pk)
        return review
    if audit:
        item_notes_append(item=item, note=review.note)
        item_audit_close(
            item=item,
            review=review,
            user=reviewer,
            reason=f"Audit review recorded: {reason}"[:100],
        )
        return review
    if item.status == ItemStatus.PENDING_REVIEW:
        item_transition(
            item=item, to_status=ItemStatus.IN_REVIEW, reason="Review submitted", user=reviewer
        )
    if (
        not item.second_review
        and second_review_due(project=project, reviewer=reviewer, item=item)
        # Only the first review is sent on (asked last: the draw is usually no).
        and not Review.objects.trusted().filter(item=item).exclude(pk=review.pk).exists()
    ):
        # Blind: the history says another review is needed, never whose or why.
        item.second_review = True
        _history(item, user=reviewer, reason="Sent to a second blind review")
        item.save(update_fields=["second_review"])
    required = reviews_needed(item, project)
    # One review required: an item with a review is never claimable, so this is it.
    reviews = (
        [review]
        if required == 1
        else list(Review.objects.trusted().filter(item=item).order_by("created_at", "pk"))
    )
    if len(reviews) < required:
        # Blind: the item's history says a review came in, never what it said.
        _return_if_unclaimed(
            item,
            now=now,
            user=reviewer,
            reason=f"Review {len(reviews)} of {required} submitted; waiting for another reviewer",
        )
        return review
    # Blind: the notes enter the item search once every required review is in.
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
        )
    else:
        reviews_settle(item=item, reviews=reviews[:2], user=reviewer)
    return review


# --- step verdicts ------------------------------------------------------------

STEP_SEVERITIES = (Severity.MINOR, Severity.MAJOR, Severity.CRITICAL)


@dataclass(frozen=True)
class StepMark:
    """A mark on step ``step`` (from 1) or on one of its tool calls (``part``: the call id)."""

    step: int
    part: str = ""
    reason: str = ""
    severity: str = ""
    note: str = ""


def item_transcript(item: ReviewItem) -> list[dict]:
    """The item's whole conversation, the turn under review last; step N is entry N-1."""
    return transcript_of(
        messages=item.messages or [],
        prompt=item.prompt,
        output=item.output,
        is_transcript=item.is_transcript,
    )


def _step_turn(item: ReviewItem, step: int, errors: dict) -> dict | None:
    turns = item_transcript(item)
    if not 1 <= step <= len(turns):
        errors["step"] = [f"No step {step}: the conversation has steps 1 to {len(turns)}."]
        return None
    turn = turns[step - 1]
    if turn.get("role") not in MARKABLE_ROLES:
        errors["step"] = [
            f"Step {step} is a {turn.get('role')} turn; only assistant and tool turns "
            "can be marked wrong."
        ]
        return None
    return turn


def step_verdict_validate(*, project: Project, item: ReviewItem, mark: StepMark) -> dict:
    """Messages per field (step, part, reason, severity, note) for a mark the rules refuse.

    The step must be an assistant or tool turn of the item's conversation; a
    part must be one of that turn's tool call ids; the reason one of the
    project's codes ("other" needs a note); the severity minor, major or
    critical. Empty when the mark is acceptable.
    """
    errors: dict[str, list[str]] = {}
    turn = _step_turn(item, mark.step, errors)
    if turn is not None and mark.part and mark.part not in tool_call_ids(turn):
        errors["part"] = [f"Step {mark.step} has no tool call {mark.part!r}."]
    if mark.reason not in project.reason_codes:
        errors["reason"] = [f"Choose one of {', '.join(project.reason_codes)}."]
    elif mark.reason == OTHER_REASON and not mark.note.strip():
        errors["note"] = ["Describe the problem when the reason is 'other'."]
    if mark.severity not in STEP_SEVERITIES:
        errors["severity"] = [f"Choose one of {', '.join(STEP_SEVERITIES)}."]
    if len(mark.note) > NOTE_MAX_CHARS:
        errors["note"] = [f"At most {NOTE_MAX_CHARS} characters."]
    return errors


def _describe_mark(step: int, part: str) -> str:
    return f"step {step}" + (f", tool call {part}" if part else "")


@transaction.atomic
def step_verdict_mark(*, assignment_id: int, reviewer, mark: StepMark) -> StepVerdict:
    """Record that step ``mark.step`` (or its tool call ``mark.part``) went wrong.

    Only the reviewer holding the active, unexpired claim may mark
    (``StaleAssignment`` otherwise); ``ReviewInvalid`` with messages per field
    when ``step_verdict_validate`` refuses it. Marking the same step and part
    again replaces the earlier mark. The mark joins the review when it is
    submitted. Holds the item's and the claim's row locks.
    """
    now = timezone.now()
    item, assignment = _lock_claim(assignment_id=assignment_id, reviewer=reviewer, now=now)
    errors = step_verdict_validate(project=item.project, item=item, mark=mark)
    if errors:
        raise ReviewInvalid("Please correct the errors in the step mark.", detail=errors)
    verdict = StepVerdict.objects.filter(
        assignment=assignment, step=mark.step, part=mark.part
    ).first() or StepVerdict(
        item=item, assignment=assignment, reviewer=reviewer, step=mark.step, part=mark.part
    )
    verdict.reason = mark.reason
    verdict.severity = mark.severity
    verdict.note = mark.note.strip()
    _history(verdict, user=reviewer, reason=f"Marked {_describe_mark(mark.step, mark.part)}")
    verdict.save()
    return verdict


@transaction.atomic
def step_verdict_remove(*, assignment_id: int, reviewer, step: int, part: str = "") -> bool:
    """Take back the caller's mark on ``step`` / ``part``; False when there was none.

    Same claim rule as ``step_verdict_mark``; holds the same locks.
    """
    now = timezone.now()
    _item, assignment = _lock_claim(assignment_id=assignment_id, reviewer=reviewer, now=now)
    verdict = StepVerdict.objects.filter(assignment=assignment, step=step, part=part).first()
    if verdict is None:
        return False
    _history(verdict, user=reviewer, reason=f"Unmarked {_describe_mark(step, part)}")
    verdict.delete()
    return True


def _step_verdicts_attach(*, assignment: Assignment, review: Review, user) -> None:
    """The claim's marks become the review's. Call inside ``review_submit``."""
    marks = list(StepVerdict.objects.filter(assignment=assignment))
    for mark in marks:
        mark.review = review
        _history(mark, user=user, reason="Review submitted")
    if marks:
        bulk_update_with_history(
            marks,
            StepVerdict,
            fields=["review"],
            default_user=user,
            default_change_reason="Review submitted",
        )
