"""Daily rollups: the sums the dashboard, drift evaluation and mode advice read.

Why a fold job and not an UPSERT in the deciding transaction: decisions are
made on many paths (ingest's auto-approvals, the judge, the workspace, audit
reviews, adjudication and its overrides, bulk imports), and an UPSERT in each
would be one rule written six times. In monitor mode every auto-approved item
of a project and model lands on the same (project, model, day) row: an UPSERT
there would hold that row's lock until commit and serialise concurrent ingest.
The fold reads the raw rows instead, so every path is covered, and writes no
row the deciding transactions touch.

The fold (``rollups_fold``, every minute on the RQ cron) finds the (project,
day) pairs whose raw rows changed since its watermark, from the item and
review history tables and the review and verdict times (all indexed), and
recomputes those whole days. A day's rows are a pure function of the raw
rows, so the fold is idempotent and safe to re-run; it looks back
``FOLD_LOOKBACK`` before its watermark, so a transaction still open when the
last fold ran (its history rows stamped earlier than they committed) is
caught by the next. ``rollups_rebuild`` recomputes everything (or a range):
the backfill command, and the first fold on a database without a watermark.

The dashboard says when the rollups were last folded (``RollupState``).
"""

import functools
import operator
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from reviews.models import (
    DailyCodeRollup,
    DailyDecisionRollup,
    DailyReviewerRollup,
    ItemKind,
    ItemStatus,
    JudgeLabel,
    JudgeVerdict,
    Review,
    ReviewItem,
    RollupCodeKind,
    RollupState,
    Verdict,
)
from reviews.models.items import FINAL_STATUSES

STATE = "monitoring"
FOLD_LOOKBACK = timedelta(minutes=10)
# Above this many dirty days a fold recomputes each project's span in one go.
MAX_PAIRS_PER_QUERY = 60

HUMAN_FINAL = (ItemStatus.APPROVED, ItemStatus.CORRECTED, ItemStatus.REJECTED)
CHANGED = (Verdict.CORRECT, Verdict.REJECT)


@dataclass(frozen=True)
class Span:
    """Days ``first``..``last`` (inclusive; None: unbounded) of one project (None: all)."""

    project_id: int | None = None
    first: date | None = None
    last: date | None = None


@dataclass(frozen=True)
class FoldResult:
    days: int
    """(project, day) pairs recomputed; -1 for a full rebuild."""
    rows: int
    """Rollup rows written."""
    folded_at: datetime


def day_start(day: date) -> datetime:
    """Midnight starting ``day`` in the current time zone (the rollups' days)."""
    return timezone.make_aware(datetime.combine(day, time.min))


def local_day(moment: datetime) -> date:
    return timezone.localtime(moment).date()


def rollup_state() -> RollupState | None:
    """The fold's watermark row, or None before the first fold."""
    return RollupState.objects.filter(name=STATE).first()


def rollups_fold(*, now: datetime | None = None) -> FoldResult:
    """Fold every change since the last fold into the daily rollups.

    Recomputes the (project, day) pairs touched since the watermark minus
    ``FOLD_LOOKBACK``; without a watermark, rebuilds everything. Holds the
    state row's lock, so concurrent folds (two schedulers) run one after the
    other.
    """
    now = now or timezone.now()
    with transaction.atomic():
        state = _state_locked()
        if state.folded_at is None:
            return _rebuild(state=state, spans=[Span()], now=now)
        pairs = _dirty_pairs(since=state.folded_at - FOLD_LOOKBACK)
        spans = _spans(pairs)
        rows = _recompute(spans) if spans else 0
        state.folded_at = now
        state.save(update_fields=["folded_at"])
    return FoldResult(days=len(pairs), rows=rows, folded_at=now)


def rollups_rebuild(
    *,
    project_ids: Iterable[int] | None = None,
    since: date | None = None,
    now: datetime | None = None,
) -> FoldResult:
    """Recompute the rollups from the raw rows: all of them, or some projects from a day on.

    The backfill for existing data; idempotent. Sets the watermark when it
    rebuilt everything, so the next fold continues from here.
    """
    now = now or timezone.now()
    if project_ids is None:
        spans = [Span(first=since)]
    else:
        spans = [Span(project_id=pk, first=since) for pk in project_ids]
    with transaction.atomic():
        state = _state_locked()
        full = project_ids is None and since is None
        return _rebuild(state=state, spans=spans, now=now, full=full)


def _state_locked() -> RollupState:
    RollupState.objects.get_or_create(name=STATE)
    return RollupState.objects.select_for_update().get(name=STATE)


