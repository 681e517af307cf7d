"""Tier 4, continuous monitoring: accuracy, drift alerts and HITL⇄HOTL advice.

Two estimates of a model's accuracy, never mixed:

* **reviewed**: items a human decided (approved = correct, corrected or
  rejected = wrong), by ``decided_at``. In gate mode this is every item; in
  monitor mode only the triggered ones, a sample biased towards trouble.
* **audit**: audit reviews of auto-approved items (``Review.is_audit``), by
  review time. The unbiased estimate of what monitor mode lets through; the
  only input to drift detection and to the monitor → gate advice.

The intervention rate is the share of (non-audit) human reviews in which the
reviewer corrected or rejected the output. Every figure is read from the daily
rollups (``reviews.monitoring.rollups``), so what it costs depends on the
projects, models and days shown, not on how many decisions were made. Periods
and windows are whole days in ``settings.TIME_ZONE``: "the last 7 days" is
today and the six days before. The 95% intervals are Wilson score intervals.
"""

import functools
import math
import operator
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db import transaction
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from reviews.errors import DomainError
from reviews.models import (
    DailyDecisionRollup,
    DriftAlert,
    ItemStatus,
    Project,
    ProjectMode,
)
from reviews.monitoring.rollups import day_start, local_day

Z_95 = 1.959963984540054
HUMAN_FINAL_STATUSES = (ItemStatus.APPROVED, ItemStatus.CORRECTED, ItemStatus.REJECTED)
BUCKETS = ("day", "week")
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
    project_id: int
    model_name: str
    model_version: str
    bucket: date
    accuracy: Proportion

    @property
    def series(self) -> tuple[int, str, str, str]:
        """What a chart line is keyed by: never the version alone (projects share names)."""
        return (self.project_id, self.model_name, self.model_version, self.source)


def bucket_of(day: date, bucket: str) -> date:
    """The day itself, or the Monday starting its ISO week."""
    return day - timedelta(days=day.weekday()) if bucket == "week" else day


def period_start(*, now: datetime, days: int) -> date:
    """The first day of "the last ``days`` days": today and the ``days - 1`` before it."""
    return local_day(now) - timedelta(days=days - 1)


ROLLUP_SUMS = (
    "reviewed_total",
    "reviewed_correct",
    "audit_total",
    "audit_correct",
    "reviews_total",
    "reviews_changed",
    "judge_total",
    "judge_flagged",
)


def rollup_rows(*, project_ids: Iterable[int], first_day: date) -> list[dict]:
    """Daily sums per (project, model name, version) from ``first_day`` on: one query.

    Rows are per project, model and day, so their number follows the period
    and the models in use, not the decisions.
    """
    return list(
        DailyDecisionRollup.objects.filter(project_id__in=list(project_ids), day__gte=first_day)
        .values("project_id", "model_name", "model_version", "day", *ROLLUP_SUMS)
        .order_by("project_id", "model_name", "model_version", "day")
    )


def accuracy_points(rows: Iterable[dict], *, bucket: str) -> list[AccuracyPoint]:
    """Accuracy per (project, model name, version, source) and bucket from rollup rows."""
    sums: dict[tuple, list[int]] = {}
    for row in rows:
        at = bucket_of(row["day"], bucket)
        key = (row["project_id"], row["model_name"], row["model_version"])
        for source, total, correct in (
            (SOURCE_REVIEWED, "reviewed_total", "reviewed_correct"),
            (SOURCE_AUDIT, "audit_total", "audit_correct"),
        ):
            if row[total]:
                entry = sums.setdefault((source, *key, at), [0, 0])
                entry[0] += row[correct]
                entry[1] += row[total]
    return [
        AccuracyPoint(source, project_id, name, version, at, Proportion(correct, total))
        for (source, project_id, name, version, at), (correct, total) in sorted(sums.items())
    ]


def accuracy_series(
    *, project_ids: Iterable[int], bucket: str, first_day: date
) -> list[AccuracyPoint]:
    """Accuracy per (project, model, version) and day/week bucket from ``first_day``, both
    sources: one query over the rollups."""
    return accuracy_points(rollup_rows(project_ids=project_ids, first_day=first_day), bucket=bucket)


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
    """Each project's window figures, keyed by project id: one query over the rollups.

    Each project's own ``monitoring_window_days`` sets its window (whole days,
    today included).
    """
    projects = list(projects)
    stats = {project.pk: WindowStats() for project in projects}
    if not projects:
        return stats
    in_window = _any_of(
        Q(project_id=p.pk, day__gte=period_start(now=now, days=p.monitoring_window_days))
        for p in projects
    )
    for row in (
        DailyDecisionRollup.objects.filter(in_window, day__lte=local_day(now))
        .values("project_id")
        .annotate(
            reviewed_total=Sum("reviewed_total"),
            reviewed_correct=Sum("reviewed_correct"),
            reviews_total=Sum("reviews_total"),
            reviews_changed=Sum("reviews_changed"),
            audit_total=Sum("audit_total"),
            audit_correct=Sum("audit_correct"),
        )
        .order_by()
    ):
        entry = stats[row["project_id"]]
        entry.reviewed = Proportion(row["reviewed_correct"], row["reviewed_total"])
        entry.interventions = Proportion(row["reviews_changed"], row["reviews_total"])
        entry.audit = Proportion(row["audit_correct"], row["audit_total"])
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
    """Audited accuracy per model version: the window against every day before it.

    A version has drifted when both samples hold at least ``drift_min_samples``
    audit reviews and the window's upper 95% bound is below the baseline
    accuracy minus ``drift_margin``: the drop exceeds the margin with
    confidence. One grouped query over the rollups for all projects.
    """
    by_pk = {project.pk: project for project in projects}
    if not by_pk:
        return []
    starts = {pk: period_start(now=now, days=p.monitoring_window_days) for pk, p in by_pk.items()}
    in_window = _any_of(Q(project_id=pk, day__gte=start) for pk, start in starts.items())
    rows = (
        DailyDecisionRollup.objects.filter(
            project_id__in=list(by_pk), audit_total__gt=0, day__lte=local_day(now)
        )
        .values("project_id", "model_version")
        .annotate(
            window_total=Sum("audit_total", filter=in_window, default=0),
            window_correct=Sum("audit_correct", filter=in_window, default=0),
            baseline_total=Sum("audit_total", filter=~in_window, default=0),
            baseline_correct=Sum("audit_correct", filter=~in_window, default=0),
        )
        .order_by("project_id", "model_version")
    )
    findings = []
    for row in rows:
        project = by_pk[row["project_id"]]
        baseline = Proportion(row["baseline_correct"], row["baseline_total"])
        window = Proportion(row["window_correct"], row["window_total"])
        enough = min(baseline.total, window.total) >= project.drift_min_samples
        drifted = enough and window.high < baseline.rate - project.drift_margin
        findings.append(
            DriftFinding(
                project.pk,
                row["model_version"],
                baseline,
                window,
                day_start(starts[project.pk]),
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
