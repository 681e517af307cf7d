"""A flagged reviewer's decisions go to a second blind review at the project's rate."""

import pytest

from adjudication.models import AdjudicationCase
from reviews.models import ItemStatus, Project, ReviewerStanding, ReviewItem
from reviews.quality.evaluate import reviewer_quality_evaluate
from reviews.quality.selectors import RUN_MIN
from reviews.workspace.services import (
    ReviewInput,
    assignment_claim_next,
    claimable_items,
    review_submit,
)
from tests import factories

pytestmark = pytest.mark.django_db

REJECT = ReviewInput("reject", reason_code="factual_error", severity="major")


def _decide(reviewer, project, data=None) -> ReviewItem:
    assignment = assignment_claim_next(reviewer=reviewer, project=project)
    review_submit(
        assignment_id=assignment.pk, reviewer=reviewer, data=data or ReviewInput("approve")
    )
    item = assignment.item
    item.refresh_from_db()
    return item


def _flag(reviewer, project) -> None:
    """A run of identical approvals, then the real evaluation flags the reviewer."""
    factories.ingest(project, *[factories.item_payload() for _ in range(RUN_MIN)])
    for _ in range(RUN_MIN):
        assert _decide(reviewer, project).status == ItemStatus.APPROVED
    standing = reviewer_quality_evaluate(project=project, reviewer=reviewer).standing
    assert standing.flagged and standing.signals["identical_run"] >= RUN_MIN


def _rate(project, rate: float) -> None:
    Project.objects.filter(pk=project.pk).update(second_review_rate=rate)
    project.refresh_from_db()


def test_a_flagged_reviewers_decision_waits_for_someone_else(project, reviewer, second_reviewer):
    _flag(reviewer, project)
    _rate(project, 1.0)
    factories.ingest(project)
    item = _decide(reviewer, project)
    assert item.second_review and not item.is_final
    assert item.status == ItemStatus.PENDING_REVIEW and item.in_queue
    assert item.history.latest().history_change_reason == (
        "Review 1 of 2 submitted; waiting for another reviewer"
    )
    reasons = [h.history_change_reason for h in item.history.all()]
    assert "Sent to a second blind review" in reasons
    assert not claimable_items(reviewer=reviewer, project=project).filter(pk=item.pk).exists()
    second = _decide(second_reviewer, project)
    assert second.pk == item.pk and second.status == ItemStatus.APPROVED


def test_disagreeing_second_review_opens_a_case(project, reviewer, second_reviewer):
    _flag(reviewer, project)
    _rate(project, 1.0)
    factories.ingest(project)
    item = _decide(reviewer, project)
    _decide(second_reviewer, project, REJECT)
    item.refresh_from_db()
    assert item.status == ItemStatus.IN_ADJUDICATION
    assert AdjudicationCase.objects.filter(item=item).exists()


def test_unflagged_reviewers_and_rate_zero_decide_at_once(project, reviewer, second_reviewer):
    _rate(project, 1.0)
    factories.ingest(project)
    assert _decide(second_reviewer, project).status == ItemStatus.APPROVED  # not flagged
    _rate(project, 0.0)
    _flag(reviewer, project)
    factories.ingest(project)
    assert _decide(reviewer, project).status == ItemStatus.APPROVED  # flagged, rate 0


def test_the_share_sent_follows_the_rate(project, reviewer):
    ReviewerStanding.objects.create(
        project=project, reviewer=reviewer, flagged=True, evaluated_at="2026-12-01T00:00Z"
    )
    _rate(project, 0.3)
    count = 300
    factories.ingest(project, *[factories.item_payload() for _ in range(count)])
    sent = 0
    for _ in range(count):
        assignment = assignment_claim_next(reviewer=reviewer, project=project)
        review_submit(assignment_id=assignment.pk, reviewer=reviewer, data=ReviewInput("approve"))
        sent += ReviewItem.objects.get(pk=assignment.item_id).second_review
    # A fixed draw per item: 300 draws at 30% land within 0.3 +- 0.08 (over 3 sigma).
    assert 0.22 <= sent / count <= 0.38, sent