def _rebuild(*, state: RollupState, spans: list[Span], now: datetime, full: bool = True):
    rows = _recompute(spans)
    if full:
        state.folded_at = state.rebuilt_at = now
        state.save(update_fields=["folded_at", "rebuilt_at"])
    return FoldResult(days=-1, rows=rows, folded_at=state.folded_at or now)


def _dirty_pairs(*, since: datetime) -> set[tuple[int, date]]:
    """(project, day) pairs whose raw rows changed since ``since``.

    An item's change shows in its history: the day it was decided before (the
    history row) and after (the row now); its reviews' and verdicts' days too,
    since a review is written with a change of its item. Reviews and verdicts
    written in bulk without history are found by their own time.
    """
    item_history = ReviewItem.history.model.objects.filter(history_date__gte=since)
    changed_ids = item_history.values("id")
    review_history = Review.history.model.objects.filter(history_date__gte=since)
    day = TruncDate
    queries = [
        item_history.filter(decided_at__isnull=False)
        .annotate(d=day("decided_at"))
        .values_list("project_id", "d"),
        ReviewItem.objects.filter(id__in=changed_ids, decided_at__isnull=False)
        .annotate(d=day("decided_at"))
        .values_list("project_id", "d"),
    ]
    # One query per index (an OR of the two would scan the whole table).
    for model in (Review, JudgeVerdict):
        for condition in (Q(item_id__in=changed_ids), Q(created_at__gte=since)):
            queries.append(
                model.objects.filter(condition)
                .annotate(d=day("created_at"))
                .values_list("item__project_id", "d")
            )
    queries.append(
        Review.objects.filter(id__in=review_history.values("id"))
        .annotate(d=day("created_at"))
        .values_list("item__project_id", "d")
    )
    pairs: set[tuple[int, date]] = set()
    for query in queries:
        pairs.update(query.distinct().order_by())
    return pairs


def _spans(pairs: set[tuple[int, date]]) -> list[Span]:
    """Runs of consecutive days per project; one span per project when there are many."""
    by_project: dict[int, list[date]] = defaultdict(list)
    for project_id, day in pairs:
        by_project[project_id].append(day)
    spans = []
    for project_id, days in sorted(by_project.items()):
        days.sort()
        start = prev = days[0]
        for day in days[1:]:
            if day != prev + timedelta(days=1):
                spans.append(Span(project_id, start, prev))
                start = day
            prev = day
        spans.append(Span(project_id, start, prev))
    if len(spans) > MAX_PAIRS_PER_QUERY:
        spans = [Span(pk, min(days), max(days)) for pk, days in sorted(by_project.items())]
    return spans


def _where(spans: list[Span], *, project: str, moment: str) -> Q:
    """Raw rows of ``spans``: ``project`` names the project id field, ``moment`` the time."""
    parts = []
    for span in spans:
        part = Q()
        if span.project_id is not None:
            part &= Q(**{project: span.project_id})
        if span.first is not None:
            part &= Q(**{f"{moment}__gte": day_start(span.first)})
        if span.last is not None:
            part &= Q(**{f"{moment}__lt": day_start(span.last + timedelta(days=1))})
        parts.append(part)
    return _any(parts)


def _any(parts: list[Q]) -> Q:
    # An empty part matches everything (a full rebuild); no parts match nothing.
    if not parts:
        return Q(pk__in=[])
    if any(not part for part in parts):
        return Q()
    return functools.reduce(operator.or_, parts)


