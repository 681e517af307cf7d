"""A reviewer's review and a senior's own decision follow one set of rules.

The same inputs go through ``review_submit`` (workspace) and ``case_decide``
(adjudication) and must be refused with the same messages on the same fields.
The senior's form names two fields its own way: the corrected output is
``final_output`` and the note is the rationale (which adjudication always
requires, so every input below carries one unless the rule under test is the
note's).
"""

import pytest

from adjudication.models import AdjudicationCase, CaseStatus
from adjudication.services import case_claim_next, case_decide
from reviews.errors import DomainError
from reviews.models import ItemStatus, Review
from reviews.workspace.services import (
    ReviewInput,
    ReviewInvalid,
    assignment_claim_next,
    review_submit,
)
from tests import factories

pytestmark = pytest.mark.django_db

APPROVE = {"verdict": "approve", "severity": "none"}
REJECT = {"verdict": "reject", "reason_code": "unsafe", "severity": "major"}
ORIGINAL = factories.item_payload()["output"]
SENIOR_FIELDS = {"corrected_output": "final_output", "note": "rationale"}

INVALID = {
    "no reason, no severity": ("reject", None, "", "", "Wrong."),
    "reason not in the project's codes": ("reject", None, "vibes", "minor", "Wrong."),
    "other without a note": ("reject", None, "other", "minor", "  "),
    "unknown severity": ("reject", None, "tone", "huge", "Rude."),
    "blank correction": ("correct", "  ", "tone", "minor", "Rude."),
    "correction identical to the output": ("correct", ORIGINAL, "tone", "minor", "Rude."),
    "correction without reason or severity": ("correct", "Better.", "", "", "Better."),
    "unknown verdict": ("maybe", None, "", "", "Hm."),
}


def workspace_errors(project, reviewer, verdict, output, reason_code, severity, note) -> dict:
    factories.ingest(project)
    assignment = assignment_claim_next(reviewer=reviewer, project=project)
    data = ReviewInput(
        verdict=verdict,
        corrected_output=output,
        reason_code=reason_code,
        severity=severity,
        note=note,
    )
    with pytest.raises(ReviewInvalid) as caught:
        review_submit(assignment_id=assignment.pk, reviewer=reviewer, data=data)
    assert not Review.objects.filter(assignment=assignment).exists()
    return caught.value.detail


def adjudication_errors(senior, verdict, output, reason_code, severity, note) -> dict:
    claim = case_claim_next(user=senior)
    with pytest.raises(DomainError) as caught:
        case_decide(
            case=claim.case,
            claim_id=claim.pk,
            user=senior,
            upheld="neither",
            verdict=verdict,
            final_output=output,
            reason_code=reason_code,
            severity=severity,
            rationale=note,
        )
    case = AdjudicationCase.objects.get(pk=claim.case_id)
    assert case.status == CaseStatus.OPEN
    assert case.item.status == ItemStatus.IN_ADJUDICATION
    return caught.value.detail


@pytest.mark.parametrize("inputs", INVALID.values(), ids=INVALID.keys())
def test_review_and_own_decision_are_refused_alike(
    inputs, double_project, make_reviewed_item, senior, django_user_model
):
    make_reviewed_item(APPROVE, REJECT)
    third = django_user_model.objects.create_user("tess", is_staff=True)
    factories.add_member(double_project, third, "reviewer")

    review = workspace_errors(double_project, third, *inputs)
    decision = adjudication_errors(senior, *inputs)

    assert review  # every input above breaks a rule
    assert decision == {SENIOR_FIELDS.get(field, field): errors for field, errors in review.items()}


def test_other_with_a_note_or_rationale_is_accepted_on_both_paths(
    double_project, make_reviewed_item, senior, django_user_model
):
    make_reviewed_item(APPROVE, REJECT)
    third = django_user_model.objects.create_user("tess", is_staff=True)
    factories.add_member(double_project, third, "reviewer")
    factories.ingest(double_project)
    assignment = assignment_claim_next(reviewer=third, project=double_project)
    review = review_submit(
        assignment_id=assignment.pk,
        reviewer=third,
        data=ReviewInput(
            verdict="reject", reason_code="other", severity="minor", note="Off topic."
        ),
    )
    assert review.reason_code == "other"

    claim = case_claim_next(user=senior)
    case = case_decide(
        case=claim.case,
        claim_id=claim.pk,
        user=senior,
        upheld="neither",
        verdict="reject",
        reason_code="other",
        severity="minor",
        rationale="Off topic.",
    )
    assert case.status == CaseStatus.DECIDED and case.final_reason_code == "other"


def test_an_own_approval_needs_no_reason_or_severity(make_reviewed_item, senior):
    item = make_reviewed_item(APPROVE, REJECT)
    claim = case_claim_next(user=senior)
    case_decide(
        case=claim.case,
        claim_id=claim.pk,
        user=senior,
        upheld="neither",
        verdict="approve",
        rationale="The output is right.",
    )
    item.refresh_from_db()
    assert item.status == ItemStatus.APPROVED
    assert (item.final_reason_code, item.final_severity) == ("", "none")
