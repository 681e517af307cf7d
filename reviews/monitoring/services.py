"""Tier 4, continuous monitoring: accuracy, drift alerts and HITL⇄HOTL advice.

Two estimates of a model's accuracy, never mixed:

* **reviewed**: items a human decided (approved = correct, corrected or
  rejected = wrong), by ``decided_at``. In gate mode this is every item; in
  monitor mode only the triggered ones, a sample biased towards trouble.
* **audit**: audit reviews of auto-approved items (``Review.is_audit``), by
  review time. The unbiased estimate of what monitor mode lets through; the
  only input to drift detection and to the monitor → gate advice.

The intervention rate is the share of (non-audit) human reviews in which the
reviewer corrected or rejected the output. Every figure is aggregated in SQL
(one query per figure, however many rows); the 95% intervals are Wilson
score intervals.
"""

import functools
import math
import operator
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDay, TruncWeek
from django.utils import timezone

from reviews.errors import DomainError
from reviews.models import (
    DriftAlert,
    ItemStatus,
    Project,
    ProjectMode,
    Review,
    ReviewItem,
    Verdict,
)

Z_95 = 1.959963984540054
HUMAN_FINAL_STATUSES = (ItemStatus.APPROVED, ItemStatus.CORRECTED, ItemStatus.REJECTED)
BUCKETS = {"day": TruncDay, "week": TruncWeek}
SOURCE_REVIEWED = "reviewed"
SOURCE_AUDIT = "audit"


