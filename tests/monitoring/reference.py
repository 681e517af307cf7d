"""The dashboard's figures computed from the raw rows, as the queries before rollups did.

Kept only here, as the reference the rollup-based figures are compared with
(test_rollups.py): each is one grouped query over items, reviews or judge
verdicts, over the same whole days the dashboard shows.
"""

from datetime import date, datetime

from django.db.models import Avg, Count, Q
from django.db.models.functions import TruncDate

from reviews.models import JudgeLabel, JudgeVerdict, Project, Review, ReviewItem, Verdict
from reviews.monitoring.rollups import day_start
from reviews.monitoring.services import HUMAN_FINAL_STATUSES, period_start

CHANGED = Q(verdict__in=[Verdict.CORRECT, Verdict.REJECT])


def accuracy(project_ids: list[int], first_day: date) -> dict[tuple, tuple[int, int]]:
    """{(source, project, model name, version, day): (correct, total)}."""
    since = day_start(first_day)
    got = {}
    for row in (
        ReviewItem.objects.filter(
            project_id__in=project_ids,
            status__in=HUMAN_FINAL_STATUSES,
            decided_at__gte=since,
        )
        .annotate(day=TruncDate("decided_at"))
        .values("project_id", "model_name", "model_version", "day")
        .annotate(total=Count("id"), correct=Count("id", filter=Q(final_verdict=Verdict.APPROVE)))
    ):
        key = ("reviewed", row["project_id"], row["model_name"], row["model_version"], row["day"])
        got[key] = (row["correct"], row["total"])
    for row in (
        Review.objects.filter(
            item__project_id__in=project_ids, is_audit=True, created_at__gte=since
        )
        .annotate(day=TruncDate("created_at"))
        .values("item__project_id", "item__model_name", "item__model_version", "day")
        .annotate(total=Count("id"), correct=Count("id", filter=Q(verdict=Verdict.APPROVE)))
    ):
        key = (
            "audit",
            row["item__project_id"],
            row["item__model_name"],
            row["item__model_version"],
            row["day"],
        )
        got[key] = (row["correct"], row["total"])
    return got


def interventions(project_ids: list[int], first_day: date) -> dict[tuple, tuple[int, int]]:
    """{(project, day): (changed, non-audit reviews)}."""
    return {
        (row["item__project_id"], row["day"]): (row["changed"], row["total"])
        for row in Review.objects.filter(
            item__project_id__in=project_ids, is_audit=False, created_at__gte=day_start(first_day)
        )
        .annotate(day=TruncDate("created_at"))
        .values("item__project_id", "day")
        .annotate(total=Count("id"), changed=Count("id", filter=CHANGED))
    }


def judge_flags(project_ids: list[int], first_day: date) -> dict[tuple, tuple[int, int]]:
    """{(project, day): (flagged, verdicts)}."""
    return {
        (row["item__project_id"], row["day"]): (row["flagged"], row["total"])
        for row in JudgeVerdict.objects.filter(
            item__project_id__in=project_ids, created_at__gte=day_start(first_day)
        )
        .annotate(day=TruncDate("created_at"))
        .values("item__project_id", "day")
        .annotate(total=Count("id"), flagged=Count("id", filter=~Q(label=JudgeLabel.PASS)))
    }


def codes(project_ids: list[int], first_day: date) -> tuple[dict, dict]:
    """({reason code: n}, {severity: n}) over corrections and rejections."""
    reviews = Review.objects.filter(
        CHANGED, item__project_id__in=project_ids, created_at__gte=day_start(first_day)
    )
    reasons = {
        row["reason_code"]: row["n"]
        for row in reviews.exclude(reason_code="").values("reason_code").annotate(n=Count("id"))
    }
    severities = {
        row["severity"]: row["n"] for row in reviews.values("severity").annotate(n=Count("id"))
    }
    return reasons, severities


def reviewers(project_ids: list[int], first_day: date) -> dict[str, tuple]:
    """{username: (total, approved, corrected, rejected, audits, avg seconds)}."""
    return {
        row["reviewer__username"]: (
            row["total"],
            row["approved"],
            row["corrected"],
            row["rejected"],
            row["audits"],
            row["avg"],
        )
        for row in Review.objects.filter(
            item__project_id__in=project_ids, created_at__gte=day_start(first_day)
        )
        .values("reviewer__username")
        .annotate(
            total=Count("id"),
            approved=Count("id", filter=Q(verdict=Verdict.APPROVE)),
            corrected=Count("id", filter=Q(verdict=Verdict.CORRECT)),
            rejected=Count("id", filter=Q(verdict=Verdict.REJECT)),
            audits=Count("id", filter=Q(is_audit=True)),
            avg=Avg("seconds_spent"),
        )
    }


def window(project: Project, now: datetime) -> tuple[tuple[int, int], ...]:
    """((reviewed correct, total), (changed, reviews), (audit correct, audits)) in the window."""
    since = day_start(period_start(now=now, days=project.monitoring_window_days))
    reviewed = ReviewItem.objects.filter(
        project=project, status__in=HUMAN_FINAL_STATUSES, decided_at__gte=since
    )
    reviews = Review.objects.filter(item__project=project, created_at__gte=since)
    return (
        (reviewed.filter(final_verdict=Verdict.APPROVE).count(), reviewed.count()),
        (reviews.filter(CHANGED, is_audit=False).count(), reviews.filter(is_audit=False).count()),
        (
            reviews.filter(is_audit=True, verdict=Verdict.APPROVE).count(),
            reviews.filter(is_audit=True).count(),
        ),
    )


def drift(project: Project, now: datetime) -> dict[str, tuple]:
    """{version: ((window correct, total), (baseline correct, total))} of audit reviews."""
    since = day_start(period_start(now=now, days=project.monitoring_window_days))
    in_window = Q(created_at__gte=since)
    correct = Q(verdict=Verdict.APPROVE)
    return {
        row["item__model_version"]: (
            (row["wc"], row["wt"]),
            (row["bc"], row["bt"]),
        )
        for row in Review.objects.filter(item__project=project, is_audit=True)
        .values("item__model_version")
        .annotate(
            wt=Count("id", filter=in_window),
            wc=Count("id", filter=in_window & correct),
            bt=Count("id", filter=~in_window),
            bc=Count("id", filter=~in_window & correct),
        )
    }
