"""Builders for monitoring data: human decisions and audit reviews at chosen times.

Decisions go through the real state machine (item_transition, item_finalize);
audit reviews are Review rows on audit-sampled auto-approved items, as the
workspace writes them. Timestamps are then moved into the past, which is the
only thing the services cannot do for a test. Each builder ends with a fold of
the monitoring rollups, as the minute cron would do a moment later.
"""

import itertools
import time
from datetime import datetime

from django.db import transaction

from reviews.models import ItemStatus, Project, Review, ReviewItem, Severity, Verdict
from reviews.monitoring.rollups import rollups_fold
from reviews.services.decisions import item_finalize
from reviews.services.transitions import item_transition
from tests import factories

_n = itertools.count(1)


def ingest_many(project: Project, count: int, **fields) -> list[ReviewItem]:
    payloads = [factories.item_payload(**fields) for _ in range(count)]
    return factories.ingest(project, *payloads) if payloads else []


def decide(
    items: list[ReviewItem],
    *,
    reviewer,
    verdict: str,
    at: datetime | None = None,
    reason_code: str = "factual_error",
    severity: str = Severity.MAJOR,
) -> None:
    """A reviewer's final decision on each (pending-review) item, like the workspace makes."""
    for item in items:
        with transaction.atomic():
            locked = ReviewItem.objects.select_for_update().get(pk=item.pk)
            item_transition(item=locked, to_status=ItemStatus.IN_REVIEW, reason="claimed")
            approving = verdict == Verdict.APPROVE
            Review.objects.create(
                item=locked,
                reviewer=reviewer,
                verdict=verdict,
                corrected_output="Fixed output." if verdict == Verdict.CORRECT else None,
                reason_code="" if approving else reason_code,
                severity=Severity.NONE if approving else severity,
                seconds_spent=30,
            )
            item_finalize(
                item=locked,
                verdict=verdict,
                corrected_output="Fixed output." if verdict == Verdict.CORRECT else None,
                reason_code="" if approving else reason_code,
                severity=Severity.NONE if approving else severity,
                user=reviewer,
                reason=f"Reviewed: {verdict}",
            )
    if at is not None:
        ids = [item.pk for item in items]
        ReviewItem.objects.filter(pk__in=ids).update(decided_at=at)
        Review.objects.filter(item_id__in=ids).update(created_at=at)
    rollups_fold()


def gate_decisions(project: Project, *, reviewer, approved: int, wrong: int, at=None, **fields):
    """``approved`` approvals and ``wrong`` rejections in a gate project."""
    decide(ingest_many(project, approved, **fields), reviewer=reviewer, verdict="approve", at=at)
    decide(ingest_many(project, wrong, **fields), reviewer=reviewer, verdict="reject", at=at)


def audits(
    project: Project,
    *,
    reviewer,
    correct: int,
    wrong: int,
    at: datetime | None = None,
    model_version: str = "2026-11-01",
    reason_code: str = "hallucination",
) -> list[Review]:
    """Audit reviews of auto-approved, audit-sampled items of a monitor project.

    The project must sample every auto-approved item (``audit_sample_rate=1``).
    """
    items = ingest_many(project, correct + wrong, model_version=model_version)
    assert all(i.status == ItemStatus.AUTO_APPROVED and i.is_audit for i in items)
    rows = [
        Review(
            item=item,
            reviewer=reviewer,
            verdict=Verdict.APPROVE if n < correct else Verdict.REJECT,
            reason_code="" if n < correct else reason_code,
            severity=Severity.NONE if n < correct else Severity.MAJOR,
            seconds_spent=20,
            is_audit=True,
        )
        for n, item in enumerate(items)
    ]
    Review.objects.bulk_create(rows)
    ReviewItem.objects.filter(pk__in=[i.pk for i in items]).update(in_queue=False)
    if at is not None:
        Review.objects.filter(pk__in=[r.pk for r in rows]).update(created_at=at)
    rollups_fold()
    return rows


def wait_for(condition, *, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"Timed out after {timeout}s waiting for {what}")
