"""Read paths of the monitoring dashboard: every figure is one grouped SQL query.

The number of queries does not grow with items, reviews, projects, reviewers
or model versions (the dashboard test asserts it).
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Avg, Count, Min, Q
from django.utils import timezone

from reviews.access import Capability, projects_where
from reviews.models import (
    DriftAlert,
    JudgeLabel,
    JudgeVerdict,
    Project,
    Review,
    ReviewItem,
    Verdict,
)
from reviews.monitoring.services import (
    BUCKETS,
    AccuracyPoint,
    ModeAdvice,
    Proportion,
    WindowStats,
    accuracy_series,
    mode_advice,
    window_stats,
)

PERIOD_DAYS = (7, 30, 90, 365)
TOP_REASONS = 10
TOP_REVIEWERS = 25


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
    bucket: datetime
    rate: Proportion


@dataclass
class ProjectHealth:
    project: Project
    stats: WindowStats
    advice: ModeAdvice | None


@dataclass
class Dashboard:
    now: datetime
    projects: list[Project]
    selected: Project | None
    bucket: str
    days: int
    since: datetime
    queue: list[QueueRow] = field(default_factory=list)
    reviewers: list[ReviewerRow] = field(default_factory=list)
    accuracy: list[AccuracyPoint] = field(default_factory=list)
    interventions: list[RatePoint] = field(default_factory=list)
    judge_flags: list[RatePoint] = field(default_factory=list)
    reasons: list[tuple[str, int]] = field(default_factory=list)
    severities: list[tuple[str, int]] = field(default_factory=list)
    health: list[ProjectHealth] = field(default_factory=list)
    alerts: list[DriftAlert] = field(default_factory=list)

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


def bucket_range(*, start: datetime, end: datetime, bucket: str) -> list[datetime]:
    """Every day or week bucket from ``start`` to ``end``, as TruncDay / TruncWeek label them."""
    tz = timezone.get_current_timezone()
    first = timezone.localtime(start, tz).replace(hour=0, minute=0, second=0, microsecond=0)
    step = timedelta(days=1)
    if bucket == "week":
        first -= timedelta(days=first.weekday())
        step = timedelta(days=7)
    buckets, current = [], first
    while current <= end:
        buckets.append(current)
        current = (current + step).replace(tzinfo=None)
        current = timezone.make_aware(current, tz)
    return buckets


def dashboard(
    *,
    user,
    project_id: int | None = None,
    bucket: str = "day",
    days: int = 30,
    now: datetime | None = None,
) -> Dashboard:
    """Everything the monitoring dashboard shows, for the projects ``user`` may see.

    ``project_id`` narrows every figure but the queue table (which always
    lists all visible projects) to one project.
    """
    now = now or timezone.now()
    if bucket not in BUCKETS:
        bucket = "day"
    since = now - timedelta(days=days)
    visible = projects_where(user, Capability.VIEW).order_by("name")
    projects = list(visible)
    selected = next((p for p in projects if p.pk == project_id), None)
    scope_ids = [selected.pk] if selected else [p.pk for p in projects]
    data = Dashboard(
        now=now, projects=projects, selected=selected, bucket=bucket, days=days, since=since
    )
    if not projects:
        return data

    queue = {p.pk: QueueRow(project=p, now=now) for p in projects}
    for row in (
        ReviewItem.objects.filter(project_id__in=list(queue), in_queue=True)
        .values("project_id")
        .annotate(
            depth=Count("id"), audit=Count("id", filter=Q(is_audit=True)), oldest=Min("created_at")
        )
        .order_by()
    ):
        entry = queue[row["project_id"]]
        entry.depth, entry.audit_depth, entry.oldest = row["depth"], row["audit"], row["oldest"]
    data.queue = list(queue.values())

    reviews = Review.objects.filter(item__project_id__in=scope_ids, created_at__gte=since)
    data.reviewers = [
        ReviewerRow(
            username=row["reviewer__username"],
            total=row["total"],
            approved=row["approved"],
            corrected=row["corrected"],
            rejected=row["rejected"],
            audits=row["audits"],
            avg_seconds=row["avg_seconds"],
        )
        for row in reviews.values("reviewer__username")
        .annotate(
            total=Count("id"),
            approved=Count("id", filter=Q(verdict=Verdict.APPROVE)),
            corrected=Count("id", filter=Q(verdict=Verdict.CORRECT)),
            rejected=Count("id", filter=Q(verdict=Verdict.REJECT)),
            audits=Count("id", filter=Q(is_audit=True)),
            avg_seconds=Avg("seconds_spent"),
        )
        .order_by("-total", "reviewer__username")[:TOP_REVIEWERS]
    ]

    data.accuracy = accuracy_series(project_ids=scope_ids, bucket=bucket, since=since)

    trunc = BUCKETS[bucket]
    changed = Q(verdict__in=[Verdict.CORRECT, Verdict.REJECT])
    data.interventions = [
        RatePoint(row["bucket"], Proportion(row["changed"], row["total"]))
        for row in reviews.filter(is_audit=False)
        .annotate(bucket=trunc("created_at"))
        .values("bucket")
        .annotate(total=Count("id"), changed=Count("id", filter=changed))
        .order_by("bucket")
    ]
    data.judge_flags = [
        RatePoint(row["bucket"], Proportion(row["flagged"], row["total"]))
        for row in JudgeVerdict.objects.filter(
            item__project_id__in=scope_ids, created_at__gte=since
        )
        .annotate(bucket=trunc("created_at"))
        .values("bucket")
        .annotate(total=Count("id"), flagged=Count("id", filter=~Q(label=JudgeLabel.PASS)))
        .order_by("bucket")
    ]
    data.reasons = [
        (row["reason_code"], row["n"])
        for row in reviews.filter(changed)
        .exclude(reason_code="")
        .values("reason_code")
        .annotate(n=Count("id"))
        .order_by("-n", "reason_code")[:TOP_REASONS]
    ]
    data.severities = [
        (row["severity"], row["n"])
        for row in reviews.filter(changed)
        .values("severity")
        .annotate(n=Count("id"))
        .order_by("-n", "severity")
    ]

    scoped = [p for p in projects if p.pk in scope_ids]
    stats = window_stats(projects=scoped, now=now)
    data.health = [
        ProjectHealth(p, stats[p.pk], mode_advice(project=p, stats=stats[p.pk])) for p in scoped
    ]
    data.alerts = list(
        DriftAlert.objects.filter(project_id__in=scope_ids, resolved_at__isnull=True)
        .select_related("project")
        .order_by("-created_at")
    )
    return data