def _recompute(spans: list[Span]) -> int:
    """Replace the rollup rows of ``spans`` with sums of the raw rows. Returns rows written."""
    decisions: dict[tuple, DailyDecisionRollup] = {}

    def row(project_id, model_name, model_version, day) -> DailyDecisionRollup:
        key = (project_id, model_name, model_version, day)
        if key not in decisions:
            decisions[key] = DailyDecisionRollup(
                project_id=project_id, model_name=model_name, model_version=model_version, day=day
            )
        return decisions[key]

    human = Q(status__in=HUMAN_FINAL)
    for r in (
        ReviewItem.objects.filter(
            _where(spans, project="project_id", moment="decided_at"),
            status__in=FINAL_STATUSES,
            decided_at__isnull=False,
            # Accuracy per model version is of single outputs; a comparison names no one model.
            kind=ItemKind.SINGLE,
        )
        .annotate(day=TruncDate("decided_at"))
        .values("project_id", "model_name", "model_version", "day")
        .annotate(
            reviewed_total=Count("id", filter=human),
            reviewed_correct=Count("id", filter=human & Q(final_verdict=Verdict.APPROVE)),
            reviewed_corrected=Count("id", filter=Q(status=ItemStatus.CORRECTED)),
            reviewed_rejected=Count("id", filter=Q(status=ItemStatus.REJECTED)),
            auto_approved=Count("id", filter=Q(status=ItemStatus.AUTO_APPROVED)),
            auto_rejected=Count("id", filter=Q(status=ItemStatus.AUTO_REJECTED)),
        )
        .order_by()
    ):
        target = row(r["project_id"], r["model_name"], r["model_version"], r["day"])
        for name in (
            "reviewed_total",
            "reviewed_correct",
            "reviewed_corrected",
            "reviewed_rejected",
            "auto_approved",
            "auto_rejected",
        ):
            setattr(target, name, r[name])

    # One pass over the reviews feeds three rollups: grouped by everything any of
    # them needs (a few hundred groups a day), then summed here.
    reviewers: dict[tuple, DailyReviewerRollup] = {}
    codes: dict[tuple, DailyCodeRollup] = {}
    for r in (
        Review.objects.filter(_where(spans, project="item__project_id", moment="created_at"))
        .annotate(day=TruncDate("created_at"))
        .values(
            "item__project_id",
            "item__model_name",
            "item__model_version",
            "reviewer_id",
            "day",
            "verdict",
            "is_audit",
            "item__is_control",
            "item__kind",
            "reason_code",
            "severity",
        )
        .annotate(n=Count("*"), seconds=Sum("seconds_spent"))
        .order_by()
    ):
        project_id, day, n, verdict = r["item__project_id"], r["day"], r["n"], r["verdict"]
        # Control reviews measure the reviewer, never the model: throughput only.
        control = r["item__is_control"]
        # Nor does a comparison's preference measure one model (the reviewer's work counts).
        if not control and r["item__kind"] == ItemKind.SINGLE:
            target = row(project_id, r["item__model_name"], r["item__model_version"], day)
            if r["is_audit"]:
                target.audit_total += n
                target.audit_correct += n if verdict == Verdict.APPROVE else 0
            else:
                target.reviews_total += n
                target.reviews_changed += n if verdict in CHANGED else 0
        key = (project_id, r["reviewer_id"], day)
        if key not in reviewers:
            reviewers[key] = DailyReviewerRollup(
                project_id=project_id,
                reviewer_id=r["reviewer_id"],
                day=day,
                reviews=0,
                approved=0,
                corrected=0,
                rejected=0,
                audits=0,
                seconds_spent=0.0,
            )
        person = reviewers[key]
        person.reviews += n
        person.approved += n if verdict == Verdict.APPROVE else 0
        person.corrected += n if verdict == Verdict.CORRECT else 0
        person.rejected += n if verdict == Verdict.REJECT else 0
        person.audits += n if r["is_audit"] else 0
        person.seconds_spent += r["seconds"] or 0.0
        if verdict in CHANGED and not control:
            counted = [(RollupCodeKind.SEVERITY, r["severity"])]
            if r["reason_code"]:
                counted.append((RollupCodeKind.REASON, r["reason_code"]))
            for kind, code in counted:
                key = (project_id, day, kind, code)
                if key not in codes:
                    codes[key] = DailyCodeRollup(
                        project_id=project_id, day=day, kind=kind, code=code, count=0
                    )
                codes[key].count += n

    for r in (
        # A control's verdict (copied, or judged again) says nothing new about the model.
        JudgeVerdict.objects.filter(_where(spans, project="item__project_id", moment="created_at"))
        .filter(item__is_control=False)
        .annotate(day=TruncDate("created_at"))
        .values("item__project_id", "item__model_name", "item__model_version", "day")
        .annotate(
            judge_total=Count("id"), judge_flagged=Count("id", filter=~Q(label=JudgeLabel.PASS))
        )
        .order_by()
    ):
        target = row(
            r["item__project_id"], r["item__model_name"], r["item__model_version"], r["day"]
        )
        target.judge_total, target.judge_flagged = r["judge_total"], r["judge_flagged"]

    for model in (DailyDecisionRollup, DailyReviewerRollup, DailyCodeRollup):
        model.objects.filter(_days(spans)).delete()
    DailyDecisionRollup.objects.bulk_create(decisions.values(), batch_size=1000)
    DailyReviewerRollup.objects.bulk_create(reviewers.values(), batch_size=1000)
    DailyCodeRollup.objects.bulk_create(codes.values(), batch_size=1000)
    return len(decisions) + len(reviewers) + len(codes)


def _days(spans: list[Span]) -> Q:
    """The rollup rows (by ``day``) of ``spans``."""
    parts = []
    for span in spans:
        part = Q()
        if span.project_id is not None:
            part &= Q(project_id=span.project_id)
        if span.first is not None:
            part &= Q(day__gte=span.first)
        if span.last is not None:
            part &= Q(day__lte=span.last)
        parts.append(part)
    return _any(parts)
