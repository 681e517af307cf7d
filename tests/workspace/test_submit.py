from datetime import timedelta

import pytest
from django.utils import timezone

from adjudication.models import AdjudicationCase
from reviews.models import (
    Assignment,
    AssignmentState,
    CorrectionTriplet,
    ItemStatus,
    Review,
)
from reviews.workspace.services import (
    ReviewInput,
    ReviewInvalid,
    StaleAssignment,
    assignment_claim_next,
    assignment_release,
    review_submit,
)
from tests.workspace.conftest import queue

pytestmark = pytest.mark.django_db


def claim(project, user):
    return assignment_claim_next(reviewer=user, project=project)


def test_approve_makes_the_item_final_with_the_original_output(project, reviewer):
    (item,) = queue(project, 1)
    assignment = claim(project, reviewer)
    review = review_submit(
        assignment_id=assignment.pk, reviewer=reviewer, data=ReviewInput(verdict="approve")
    )
    item.refresh_from_db()
    assignment.refresh_from_db()
    assert item.status == ItemStatus.APPROVED and not item.in_queue
    assert item.final_output == item.output and item.decided_at is not None
    assert assignment.state == AssignmentState.SUBMITTED
    assert review.seconds_spent >= 0 and review.reason_code == ""
    assert review.history.latest().history_user == reviewer


def test_correct_releases_the_correction_and_stores_text_span_triplets(project, reviewer):
    (item,) = queue(project, 1, output="The maximum is 8 g per day.")
    assignment = claim(project, reviewer)
    review = review_submit(
        assignment_id=assignment.pk,
        reviewer=reviewer,
        data=ReviewInput(
            verdict="correct",
            corrected_output="The maximum is 4 g per day.",
            reason_code="factual_error",
            severity="critical",
            note="Label says 4 g.",
        ),
    )
    item.refresh_from_db()
    assert item.status == ItemStatus.CORRECTED
    assert item.final_output == "The maximum is 4 g per day."
    assert (item.final_reason_code, item.final_severity) == ("factual_error", "critical")
    triplets = list(
        CorrectionTriplet.objects.filter(review=review).values_list(
            "item_id", "attribute", "old_value", "new_value"
        )
    )
    assert triplets == [(item.pk, "chars 15-16", "8", "4")]
    reason = review.history.latest().history_change_reason
    assert reason == "Correct: factual_error (critical) — Label says 4 g."
    assert item.history.latest().history_change_reason == reason


def test_correct_on_json_output_stores_json_pointer_triplets(project, reviewer):
    queue(project, 1, output='{"drug": "paracetamol", "max_g": 8, "tags": ["otc"]}')
    assignment = claim(project, reviewer)
    review = review_submit(
        assignment_id=assignment.pk,
        reviewer=reviewer,
        data=ReviewInput(
            verdict="correct",
            corrected_output='{"drug": "paracetamol", "max_g": 4, "tags": ["otc", "adult"]}',
            reason_code="factual_error",
            severity="major",
        ),
    )
    assert list(review.triplets.values_list("attribute", "old_value", "new_value")) == [
        ("/max_g", "8", "4"),
        ("/tags/1", "", '"adult"'),
    ]


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        (ReviewInput(verdict="reject"), {"reason_code", "severity"}),
        (ReviewInput(verdict="reject", reason_code="vibes", severity="minor"), {"reason_code"}),
        (ReviewInput(verdict="reject", reason_code="other", severity="minor"), {"note"}),
        (ReviewInput(verdict="reject", reason_code="tone", severity="huge"), {"severity"}),
        (
            ReviewInput(
                verdict="correct", corrected_output="", reason_code="tone", severity="minor"
            ),
            {"corrected_output"},
        ),
        (ReviewInput(verdict="maybe"), {"verdict"}),
    ],
)
def test_invalid_reviews_are_refused_per_field_and_store_nothing(project, reviewer, data, errors):
    (item,) = queue(project, 1)
    assignment = claim(project, reviewer)
    with pytest.raises(ReviewInvalid) as caught:
        review_submit(assignment_id=assignment.pk, reviewer=reviewer, data=data)
    assert set(caught.value.detail) == errors
    assignment.refresh_from_db()
    item.refresh_from_db()
    assert assignment.state == AssignmentState.ACTIVE
    assert item.status == ItemStatus.IN_REVIEW
    assert not Review.objects.exists()


def test_a_correction_identical_to_the_output_is_refused(project, reviewer):
    (item,) = queue(project, 1)
    assignment = claim(project, reviewer)
    with pytest.raises(ReviewInvalid) as caught:
        review_submit(
            assignment_id=assignment.pk,
            reviewer=reviewer,
            data=ReviewInput(
                verdict="correct",
                corrected_output=item.output,
                reason_code="tone",
                severity="minor",
            ),
        )
    assert "approve it instead" in caught.value.detail["corrected_output"][0]


