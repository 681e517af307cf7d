"""Accuracy per model version counts single outputs: a decided comparison names no one model."""

from reviews.models import DailyDecisionRollup
from reviews.monitoring.rollups import rollups_fold
from reviews.services.comparisons import PreferenceInput
from reviews.workspace.preferences import preference_submit
from reviews.workspace.services import ReviewInput, assignment_claim_next, review_submit
from tests.factories import comparison_payload, ingest, item_payload


def test_a_decided_comparison_is_not_counted_in_model_accuracy(project, reviewer):
    ingest(project, comparison_payload(2), item_payload(model_version="v9"))
    for _ in range(2):
        claim = assignment_claim_next(reviewer=reviewer, project=project)
        if claim.item.is_comparison:
            preference_submit(
                assignment_id=claim.pk, reviewer=reviewer, data=PreferenceInput("tie")
            )
        else:
            review_submit(assignment_id=claim.pk, reviewer=reviewer, data=ReviewInput("approve"))
    rollups_fold()
    rows = DailyDecisionRollup.objects.filter(project=project)
    assert [(r.model_version, r.reviewed_total) for r in rows] == [("v9", 1)]
