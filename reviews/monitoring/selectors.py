"""Read paths of the monitoring dashboard: rollups, plus the live queue and open alerts.

Every figure but the queue comes from the daily rollups, so the number of
queries is fixed and the rows read follow the projects, models, reviewers and
days shown, not the decisions made (the dashboard test asserts the query count
at two data sizes; bench/monitoring.py times it at 10 million decisions).
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import Count, Min, Q, Sum
from django.utils import timezone

from reviews.access import Capability, projects_where
from reviews.models import (
    BudgetDay,
    DailyCodeRollup,
    DailyReviewerRollup,
    DriftAlert,
    Project,
    ReviewItem,
    RollupCodeKind,
    RollupState,
)
from reviews.monitoring.rollups import local_day, rollup_state
from reviews.monitoring.services import (
    BUCKETS,
    AccuracyPoint,
    ModeAdvice,
    Proportion,
    WindowStats,
    accuracy_points,
    bucket_of,
    mode_advice,
    period_start,
    rollup_rows,
    window_stats,
)

PERIOD_DAYS = (7, 30, 90, 365)
BUCKET_CHOICES = ("auto", *BUCKETS)
TOP_REASONS = 10
TOP_REVIEWERS = 25
MAX_AUTO_DAYS = 31
"""The automatic bucket shows weeks for longer periods: 90 daily points are 7 px apart."""
MIN_BAND_N = 30
"""A bucket needs this many decisions for its 95% band to be drawn (and to count as "enough"
when the automatic bucket picks days or weeks): below it one wrong answer moves the rate by
over 3 points and the Wilson band spans most of the chart."""


@dataclass
class QueueRow:
    project: Project
    depth: int = 0
    audit_depth: int = 0
    oldest: datetime | None = None
    now: datetime | None = None

    @property
    def age(self) -> timedelta | None:
        return self.now - self.oldest if self.oldest and self.now else None


@dataclass
class ReviewerRow:
    username: str
    total: int
    approved: int
    corrected: int
    rejected: int
    audits: int
    avg_seconds: float | None


@dataclass
class RatePoint:
    project_id: int
    bucket: date
    rate: Proportion


@dataclass
class ProjectHealth:
    project: Project
    stats: WindowStats
    advice: ModeAdvice | None


@dataclass(frozen=True)
class BudgetRow:
    """What a project's review budget did over the dashboard's period (``BudgetDay`` sums)."""

    project: Project
    considered: int
    sent_risk: int
    sent_budget: int
    over_capacity: int
    released_below_threshold: int

    @property
    def sent(self) -> int:
        return self.sent_risk + self.sent_budget

    @property
    def share(self) -> Proportion:
        """The realised share sent to review, risk triggers included."""
        return Proportion(self.sent, self.considered)

    @property
    def unreviewed(self) -> int:
        """What the budget left unreviewed: chosen but over the day's capacity, and
        released under the fixed threshold (that the threshold alone would have sent)."""
        return self.over_capacity + self.released_below_threshold


@dataclass
class Dashboard:
    now: datetime
    projects: list[Project]
    selected: Project | None
    bucket: str
    """The bucket shown: "day" or "week" ("auto" resolved)."""
    requested_bucket: str
    days: int
    first_day: date
    rollups: RollupState | None = None
    queue: list[QueueRow] = field(default_factory=list)
    reviewers: list[ReviewerRow] = field(default_factory=list)
    accuracy: list[AccuracyPoint] = field(default_factory=list)
    interventions: list[RatePoint] = field(default_factory=list)
    judge_flags: list[RatePoint] = field(default_factory=list)
    reasons: list[tuple[str, int]] = field(default_factory=list)
    severities: list[tuple[str, int]] = field(default_factory=list)
    health: list[ProjectHealth] = field(default_factory=list)
    alerts: list[DriftAlert] = field(default_factory=list)
    budgets: list[BudgetRow] = field(default_factory=list)

    @property
    def scope(self) -> list[Project]:
        """The projects every figure covers: the selected one, or all visible ones."""
        return [self.selected] if self.selected else self.projects

    @property
    def last_day(self) -> date:
        return local_day(self.now)

    @property
    def since(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.first_day, datetime.min.time()))

    @property
    def folded_ago(self) -> timedelta | None:
        if self.rollups is None or self.rollups.folded_at is None:
            return None
        return max(self.now - self.rollups.folded_at, timedelta(0))

    @property
    def intervention_total(self) -> Proportion:
        return Proportion(
            sum(p.rate.successes for p in self.interventions),
            sum(p.rate.total for p in self.interventions),
        )

    @property
    def judge_flag_total(self) -> Proportion:
        return Proportion(
            sum(p.rate.successes for p in self.judge_flags),
            sum(p.rate.total for p in self.judge_flags),
        )


def bucket_range(*, first_day: date, last_day: date, bucket: str) -> list[date]:
    """Every day or week bucket from ``first_day`` to ``last_day``, as ``bucket_of`` labels them."""
    step = timedelta(days=7 if bucket == "week" else 1)
    current, buckets = bucket_of(first_day, bucket), []
    while current <= last_day:
        buckets.append(current)
        current += step
    return buckets


def _thin(points: list[AccuracyPoint]) -> bool:
    """Most daily points hold fewer than ``MIN_BAND_N`` decisions: show weeks instead."""
    enough = sum(1 for p in points if p.accuracy.total >= MIN_BAND_N)
    return bool(points) and enough * 2 < len(points)


def _rates(rows: list[dict], *, bucket: str, total: str, hits: str) -> list[RatePoint]:
    sums: dict[tuple[int, date], list[int]] = {}
    for row in rows:
        if row[total]:
            entry = sums.setdefault((row["project_id"], bucket_of(row["day"], bucket)), [0, 0])
            entry[0] += row[hits]
            entry[1] += row[total]
    return [
        RatePoint(project_id, at, Proportion(n, t))
        for (project_id, at), (n, t) in sorted(sums.items())
    ]


def dashboard(
    *,
    user,
    project_id: int | None = None,
    bucket: str = "auto",
    days: int = 30,
    now: datetime | None = None,
) -> Dashboard:
    """Everything the monitoring dashboard shows, for the projects ``user`` may see.

    ``project_id`` narrows every figure, the queue included, to one project.
    ``bucket`` "auto" shows days unless the period is longer than
    ``MAX_AUTO_DAYS`` or most days hold fewer than ``MIN_BAND_N`` decisions,
    then weeks. A fixed number of queries.
    """
    now = now or timezone.now()
    if bucket not in BUCKET_CHOICES:
        bucket = "auto"
    first_day = period_start(now=now, days=days)
    projects = list(projects_where(user, Capability.VIEW).order_by("name"))
    selected = next((p for p in projects if p.pk == project_id), None)
    data = Dashboard(
        now=now,
        projects=projects,
        selected=selected,
        bucket="day" if bucket == "auto" else bucket,
        requested_bucket=bucket,
        days=days,
        first_day=first_day,
    )
    if not projects:
        return data
    scope_ids = [p.pk for p in data.scope]
    data.rollups = rollup_state()

    queue = {p.pk: QueueRow(project=p, now=now) for p in data.scope}
    for row in (
        ReviewItem.objects.filter(project_id__in=scope_ids, in_queue=True)
        .values("project_id")
        .annotate(
            # Columns of monitoring_queue_depth_idx only (no id): answered index-only.
            depth=Count("*"),
            audit=Count("is_audit", filter=Q(is_audit=True)),
            oldest=Min("created_at"),
        )
        .order_by()
    ):
        entry = queue[row["project_id"]]
        entry.depth, entry.audit_depth, entry.oldest = row["depth"], row["audit"], row["oldest"]
    data.queue = list(queue.values())

    rows = rollup_rows(project_ids=scope_ids, first_day=first_day)
    daily = accuracy_points(rows, bucket="day")
    if bucket == "auto" and (days > MAX_AUTO_DAYS or _thin(daily)):
        data.bucket = "week"
    data.accuracy = daily if data.bucket == "day" else accuracy_points(rows, bucket="week")
    data.interventions = _rates(
        rows, bucket=data.bucket, total="reviews_total", hits="reviews_changed"
    )
    data.judge_flags = _rates(rows, bucket=data.bucket, total="judge_total", hits="judge_flagged")

    data.reviewers = [
        ReviewerRow(
            username=row["reviewer__username"],
            total=row["total"],
            approved=row["approved"],
            corrected=row["corrected"],
            rejected=row["rejected"],
            audits=row["audits"],
            avg_seconds=row["seconds"] / row["total"] if row["total"] else None,
        )
        for row in DailyReviewerRollup.objects.filter(project_id__in=scope_ids, day__gte=first_day)
        .values("reviewer__username")
        .annotate(
            total=Sum("reviews"),
            approved=Sum("approved"),
            corrected=Sum("corrected"),
            rejected=Sum("rejected"),
            audits=Sum("audits"),
            seconds=Sum("seconds_spent"),
        )
        .order_by("-total", "reviewer__username")[:TOP_REVIEWERS]
    ]

    codes: dict[str, list[tuple[str, int]]] = {
        RollupCodeKind.REASON: [],
        RollupCodeKind.SEVERITY: [],
    }
    for row in (
        DailyCodeRollup.objects.filter(project_id__in=scope_ids, day__gte=first_day)
        .values("kind", "code")
        .annotate(n=Sum("count"))
        .order_by("-n", "code")
    ):
        codes[row["kind"]].append((row["code"], row["n"]))
    data.reasons = codes[RollupCodeKind.REASON][:TOP_REASONS]
    data.severities = codes[RollupCodeKind.SEVERITY]

    stats = window_stats(projects=data.scope, now=now)
    data.health = [
        ProjectHealth(p, stats[p.pk], mode_advice(project=p, stats=stats[p.pk])) for p in data.scope
    ]
    data.alerts = list(
        DriftAlert.objects.filter(project_id__in=scope_ids, resolved_at__isnull=True)
        .select_related("project")
        .order_by("-created_at")
    )
    data.budgets = budget_rows(projects=data.scope, first_day=first_day)
    return data


def budget_rows(*, projects: list[Project], first_day: date) -> list[BudgetRow]:
    """Per project with a review budget, its day counters summed since ``first_day``.

    One query over one row per project and day (``BudgetDay``), whatever the traffic.
    """
    names = {p.pk: p for p in projects}
    sums = (
        BudgetDay.objects.filter(project_id__in=list(names), day__gte=first_day)
        .values("project_id")
        .annotate(
            considered=Sum("considered"),
            sent_risk=Sum("sent_risk"),
            sent_budget=Sum("sent_budget"),
            over_capacity=Sum("over_capacity"),
            released=Sum("released_below_threshold"),
        )
        .order_by()
    )
    rows = [
        BudgetRow(
            project=names[row["project_id"]],
            considered=row["considered"],
            sent_risk=row["sent_risk"],
            sent_budget=row["sent_budget"],
            over_capacity=row["over_capacity"],
            released_below_threshold=row["released"],
        )
        for row in sums
    ]
    return sorted(rows, key=lambda row: row.project.name)