def test_corrections_are_refused_when_the_project_does_not_allow_them(project, reviewer):
    project.allow_corrections = False
    project.save()
    queue(project, 1)
    assignment = claim(project, reviewer)
    with pytest.raises(ReviewInvalid) as caught:
        review_submit(
            assignment_id=assignment.pk,
            reviewer=reviewer,
            data=ReviewInput(
                verdict="correct", corrected_output="New.", reason_code="tone", severity="minor"
            ),
        )
    assert "verdict" in caught.value.detail


def test_a_double_submit_is_refused_and_recorded_once(project, reviewer):
    queue(project, 2)
    assignment = claim(project, reviewer)
    data = ReviewInput(verdict="reject", reason_code="unsafe", severity="critical")
    review_submit(assignment_id=assignment.pk, reviewer=reviewer, data=data)
    with pytest.raises(StaleAssignment, match="already submitted"):
        review_submit(assignment_id=assignment.pk, reviewer=reviewer, data=data)
    assert Review.objects.count() == 1


def test_a_submit_on_an_expired_lease_is_refused(project, reviewer):
    (item,) = queue(project, 1)
    assignment = claim(project, reviewer)
    Assignment.objects.filter(pk=assignment.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    with pytest.raises(StaleAssignment, match="expired"):
        review_submit(
            assignment_id=assignment.pk, reviewer=reviewer, data=ReviewInput(verdict="approve")
        )
    assert not Review.objects.exists()
    item.refresh_from_db()
    assert item.in_queue


def test_a_submit_after_release_is_refused(project, reviewer):
    queue(project, 1)
    assignment = claim(project, reviewer)
    assignment_release(assignment_id=assignment.pk, reviewer=reviewer)
    with pytest.raises(StaleAssignment, match="released"):
        review_submit(
            assignment_id=assignment.pk, reviewer=reviewer, data=ReviewInput(verdict="approve")
        )


def test_a_submit_on_someone_elses_claim_is_refused(project, reviewer, second_reviewer):
    queue(project, 1)
    assignment = claim(project, reviewer)
    with pytest.raises(StaleAssignment, match="another reviewer"):
        review_submit(
            assignment_id=assignment.pk,
            reviewer=second_reviewer,
            data=ReviewInput(verdict="approve"),
        )


def test_active_seconds_are_capped_by_the_claims_age(project, reviewer):
    queue(project, 1)
    assignment = claim(project, reviewer)
    Assignment.objects.filter(pk=assignment.pk).update(
        claimed_at=timezone.now() - timedelta(seconds=40)
    )
    review = review_submit(
        assignment_id=assignment.pk,
        reviewer=reviewer,
        data=ReviewInput(verdict="approve"),
        active_seconds=5000,
    )
    assert 39 <= review.seconds_spent <= 45
    queue(project, 1)
    assignment = claim(project, reviewer)
    Assignment.objects.filter(pk=assignment.pk).update(
        claimed_at=timezone.now() - timedelta(seconds=40)
    )
    review = review_submit(
        assignment_id=assignment.pk,
        reviewer=reviewer,
        data=ReviewInput(verdict="approve"),
        active_seconds=12.5,
    )
    assert review.seconds_spent == 12.5


def test_first_of_two_reviews_waits_blind_in_the_queue(double_project, double_reviewers):
    dora, dave, _ = double_reviewers
    (item,) = queue(double_project, 1)
    first = claim(double_project, dora)
    review_submit(
        assignment_id=first.pk,
        reviewer=dora,
        data=ReviewInput(verdict="reject", reason_code="hallucination", severity="major"),
    )
    item.refresh_from_db()
    assert item.status == ItemStatus.PENDING_REVIEW and item.in_queue
    assert item.final_verdict == ""
    # Nothing in the item's or the claim's history reveals the verdict.
    reasons = [row.history_change_reason or "" for row in item.history.all()]
    reasons += [row.history_change_reason or "" for row in first.history.all()]
    assert not any("reject" in reason.lower() or "hallucination" in reason for reason in reasons)
    assert claim(double_project, dave).item_id == item.pk


def test_two_agreeing_reviews_make_the_item_final(double_project, double_reviewers):
    dora, dave, _ = double_reviewers
    (item,) = queue(double_project, 1)
    for user in (dora, dave):
        assignment = claim(double_project, user)
        review_submit(
            assignment_id=assignment.pk, reviewer=user, data=ReviewInput(verdict="approve")
        )
    item.refresh_from_db()
    assert item.status == ItemStatus.APPROVED and not item.in_queue


def test_two_disagreeing_reviews_open_an_adjudication_case(double_project, double_reviewers):
    dora, dave, dina = double_reviewers
    (item,) = queue(double_project, 1)
    a = claim(double_project, dora)
    b = claim(double_project, dave)
    review_submit(assignment_id=a.pk, reviewer=dora, data=ReviewInput(verdict="approve"))
    review_submit(
        assignment_id=b.pk,
        reviewer=dave,
        data=ReviewInput(verdict="reject", reason_code="unsafe", severity="critical"),
    )
    item.refresh_from_db()
    assert item.status == ItemStatus.IN_ADJUDICATION and not item.in_queue
    case = AdjudicationCase.objects.get(item=item)
    assert {case.review_a.reviewer, case.review_b.reviewer} == {dora, dave}
    assert claim(double_project, dina) is None
