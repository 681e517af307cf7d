"""Control reviews measure reviewers, never the model: the accuracy rollups, the
dashboard's accuracy and intervention figures stay those of the real work."""

import pytest
from django.urls import reverse

from reviews.models import DailyDecisionRollup, DailyReviewerRollup, Project
from reviews.monitoring.rollups import rollups_fold
from reviews.quality.controls import KnownAnswer, control_create
from reviews.workspace.services import ReviewInput, assignment_claim_next, review_submit
from tests import factories

pytestmark = pytest.mark.django_db

REJECT = ReviewInput("reject", reason_code="factual_error", severity="major")
FIGURES = (
    "reviewed_total",
    "reviewed_correct",
    "reviewed_corrected",
    "reviewed_rejected",
    "reviews_total",
    "reviews_changed",
)


def _model_figures(project) -> list[tuple]:
    return list(
        DailyDecisionRollup.objects.filter(project=project)
        .order_by("day", "model_version")
        .values_list("model_version", *FIGURES)
    )


def _decide(reviewer, project, data) -> None:
    assignment = assignment_claim_next(reviewer=reviewer, project=project)
    review_submit(assignment_id=assignment.pk, reviewer=reviewer, data=data)


def test_control_reviews_leave_model_accuracy_alone(
    client, admin_user, project, reviewer, django_user_model
):
    lead = django_user_model.objects.create_user("lead", password="lead-pass-1", is_staff=True)
    factories.add_member(project, lead, "admin")
    factories.ingest(project, *[factories.item_payload() for _ in range(5)])
    for data in [ReviewInput("approve")] * 3 + [REJECT]:
        _decide(reviewer, project, data)
    rollups_fold()
    before = _model_figures(project)
    assert before and before[0][1:] == (4, 3, 0, 1, 4, 1)
    client.force_login(admin_user)
    dashboard = client.get(reverse("admin:reviews_dashboard")).context["data"]
    accuracy_before = [(p.series, p.accuracy) for p in dashboard.accuracy]
    interventions_before = [(r.bucket, r.rate) for r in dashboard.interventions]

    for n in range(4):
        control_create(
            project=project,
            content={
                **{k: v for k, v in factories.item_payload().items() if k != "external_id"},
                "model_version": "2026-11-01",
                "prompt": f"control {n}",
                "tools": [],
                "is_transcript": False,
            },
            answer=KnownAnswer(verdict="approve"),
            by=lead,
        )
    Project.objects.filter(pk=project.pk).update(control_rate=1.0)
    project.refresh_from_db()
    for _ in range(4):  # wrong on every control: a rejection of a right answer
        _decide(reviewer, project, REJECT)
    rollups_fold()

    assert _model_figures(project) == before
    throughput = DailyReviewerRollup.objects.get(project=project, reviewer=reviewer)
    assert throughput.reviews == 8  # the reviewer's work counts every review
    dashboard = client.get(reverse("admin:reviews_dashboard")).context["data"]
    assert [(p.series, p.accuracy) for p in dashboard.accuracy] == accuracy_before
    assert [(r.bucket, r.rate) for r in dashboard.interventions] == interventions_before
