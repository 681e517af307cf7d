"""Read paths of the reviewer workspace: my queue, the review page, an item's timeline.

The review page's queries are decided here once, so the page costs the same
handful of queries whatever the size of the queue.
"""

import json
import statistics
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.postgres.expressions import ArraySubquery
from django.db import connection
from django.db.models import (
    Count,
    Exists,
    Func,
    IntegerField,
    OuterRef,
    Prefetch,
    Subquery,
    prefetch_related_objects,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from adjudication.models import AdjudicationCase
from datasets.models import DatasetExportItem
from reviews.access import Capability, may, projects_where
from reviews.diffing import CorrectionDiff, correction_diff, pretty_json
from reviews.models import (
    Assignment,
    AssignmentState,
    CheckResult,
    CorrectionTriplet,
    ItemStatus,
    JudgeVerdict,
    Project,
    Review,
    ReviewItem,
    StepVerdict,
)
from reviews.models.items import FINAL_STATUSES
from reviews.precompiled import Precompiled
from reviews.services.ingest import ingest_reason_without_channel
from reviews.services.review_rules import reason_label
from reviews.services.rubric import rubric_of, rubric_text
from reviews.services.transitions import item_shown_awaiting_review
from reviews.transcripts import MARKABLE_ROLES, transcript_of

# "My queue" counts waiting items up to this many and shows "1,000+" beyond: counting a
# queue of a million items costs a fifth of a second on every visit of the page.
WAITING_SHOWN_UP_TO = 1000


@dataclass
class QueueRow:
    project: Project
    waiting: int
    """Items waiting, counted up to ``WAITING_SHOWN_UP_TO + 1`` (more: that many)."""
    reviewed_today: int
    median_seconds: float | None
    held: Assignment | None

    @property
    def waiting_shown(self) -> str:
        if self.waiting > WAITING_SHOWN_UP_TO:
            return f"{WAITING_SHOWN_UP_TO:,}+"
        return f"{self.waiting:,}"


def queue_overview(*, user, narrowing=None) -> list[QueueRow]:
    """Per visible project: items waiting for this user, their reviews today, median time.

    "Waiting" counts items in the queue that this user has not reviewed yet
    (within ``narrowing``, a ``QueueNarrowing``, when given), up to
    ``WAITING_SHOWN_UP_TO + 1``: the projects and their capped counts come in
    one query whose cost does not grow with the queue. The median is over
    this user's reviews of the project today.
    """
    now = timezone.now()
    day_start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    queue = ReviewItem.objects.filter(in_queue=True, project_id=OuterRef("pk"))
    if narrowing:
        queue = narrowing.apply(queue)
    unreviewed = queue.exclude(
        Exists(Review.objects.filter(item=OuterRef("pk"), reviewer=user))
    ).order_by()
    if connection.vendor == "postgresql":
        first_waiting = unreviewed.values("pk")[: WAITING_SHOWN_UP_TO + 1]
        waiting_count = Func(
            ArraySubquery(first_waiting), function="cardinality", output_field=IntegerField()
        )
    else:
        # SQLite (the ``make run`` demo, a small queue): a plain count of the same items.
        waiting_count = Coalesce(
            Subquery(unreviewed.values("project_id").annotate(n=Count("pk")).values("n")),
            0,
        )
    projects = list(
        projects_where(user, Capability.REVIEW).annotate(waiting=waiting_count).order_by("name")
    )
    ids = [project.pk for project in projects]
    waiting = {project.pk: project.waiting for project in projects}
    seconds: dict[int, list[float]] = {}
    for project_id, spent in Review.objects.filter(
        reviewer=user, created_at__gte=day_start, item__project_id__in=ids
    ).values_list("item__project_id", "seconds_spent"):
        seconds.setdefault(project_id, []).append(spent)
    held = {
        assignment.item.project_id: assignment
        for assignment in Assignment.objects.filter(
            reviewer=user, state=AssignmentState.ACTIVE, lease_expires_at__gt=now
        ).select_related("item")
    }
    return [
        QueueRow(
            project=project,
            waiting=waiting.get(project.pk, 0),
            reviewed_today=len(seconds.get(project.pk, [])),
            median_seconds=(
                statistics.median(seconds[project.pk]) if seconds.get(project.pk) else None
            ),
            held=held.get(project.pk),
        )
        for project in projects
    ]


# The review page's queries, compiled once per thread (building and compiling each
# cost more CPU than PostgreSQL's answer): the claim with its item and project, the
# item's check results and judge verdicts, the project's rubric, the claim's marks.
_CLAIM_WITH_ITEM = Precompiled(
    lambda assignment_id, reviewer_id: (
        Assignment.objects.filter(pk=assignment_id, reviewer_id=reviewer_id)
        .select_related("item__project")
        .order_by()[:1]
    ),
    sample=[-7001, -7002],
)
_CHECKS_OF_ITEM = Precompiled(
    lambda item_id: CheckResult.objects.filter(item_id=item_id).order_by("id"),
    sample=[-7003],
)
_JUDGE_OF_ITEM = Precompiled(
    lambda item_id: JudgeVerdict.objects.filter(item_id=item_id).order_by("-created_at", "-id"),
    sample=[-7004],
)
_MARKS_OF_CLAIM = Precompiled(
    lambda assignment_id: StepVerdict.objects.filter(assignment_id=assignment_id).order_by(
        "step", "part", "id"
    ),
    sample=[-7006],
)


def _prefetched(obj, name: str, rows: list) -> None:
    """``obj.<name>.all()`` answers ``rows`` without a query, as ``prefetch_related`` does."""
    queryset = getattr(obj, name).all()
    queryset._result_cache = rows
    queryset._prefetch_done = True
    obj.__dict__.setdefault("_prefetched_objects_cache", {})[name] = queryset


def _own_assignment(user, assignment_id: int) -> Assignment | None:
    """The user's claim with its item and project, while they still review in its project
    (a removed member's is gone). The role comes from the access module's per-request
    read of the user's memberships, not from a join in the claim's query."""
    found = _CLAIM_WITH_ITEM(assignment_id, user.pk)
    assignment = found[0] if found else None
    if assignment is None or not may(user, Capability.REVIEW, assignment.item.project_id):
        return None
    return assignment


def assignment_of(*, assignment_id: int, user) -> Assignment | None:
    """The user's claim with its item and project (one query), or None."""
    return _own_assignment(user, assignment_id)


def assignment_for_review_page(*, assignment_id: int, user) -> Assignment | None:
    """The user's claim with its item and everything the review page shows, or None.

    Four queries whatever the queue size: the claim with its item and project,
    the item's check results, its judge verdicts (newest first), the project's
    rubric criteria (in page order). A comparison's page reads its candidates
    instead (its checks are theirs; no judge, no rubric): two queries.
    """
    assignment = _own_assignment(user, assignment_id)
    if assignment is not None and assignment.item.is_comparison:
        prefetch_related_objects([assignment], "item__candidates")
    elif assignment is not None:
        item = assignment.item
        _prefetched(item, "check_results", _CHECKS_OF_ITEM(item.pk))
        _prefetched(item, "judge_verdicts", _JUDGE_OF_ITEM(item.pk))
        _prefetched(item.project, "rubric_criteria", rubric_of(item.project))
    return assignment


@dataclass
class ToolCallView:
    id: str
    name: str
    arguments: str
    """Pretty-printed JSON text (shown escaped)."""


@dataclass
class TurnView:
    """One turn of the conversation as the review page shows it."""

    step: int
    role: str
    content: str
    timestamp: str = ""
    model: str = ""
    name: str = ""
    tool_calls: list[ToolCallView] = field(default_factory=list)
    tool_call_id: str = ""
    answers: str = ""
    """Of a tool result: the name of the call it answers."""
    under_review: bool = False
    markable: bool = False
    marks: list = field(default_factory=list)


def _pretty_arguments(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return str(text)


def transcript_view(item: ReviewItem, marks: list[StepVerdict] = ()) -> list[TurnView]:
    """The item's whole conversation turn by turn, with ``marks`` on their steps.

    Empty for a plain prompt-and-output item (no history): there is nothing
    before the output to show or mark. Pure: no queries.
    """
    if not item.messages and not item.is_transcript:
        return []
    turns = transcript_of(
        messages=item.messages,
        prompt=item.prompt,
        output=item.output,
        is_transcript=item.is_transcript,
    )
    by_step: dict[int, list[StepVerdict]] = {}
    for mark in marks:
        by_step.setdefault(mark.step, []).append(mark)
    call_names: dict[str, str] = {}
    views = []
    for number, turn in enumerate(turns, start=1):
        calls = [
            ToolCallView(
                id=call["id"],
                name=call["function"]["name"],
                arguments=_pretty_arguments(call["function"]["arguments"]),
            )
            for call in turn.get("tool_calls") or ()
        ]
        call_names.update((call.id, call.name) for call in calls)
        call_id = turn.get("tool_call_id") or ""
        views.append(
            TurnView(
                step=number,
                role=str(turn.get("role", "")),
                content=turn.get("content") or "",
                timestamp=turn.get("timestamp", ""),
                model=turn.get("model", ""),
                name=turn.get("name", ""),
                tool_calls=calls,
                tool_call_id=call_id,
                answers=call_names.get(call_id, ""),
                under_review=number == len(turns),
                markable=turn.get("role") in MARKABLE_ROLES,
                marks=by_step.get(number, []),
            )
        )
    return views


def step_verdicts_of(assignment: Assignment) -> list[StepVerdict]:
    """The marks made on this claim, by step (one query)."""
    return _MARKS_OF_CLAIM(assignment.pk)


@dataclass
class OutputView:
    """How to show a model output: pretty JSON when it is JSON, else the raw text."""

    text: str
    is_json: bool


def output_view(text: str) -> OutputView:
    pretty = pretty_json(text)
    return OutputView(text=pretty, is_json=True) if pretty is not None else OutputView(text, False)


def reviews_are_visible(item: ReviewItem) -> bool:
    """Blind review: others' decisions show only once no review is still awaited."""
    return item.status in FINAL_STATUSES or item.status == ItemStatus.IN_ADJUDICATION


@dataclass
class TimelineEvent:
    at: datetime
    kind: str
    title: str
    actor: str = ""
    detail: str = ""
    diff: CorrectionDiff | None = None
    triplets: list = field(default_factory=list)
    steps: list = field(default_factory=list)
    hidden: bool = False


def _actor(user) -> str:
    return user.get_username() if user is not None else ""


def item_for_timeline(*, item_id: int, user) -> ReviewItem | None:
    return (
        ReviewItem.objects.filter(
            pk=item_id, project__in=projects_where(user, Capability.VIEW).values("pk")
        )
        .select_related("project")
        .first()
    )


def _review_detail(review: Review) -> str:
    """The review's note, then its rubric scores by key (``factuality 4 · safe yes``)."""
    scores = rubric_text(review.rubric_scores)
    return "\n".join(part for part in (review.note, f"Rubric: {scores}" if scores else "") if part)


def control_seen_by(*, item: ReviewItem, viewer) -> ReviewItem:
    """``item`` as ``viewer`` may see it: a control, to anyone but its project's admins,
    shows the status and queue flag of a real item awaiting review ("In review" while
    the viewer holds it). In memory only: the pages that call this never save the row.
    """
    if not item.is_control or may(viewer, Capability.ADMINISTER, item.project_id):
        return item
    holds = Assignment.objects.filter(
        item=item,
        reviewer=viewer,
        state=AssignmentState.ACTIVE,
        lease_expires_at__gt=timezone.now(),
    ).exists()
    return item_shown_awaiting_review(item, held=holds)


def item_timeline(*, item: ReviewItem, viewer) -> list[TimelineEvent]:
    """Everything that happened to ``item``, oldest first, blind where it must be.

    Ingest and every status change (from the item's history, with who and
    why), check results, judge verdicts, claims and their ends, reviews (with
    the steps each marked wrong),
    adjudication cases, and the dataset exports that included the item. While
    a review is still awaited, other reviewers' reviews show that they exist
    but not what they said.

    Only the project's admins see through which channel, and by whom, an
    item was ingested. A control seen by anyone but its project's admins
    reads like an item the viewer alone is reviewing: their own claims and
    review only, each claim with the status change a claim of a real item
    writes (a control's own status never moves), so the timeline does not
    name it either.
    """
    visible = reviews_are_visible(item)
    administers = may(viewer, Capability.ADMINISTER, item.project_id)
    alone = item.is_control and not administers
    events: list[TimelineEvent] = []
    for row in item.history.select_related("history_user").order_by("history_date", "history_id"):
        title = {"+": "Ingested", "~": "Updated", "-": "Deleted"}[row.history_type]
        actor, detail = _actor(row.history_user), row.history_change_reason or ""
        if row.history_type == "~":
            title = f"Status: {ItemStatus(row.status).label}"
        elif row.history_type == "+" and not administers:
            # How an item came in (which key, which import, who uploaded it) is the
            # project admins' business; a control is uploaded by one of them.
            actor, detail = "", ingest_reason_without_channel(detail)
        events.append(
            TimelineEvent(at=row.history_date, kind="item", title=title, actor=actor, detail=detail)
        )
    checks = list(item.check_results.order_by("id"))
    if checks:
        failed = [c for c in checks if not c.passed]
        events.append(
            TimelineEvent(
                at=checks[0].created_at,
                kind="checks",
                title=f"Checks: {len(checks) - len(failed)} passed, {len(failed)} failed",
                detail="; ".join(f"{c.name}: {c.message or 'failed'}" for c in failed),
            )
        )
    for verdict in item.judge_verdicts.order_by("created_at", "id"):
        score = "" if verdict.score is None else f" (score {verdict.score:.2f})"
        events.append(
            TimelineEvent(
                at=verdict.created_at,
                kind="judge",
                title=f"Judge {verdict.model}: {verdict.get_label_display()}{score}",
                detail=verdict.error or verdict.rationale,
            )
        )
    claims = Assignment.history.filter(item_id=item.pk)
    if alone:
        claims = claims.filter(reviewer_id=viewer.pk)
    for row in claims.select_related("history_user").order_by("history_date", "history_id"):
        if row.history_type == "+":
            title = "Claimed"
        else:
            title = f"Claim {AssignmentState(row.state).label.lower()}"
        events.append(
            TimelineEvent(
                at=row.history_date,
                kind="claim",
                title=title,
                actor=_actor(row.history_user) or str(row.reviewer_id),
                detail=row.history_change_reason or "",
            )
        )
        if row.history_type == "+" and alone:
            events.append(
                TimelineEvent(
                    at=row.history_date,
                    kind="item",
                    title=f"Status: {ItemStatus.IN_REVIEW.label}",
                    actor=_actor(row.history_user),
                    detail=f"Claimed by {viewer.get_username()}",
                )
            )
    reviews = Review.objects.filter(item=item, **({"reviewer": viewer} if alone else {}))
    reviews = (
        reviews.select_related("reviewer")
        .prefetch_related(
            Prefetch("triplets", queryset=CorrectionTriplet.objects.order_by("id")),
            Prefetch("step_verdicts", queryset=StepVerdict.objects.order_by("step", "part", "id")),
        )
        .order_by("created_at", "id")
    )
    for review in reviews:
        if not visible and review.reviewer_id != viewer.pk:
            events.append(
                TimelineEvent(
                    at=review.created_at,
                    kind="review",
                    title="Review submitted",
                    actor=_actor(review.reviewer),
                    detail="Hidden until every required review is in (blind review).",
                    hidden=True,
                )
            )
            continue
        title = f"Review: {review.get_verdict_display()}"
        if review.is_audit:
            title = f"Audit review: {review.get_verdict_display()}"
        if review.reason_code:
            reason = reason_label(review.reason_code)
            title += f" — {reason}, {review.get_severity_display().lower()}"
        event = TimelineEvent(
            at=review.created_at,
            kind="review",
            title=title,
            actor=_actor(review.reviewer),
            detail=_review_detail(review),
            steps=list(review.step_verdicts.all()),
        )
        if review.corrected_output is not None:
            event.diff = correction_diff(item.output, review.corrected_output)
            event.triplets = list(review.triplets.all())
        events.append(event)
    for case in AdjudicationCase.objects.filter(item=item).select_related(
        "decided_by", "opened_by"
    ):
        events.append(
            TimelineEvent(
                at=case.opened_at,
                kind="adjudication",
                title=f"Adjudication case opened ({case.get_kind_display()})",
                actor=_actor(case.opened_by),
                detail=case.open_reason,
            )
        )
        if case.decided_at is not None:
            events.append(
                TimelineEvent(
                    at=case.decided_at,
                    kind="adjudication",
                    title=f"Adjudicated: {case.final_verdict}"
                    + (f" (upheld {case.get_upheld_display()})" if case.upheld else ""),
                    actor=_actor(case.decided_by),
                    detail=case.rationale,
                )
            )
    for entry in DatasetExportItem.objects.filter(item=item).select_related("export"):
        export = entry.export
        events.append(
            TimelineEvent(
                at=export.finished_at or export.created_at,
                kind="export",
                title=f"Exported in {export} ({entry.get_split_display().lower()} split)",
                detail=export.get_status_display(),
            )
        )
    events.sort(key=lambda event: event.at)
    return events