def wilson_interval(successes: int, total: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval for ``successes`` out of ``total`` (95% by default).

    Unlike the normal approximation it stays inside [0, 1] and behaves at 0 and
    ``total`` successes and for small samples. No data gives (0, 1).
    """
    if total <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= total:
        raise ValueError("successes must be between 0 and total")
    p = successes / total
    z2 = z * z
    denominator = 1 + z2 / total
    centre = (p + z2 / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total)) / denominator
    # At 0 or ``total`` successes the bound is exactly 0 or 1; float rounding would miss it.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == total else min(1.0, centre + half)
    return low, high


@dataclass(frozen=True)
class Proportion:
    """``successes`` out of ``total`` with its Wilson 95% interval."""

    successes: int
    total: int

    @property
    def rate(self) -> float | None:
        return self.successes / self.total if self.total else None

    @property
    def low(self) -> float:
        return wilson_interval(self.successes, self.total)[0]

    @property
    def high(self) -> float:
        return wilson_interval(self.successes, self.total)[1]


@dataclass(frozen=True)
class AccuracyPoint:
    source: str
    model_version: str
    bucket: datetime
    accuracy: Proportion


# --- querysets for the two accuracy sources -------------------------------------


def human_decisions(project_ids: Iterable[int]) -> QuerySet[ReviewItem]:
    """Items a human made final (reviewed accuracy).

    Takes project ids, not a queryset: with literal ids PostgreSQL can use the
    (project, decided_at) index instead of joining a subquery over all items.
    """
    return ReviewItem.objects.filter(
        project_id__in=list(project_ids),
        status__in=HUMAN_FINAL_STATUSES,
        decided_at__isnull=False,
    )


def audit_reviews(project_ids: Iterable[int]) -> QuerySet[Review]:
    """Audit reviews of auto-approved items (audit accuracy)."""
    return Review.objects.filter(item__project_id__in=list(project_ids), is_audit=True)


def accuracy_series(
    *, project_ids: Iterable[int], bucket: str, since: datetime
) -> list[AccuracyPoint]:
    """Accuracy per model version and day/week bucket since ``since``, both sources.

    Two queries in all, each one GROUP BY over (model version, bucket).
    """
    project_ids = list(project_ids)
    trunc = BUCKETS[bucket]
    points: list[AccuracyPoint] = []
    reviewed = (
        human_decisions(project_ids)
        .filter(decided_at__gte=since)
        .annotate(bucket=trunc("decided_at"))
        .values("model_version", "bucket")
        .annotate(total=Count("id"), correct=Count("id", filter=Q(final_verdict=Verdict.APPROVE)))
        .order_by("model_version", "bucket")
    )
    for row in reviewed:
        points.append(
            AccuracyPoint(
                SOURCE_REVIEWED,
                row["model_version"],
                row["bucket"],
                Proportion(row["correct"], row["total"]),
            )
        )
    audited = (
        audit_reviews(project_ids)
        .filter(created_at__gte=since)
        .annotate(bucket=trunc("created_at"))
        .values("item__model_version", "bucket")
        .annotate(total=Count("id"), correct=Count("id", filter=Q(verdict=Verdict.APPROVE)))
        .order_by("item__model_version", "bucket")
    )
    for row in audited:
        points.append(
            AccuracyPoint(
                SOURCE_AUDIT,
                row["item__model_version"],
                row["bucket"],
                Proportion(row["correct"], row["total"]),
            )
        )
    return points


# --- per-project window figures and mode advice ---------------------------------


@dataclass
class WindowStats:
    """One project's figures over its monitoring window."""

    reviewed: Proportion = field(default_factory=lambda: Proportion(0, 0))
    """Human-decided items that were approved."""
    interventions: Proportion = field(default_factory=lambda: Proportion(0, 0))
    """Non-audit human reviews that corrected or rejected."""
    audit: Proportion = field(default_factory=lambda: Proportion(0, 0))
    """Audit reviews that approved."""


def window_stats(*, projects: Iterable[Project], now: datetime) -> dict[int, WindowStats]:
    """Each project's window figures, keyed by project id: three grouped queries in all.

    Each project's own ``monitoring_window_days`` sets its window.
    """
    projects = list(projects)
    stats = {project.pk: WindowStats() for project in projects}
    if not projects:
        return stats
    starts = {p.pk: now - timedelta(days=p.monitoring_window_days) for p in projects}

    def in_window(project_field: str, time_field: str) -> Q:
        return _any_of(
            Q(**{project_field: pk, f"{time_field}__gte": start}) for pk, start in starts.items()
        )

    ids = list(stats)
    for row in (
        ReviewItem.objects.filter(
            in_window("project_id", "decided_at"),
            project_id__in=ids,
            status__in=HUMAN_FINAL_STATUSES,
        )
        .values("project_id")
        .annotate(total=Count("id"), correct=Count("id", filter=Q(final_verdict=Verdict.APPROVE)))
        .order_by()
    ):
        stats[row["project_id"]].reviewed = Proportion(row["correct"], row["total"])
    for row in (
        Review.objects.filter(in_window("item__project_id", "created_at"), is_audit=False)
        .values("item__project_id")
        .annotate(
            total=Count("id"),
            changed=Count("id", filter=Q(verdict__in=[Verdict.CORRECT, Verdict.REJECT])),
        )
        .order_by()
    ):
        stats[row["item__project_id"]].interventions = Proportion(row["changed"], row["total"])
    for row in (
        Review.objects.filter(in_window("item__project_id", "created_at"), is_audit=True)
        .values("item__project_id")
        .annotate(total=Count("id"), correct=Count("id", filter=Q(verdict=Verdict.APPROVE)))
        .order_by()
    ):
        stats[row["item__project_id"]].audit = Proportion(row["correct"], row["total"])
    return stats


@dataclass(frozen=True)
class ModeAdvice:
    """A recommendation to switch a project's mode, with the numbers behind it."""

    project_id: int
    to_mode: str
    headline: str
    details: str


def mode_advice(*, project: Project, stats: WindowStats) -> ModeAdvice | None:
    """The HITL⇄HOTL advice for ``project``, or None.

    Gate → monitor: at least ``advice_min_reviews`` human decisions in the
    window, accuracy ≥ ``accuracy_target`` with the Wilson lower bound above
    it, and an intervention rate below ``max_intervention_rate``.
    Monitor → gate: at least ``drift_min_samples`` audit reviews in the window
    and audit accuracy below ``accuracy_target`` (safety first: the point
    estimate suffices to go back to full review).
    """
    target = project.accuracy_target
    if project.mode == ProjectMode.GATE:
        acc, inter = stats.reviewed, stats.interventions
        if (
            acc.total >= project.advice_min_reviews
            and acc.rate >= target
            and acc.low > target
            and inter.total > 0
            and inter.rate < project.max_intervention_rate
        ):
            return ModeAdvice(
                project.pk,
                ProjectMode.MONITOR,
                "Ready for monitor mode",
                f"Accuracy {_pct(acc.rate)} (95% CI {_pct(acc.low)}-{_pct(acc.high)}) over "
                f"{acc.total} decisions ≥ target {_pct(target)}; intervention rate "
                f"{_pct(inter.rate)} < {_pct(project.max_intervention_rate)} over "
                f"{inter.total} reviews, last {project.monitoring_window_days} days.",
            )
        return None
    audit = stats.audit
    if audit.total >= project.drift_min_samples and audit.rate < target:
        return ModeAdvice(
            project.pk,
            ProjectMode.GATE,
            "Return to gate mode",
            f"Audit accuracy {_pct(audit.rate)} (95% CI {_pct(audit.low)}-{_pct(audit.high)}) "
            f"over {audit.total} audit reviews is below the target {_pct(target)}, "
            f"last {project.monitoring_window_days} days.",
        )
    return None


def _any_of(conditions) -> Q:
    return functools.reduce(operator.or_, conditions)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


@transaction.atomic
def project_mode_set(*, project: Project, mode: str, user, reason: str) -> Project:
    """Switch ``project`` to ``mode`` with an audited history row (user and reason).

    Locks the project row; switching to the current mode is a no-op.
    """
    if mode not in ProjectMode.values:
        raise DomainError(f"Unknown mode {mode!r}.")
    project = Project.objects.select_for_update().get(pk=project.pk)
    if project.mode == mode:
        return project
    project.mode = mode
    project._change_reason = reason
    project._history_user = user
    project.save(update_fields=["mode"])
    return project


def mode_advice_apply(*, project: Project, to_mode: str, user) -> Project:
    """Apply the current advice for ``project`` (the admin's one click), audited.

    The advice is recomputed first: if it no longer recommends ``to_mode``
    (new reviews came in, someone else already switched), nothing changes and
    ``DomainError`` says why.
    """
    stats = window_stats(projects=Project.objects.filter(pk=project.pk), now=timezone.now())
    advice = mode_advice(project=project, stats=stats[project.pk])
    if advice is None or advice.to_mode != to_mode:
        raise DomainError("That advice no longer holds; the dashboard shows the current figures.")
    return project_mode_set(
        project=project,
        mode=to_mode,
        user=user,
        reason=f"Applied advice: {advice.headline}. {advice.details}",
    )


# --- drift ---------------------------------------------------------------------


@dataclass(frozen=True)
class DriftFinding:
    project_id: int
    model_version: str
    baseline: Proportion
    window: Proportion
    window_start: datetime
    drifted: bool


def drift_findings(*, projects: QuerySet[Project], now: datetime) -> list[DriftFinding]:
    """Audited accuracy per model version: the window against everything before it.

    A version has drifted when both samples hold at least ``drift_min_samples``
    audit reviews and the window's upper 95% bound is below the baseline
    accuracy minus ``drift_margin``: the drop exceeds the margin with
    confidence. One grouped query for all projects.
    """
    by_pk = {project.pk: project for project in projects}
    if not by_pk:
        return []
    starts = {pk: now - timedelta(days=p.monitoring_window_days) for pk, p in by_pk.items()}
    in_window = _any_of(
        Q(item__project_id=pk, created_at__gte=start) for pk, start in starts.items()
    )
    correct = Q(verdict=Verdict.APPROVE)
    rows = (
        Review.objects.filter(item__project_id__in=list(by_pk), is_audit=True, created_at__lte=now)
        .values("item__project_id", "item__model_version")
        .annotate(
            window_total=Count("id", filter=in_window),
            window_correct=Count("id", filter=in_window & correct),
            baseline_total=Count("id", filter=~in_window),
            baseline_correct=Count("id", filter=~in_window & correct),
        )
        .order_by("item__project_id", "item__model_version")
    )
    findings = []
    for row in rows:
        project = by_pk[row["item__project_id"]]
        baseline = Proportion(row["baseline_correct"], row["baseline_total"])
        window = Proportion(row["window_correct"], row["window_total"])
        enough = min(baseline.total, window.total) >= project.drift_min_samples
        drifted = enough and window.high < baseline.rate - project.drift_margin
        findings.append(
            DriftFinding(
                project.pk,
                row["item__model_version"],
                baseline,
                window,
                starts[project.pk],
                drifted,
            )
        )
    return findings


def drift_evaluate(*, project: Project, now: datetime | None = None) -> list[DriftAlert]:
    """Raise an alert for each drifted model version of ``project`` without an open one.

    With ``drift_auto_gate`` on, a monitor-mode project is switched back to
    gate mode in the same transaction, with a history row giving the reason.
    Returns the alerts raised by this call.
    """
    now = now or timezone.now()
    raised = []
    for finding in drift_findings(projects=Project.objects.filter(pk=project.pk), now=now):
        if finding.drifted:
            alert = _drift_alert_raise(finding=finding, now=now)
            if alert is not None:
                raised.append(alert)
    return raised


def drift_evaluate_all(*, now: datetime | None = None) -> list[DriftAlert]:
    """``drift_evaluate`` for every project at once (the periodic job)."""
    now = now or timezone.now()
    raised = []
    for finding in drift_findings(projects=Project.objects.all(), now=now):
        if finding.drifted:
            alert = _drift_alert_raise(finding=finding, now=now)
            if alert is not None:
                raised.append(alert)
    return raised


@transaction.atomic
def _drift_alert_raise(*, finding: DriftFinding, now: datetime) -> DriftAlert | None:
    # The project row lock serialises concurrent evaluations of one project, so
    # the one-open-alert constraint is never hit by a race.
    project = Project.objects.select_for_update().get(pk=finding.project_id)
    if DriftAlert.objects.filter(
        project=project, model_version=finding.model_version, resolved_at__isnull=True
    ).exists():
        return None
    alert = DriftAlert(
        project=project,
        model_version=finding.model_version,
        window_start=finding.window_start,
        window_end=now,
        baseline_correct=finding.baseline.successes,
        baseline_total=finding.baseline.total,
        window_correct=finding.window.successes,
        window_total=finding.window.total,
        margin=project.drift_margin,
        created_at=now,
    )
    if project.drift_auto_gate and project.mode == ProjectMode.MONITOR:
        project_mode_set(
            project=project,
            mode=ProjectMode.GATE,
            user=None,
            reason=(
                f"Drift alert on {finding.model_version}: audited accuracy "
                f"{_pct(finding.window.rate)} (95% CI {_pct(finding.window.low)}-"
                f"{_pct(finding.window.high)}, n={finding.window.total}) against a baseline "
                f"of {_pct(finding.baseline.rate)} (n={finding.baseline.total}), "
                f"margin {_pct(project.drift_margin)}; switched back to gate mode."
            ),
        )
        alert.switched_to_gate = True
    alert.save()
    return alert


@transaction.atomic
def drift_alert_resolve(*, alert: DriftAlert, user) -> DriftAlert:
    """Close an alert (an admin acknowledged it); a new drop raises a new one."""
    alert = DriftAlert.objects.select_for_update().get(pk=alert.pk)
    if alert.resolved_at is None:
        alert.resolved_at = timezone.now()
        alert.resolved_by = user
        alert.save(update_fields=["resolved_at", "resolved_by"])
    return alert
