"""Reconcile, claim, decide and reopen: the adjudication services against PostgreSQL."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from adjudication.models import AdjudicationCase, CaseClaim, CaseKind, CaseStatus, ClaimState
from adjudication.services import (
    case_claim,
    case_claim_next,
    case_claim_release,
    case_decide,
    item_reopen,
)
from reviews.errors import Conflict, DomainError, NotAllowed
from reviews.models import ItemStatus, ProjectMembership, ReviewItem
from reviews.services.decisions import item_finalize
from reviews.services.transitions import item_transition
from tests import factories

APPROVE = {"verdict": "approve", "severity": "none"}
REJECT = {"verdict": "reject", "reason_code": "factual_error", "severity": "major"}
JSON_OUTPUT = '{"drug": "paracetamol", "max_g": 4}'


def correct(text: str, severity: str = "minor") -> dict:
    return {
        "verdict": "correct",
        "corrected_output": text,
        "reason_code": "factual_error",
        "severity": severity,
    }


def test_two_approvals_make_the_item_final_at_once(make_reviewed_item):
    item = make_reviewed_item(APPROVE, APPROVE)
    assert item.status == ItemStatus.APPROVED
    assert item.final_output == item.output
    assert item.decided_at is not None
    assert not item.adjudicated
    assert not AdjudicationCase.objects.exists()


def test_equal_text_corrections_release_the_correction(make_reviewed_item):
    item = make_reviewed_item(
        correct("Adults: at most 3 g a day.", "minor"),
        correct(" Adults:  at most 3 g\na day. ", "critical"),
    )
    assert item.status == ItemStatus.CORRECTED
    assert item.final_output == "Adults: at most 3 g a day."
    assert item.final_severity == "critical"


def test_equal_json_corrections_agree(make_reviewed_item):
    item = make_reviewed_item(
        correct('{"drug": "paracetamol", "max_g": 3}'),
        correct('{\n "max_g": 3.0,\n "drug": "paracetamol"\n}'),
        output=JSON_OUTPUT,
    )
    assert item.status == ItemStatus.CORRECTED


def test_different_json_corrections_open_a_case(make_reviewed_item):
    item = make_reviewed_item(
        correct('{"drug": "paracetamol", "max_g": 3}'),
        correct('{"drug": "paracetamol", "max_g": 2}'),
        output=JSON_OUTPUT,
    )
    assert item.status == ItemStatus.IN_ADJUDICATION


def test_disagreement_opens_a_case_ranked_by_the_higher_severity(
    make_reviewed_item, reviewer, second_reviewer
):
    item = make_reviewed_item(APPROVE, REJECT)
    assert item.status == ItemStatus.IN_ADJUDICATION
    assert not item.in_queue
    case = AdjudicationCase.objects.get(item=item)
    assert case.status == CaseStatus.OPEN
    assert case.kind == CaseKind.DISAGREEMENT
    assert case.review_a.reviewer == reviewer
    assert case.review_b.reviewer == second_reviewer
    assert case.severity_rank == 2  # major
    assert item.history.first().history_change_reason.startswith("Two blind reviews disagree")


def test_senior_queue_orders_by_severity_then_age(make_reviewed_item, senior):
    minor = make_reviewed_item(APPROVE, correct("x", "minor"))
    critical = make_reviewed_item(APPROVE, correct("y", "critical"))
    first = case_claim_next(user=senior)
    assert first.case.item == critical
    case_claim_release(claim=first, user=senior)
    # Released, the critical case is still first in line.
    again = case_claim_next(user=senior)
    assert again.case.item == critical
    case_decide(
        case=again.case, claim_id=again.pk, user=senior, upheld="a", rationale="A was right."
    )
    assert case_claim_next(user=senior).case.item == minor


def test_claim_next_returns_the_seniors_live_claim_again(make_reviewed_item, senior):
    make_reviewed_item(APPROVE, REJECT)
    make_reviewed_item(APPROVE, REJECT)
    first = case_claim_next(user=senior)
    assert case_claim_next(user=senior).pk == first.pk


def test_a_senior_who_was_one_of_the_reviewers_is_refused(
    make_reviewed_item, double_project, reviewer
):
    ProjectMembership.objects.filter(project=double_project, user=reviewer).update(role="senior")
    item = make_reviewed_item(APPROVE, REJECT)
    case = AdjudicationCase.objects.get(item=item)
    assert case_claim_next(user=reviewer) is None
    with pytest.raises(NotAllowed):
        case_claim(case=case, user=reviewer)


def test_a_plain_reviewer_cannot_adjudicate(make_reviewed_item, django_user_model, double_project):
    outsider = django_user_model.objects.create_user("olga", is_staff=True)
    factories.add_member(double_project, outsider, "reviewer")
    item = make_reviewed_item(APPROVE, REJECT)
    assert case_claim_next(user=outsider) is None
    with pytest.raises(NotAllowed):
        case_claim(case=AdjudicationCase.objects.get(item=item), user=outsider)


def test_a_senior_of_another_project_cannot_adjudicate(make_reviewed_item, django_user_model):
    other = factories.make_project()
    stranger = django_user_model.objects.create_user("stan", is_staff=True)
    factories.add_member(other, stranger, "senior")
    item = make_reviewed_item(APPROVE, REJECT)
    assert case_claim_next(user=stranger) is None
    with pytest.raises(NotAllowed):
        case_claim(case=AdjudicationCase.objects.get(item=item), user=stranger)


def test_upholding_b_makes_its_decision_the_gold_label(make_reviewed_item, senior):
    item = make_reviewed_item(APPROVE, correct("Adults: at most 3 g a day.", "major"))
    claim = case_claim_next(user=senior)
    case = case_decide(
        case=claim.case,
        claim_id=claim.pk,
        user=senior,
        upheld="b",
        rationale="  The formulary says 3 g for this population.  " + "Details. " * 40,
    )
    item.refresh_from_db()
    assert item.status == ItemStatus.CORRECTED
    assert item.final_output == "Adults: at most 3 g a day."
    assert item.final_severity == "major"
    assert item.adjudicated
    assert case.status == CaseStatus.DECIDED
    assert case.upheld == "b"
    assert case.decided_by == senior
    # Long rationales are kept whole, on the case and in the history row.
    assert case.rationale.startswith("The formulary says 3 g for this population.  Details.")
    assert len(case.rationale) > 300
    last = item.history.first()
    assert last.history_user == senior
    assert "upheld review B" in last.history_change_reason
    assert "formulary says 3 g" in last.history_change_reason
    claim.refresh_from_db()
    assert claim.state == ClaimState.DECIDED


def test_the_senior_may_write_their_own_final_output(make_reviewed_item, senior):
    item = make_reviewed_item(correct("3 g"), correct("2 g"))
    claim = case_claim_next(user=senior)
    case_decide(
        case=claim.case,
        claim_id=claim.pk,
        user=senior,
        upheld="neither",
        verdict="correct",
        final_output="Adults: 3 g a day; 2 g with liver disease.",
        reason_code="incomplete",
        severity="major",
        rationale="Both were half right.",
    )
    item.refresh_from_db()
    assert item.status == ItemStatus.CORRECTED
    assert item.final_output == "Adults: 3 g a day; 2 g with liver disease."
    assert item.final_reason_code == "incomplete"


def test_own_decision_needs_its_fields(make_reviewed_item, senior):
    item = make_reviewed_item(APPROVE, REJECT)
    claim = case_claim_next(user=senior)
    with pytest.raises(DomainError) as caught:
        case_decide(
            case=claim.case,
            claim_id=claim.pk,
            user=senior,
            upheld="neither",
            verdict="correct",
            final_output="   ",
            reason_code="no-such-code",
            severity="huge",
            rationale="Because.",
        )
    assert set(caught.value.detail) == {"final_output", "reason_code", "severity"}
    item.refresh_from_db()
    assert item.status == ItemStatus.IN_ADJUDICATION


def test_a_rationale_is_required(make_reviewed_item, senior):
    item = make_reviewed_item(APPROVE, REJECT)
    claim = case_claim_next(user=senior)
    with pytest.raises(DomainError) as caught:
        case_decide(case=claim.case, claim_id=claim.pk, user=senior, upheld="a", rationale="  ")
    assert "rationale" in caught.value.detail
    item.refresh_from_db()
    assert item.status == ItemStatus.IN_ADJUDICATION
    assert AdjudicationCase.objects.get(item=item).status == CaseStatus.OPEN


def test_a_double_submit_is_refused(make_reviewed_item, senior):
    item = make_reviewed_item(APPROVE, REJECT)
    claim = case_claim_next(user=senior)
    case_decide(case=claim.case, claim_id=claim.pk, user=senior, upheld="a", rationale="A.")
    with pytest.raises(Conflict):
        case_decide(case=claim.case, claim_id=claim.pk, user=senior, upheld="b", rationale="B.")
    item.refresh_from_db()
    assert item.status == ItemStatus.APPROVED
    assert item.history.filter(status=ItemStatus.APPROVED).count() == 1


def test_deciding_needs_a_live_claim_of_ones_own(
    make_reviewed_item, senior, django_user_model, double_project
):
    other = django_user_model.objects.create_user("otto", is_staff=True)
    factories.add_member(double_project, other, "senior")
    make_reviewed_item(APPROVE, REJECT)
    claim = case_claim_next(user=senior)
    with pytest.raises(Conflict):
        case_decide(case=claim.case, claim_id=claim.pk, user=other, upheld="a", rationale="x")
    with pytest.raises(Conflict):
        case_claim(case=claim.case, user=other)
    CaseClaim.objects.filter(pk=claim.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    with pytest.raises(Conflict, match="expired"):
        case_decide(case=claim.case, claim_id=claim.pk, user=senior, upheld="a", rationale="x")
    # The lapsed lease returns the case to the queue: the other senior takes it.
    taken = case_claim_next(user=other)
    assert taken.case == claim.case
    claim.refresh_from_db()
    assert claim.state == ClaimState.EXPIRED
    case_decide(case=taken.case, claim_id=taken.pk, user=other, upheld="b", rationale="B.")


def test_reopen_sends_a_final_item_back_through_adjudication(make_reviewed_item, senior):
    item = make_reviewed_item(APPROVE, APPROVE)
    case = item_reopen(item=item, user=senior, reason="Client reported the dose is wrong.")
    item.refresh_from_db()
    assert item.status == ItemStatus.IN_ADJUDICATION
    assert item.decided_at is None
    assert case.kind == CaseKind.REOPEN
    assert case.reopened_status == ItemStatus.APPROVED
    assert case.reopened_output == item.output
    assert case.review_a is not None and case.review_b is not None
    reopened = item.history.first()
    assert reopened.history_user == senior
    assert "Client reported the dose is wrong." in reopened.history_change_reason

    claim = case_claim_next(user=senior)
    assert claim.case == case
    case_decide(
        case=case,
        claim_id=claim.pk,
        user=senior,
        upheld="neither",
        verdict="reject",
        reason_code="unsafe",
        severity="critical",
        rationale="Unsafe advice.",
    )
    item.refresh_from_db()
    assert item.status == ItemStatus.REJECTED
    assert item.final_output is None
    assert item.decided_at is not None
    assert item.adjudicated


def test_reopen_of_a_single_review_item_has_no_reviews_to_uphold(project, senior):
    (item,) = factories.ingest(project, factories.item_payload(confidence=0.99))
    # A one-review project: the item was final after a single decision.
    with transaction.atomic():
        item = ReviewItem.objects.select_for_update().get(pk=item.pk)
        item_transition(item=item, to_status=ItemStatus.IN_REVIEW, reason="claimed")
        item_finalize(
            item=item,
            verdict="approve",
            corrected_output=None,
            reason_code="",
            severity="none",
            user=None,
            reason="single review",
        )
    case = item_reopen(item=item, user=senior, reason="Spot check found an error.")
    assert case.review_a is None and case.review_b is None
    claim = case_claim_next(user=senior)
    with pytest.raises(DomainError) as caught:
        case_decide(case=case, claim_id=claim.pk, user=senior, upheld="a", rationale="x")
    assert "upheld" in caught.value.detail


def test_reopen_rules(make_reviewed_item, reviewer, senior):
    item = make_reviewed_item(APPROVE, APPROVE)
    with pytest.raises(NotAllowed):
        item_reopen(item=item, user=reviewer, reason="I changed my mind.")
    with pytest.raises(DomainError):
        item_reopen(item=item, user=senior, reason=" ")
    item_reopen(item=item, user=senior, reason="Once.")
    with pytest.raises(Conflict):
        item_reopen(item=item, user=senior, reason="Twice.")
