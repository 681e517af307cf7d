from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from reviews.errors import NotAllowed
from reviews.models import Assignment, AssignmentState, ItemStatus, ReviewItem
from reviews.workspace.services import (
    ReviewInput,
    StaleAssignment,
    assignment_claim_next,
    assignment_expire_stale,
    assignment_release,
    review_submit,
)
from tests import factories
from tests.workspace.conftest import queue

pytestmark = pytest.mark.django_db


def _age(assignment: Assignment, minutes: int) -> None:
    """Move a claim's lease into the past."""
    Assignment.objects.filter(pk=assignment.pk).update(
        lease_expires_at=timezone.now() - timedelta(minutes=minutes)
    )


def test_claim_takes_risk_then_lowest_confidence_then_oldest(project, reviewer):
    project.risk_keywords = ["overdose"]
    project.save()
    plain_old, plain_unsure = queue(project, 1, confidence=0.9) + queue(project, 1, confidence=0.2)
    (risky,) = queue(project, 1, output="Risk of overdose above 4 g.", confidence=0.99)
    order = []
    for _ in range(3):
        assignment = assignment_claim_next(reviewer=reviewer, project=project)
        order.append(assignment.item_id)
        review_submit(
            assignment_id=assignment.pk, reviewer=reviewer, data=ReviewInput(verdict="approve")
        )
    assert order == [risky.pk, plain_unsure.pk, plain_old.pk]
    assert assignment_claim_next(reviewer=reviewer, project=project) is None


def test_claim_sets_lease_and_moves_item_to_in_review(project, reviewer):
    project.lease_minutes = 12
    project.save()
    (item,) = queue(project, 1)
    before = timezone.now()
    assignment = assignment_claim_next(reviewer=reviewer, project=project)
    item.refresh_from_db()
    assert item.status == ItemStatus.IN_REVIEW
    assert assignment.state == AssignmentState.ACTIVE
    lease = assignment.lease_expires_at - before
    assert timedelta(minutes=11, seconds=59) < lease < timedelta(minutes=12, seconds=5)
    latest = item.history.latest()
    assert latest.history_user == reviewer
    assert latest.history_change_reason == "Claimed by rita"


def test_a_held_claim_is_returned_instead_of_a_second_item(project, reviewer):
    queue(project, 3)
    first = assignment_claim_next(reviewer=reviewer, project=project)
    again = assignment_claim_next(reviewer=reviewer, project=project)
    assert again.pk == first.pk
    assert Assignment.objects.filter(reviewer=reviewer).count() == 1


def test_two_reviewers_get_different_items(project, reviewer, second_reviewer, django_user_model):
    queue(project, 2)
    a = assignment_claim_next(reviewer=reviewer, project=project)
    b = assignment_claim_next(reviewer=second_reviewer, project=project)
    assert a.item_id != b.item_id
    third = django_user_model.objects.create_user("third", password="x-pass-123", is_staff=True)
    factories.add_member(project, third)
    assert assignment_claim_next(reviewer=third, project=project) is None


def test_reviewer_never_gets_an_item_they_already_reviewed(double_project, double_reviewers):
    dora, dave, _dina = double_reviewers
    (item,) = queue(double_project, 1)
    assignment = assignment_claim_next(reviewer=dora, project=double_project)
    review_submit(assignment_id=assignment.pk, reviewer=dora, data=ReviewInput(verdict="approve"))
    item.refresh_from_db()
    assert item.in_queue and item.status == ItemStatus.PENDING_REVIEW
    assert assignment_claim_next(reviewer=dora, project=double_project) is None
    second = assignment_claim_next(reviewer=dave, project=double_project)
    assert second.item_id == item.pk


def test_two_review_item_is_claimed_by_two_reviewers_at_once_but_not_three(
    double_project, double_reviewers
):
    dora, dave, dina = double_reviewers
    (item,) = queue(double_project, 1)
    assert assignment_claim_next(reviewer=dora, project=double_project).item_id == item.pk
    assert assignment_claim_next(reviewer=dave, project=double_project).item_id == item.pk
    assert assignment_claim_next(reviewer=dina, project=double_project) is None


def test_expired_lease_returns_item_to_the_queue(project, reviewer, second_reviewer):
    (item,) = queue(project, 1)
    first = assignment_claim_next(reviewer=reviewer, project=project)
    assert assignment_claim_next(reviewer=second_reviewer, project=project) is None
    _age(first, 1)
    taken = assignment_claim_next(reviewer=second_reviewer, project=project)
    assert taken.item_id == item.pk
    first.refresh_from_db()
    assert first.state == AssignmentState.EXPIRED
    assert first.history.latest().history_change_reason.startswith("Lease expired")
    with pytest.raises(StaleAssignment, match="expired"):
        review_submit(
            assignment_id=first.pk, reviewer=reviewer, data=ReviewInput(verdict="approve")
        )


def test_expired_own_claim_can_be_claimed_again(project, reviewer):
    (item,) = queue(project, 1)
    first = assignment_claim_next(reviewer=reviewer, project=project)
    _age(first, 1)
    again = assignment_claim_next(reviewer=reviewer, project=project)
    assert again.pk != first.pk and again.item_id == item.pk


def test_release_returns_item_to_pending_review(project, reviewer, second_reviewer):
    (item,) = queue(project, 1)
    assignment = assignment_claim_next(reviewer=reviewer, project=project)
    assignment_release(assignment_id=assignment.pk, reviewer=reviewer)
    item.refresh_from_db()
    assert item.status == ItemStatus.PENDING_REVIEW and item.in_queue
    assert item.history.latest().history_change_reason == "Released by rita"
    assert assignment_claim_next(reviewer=second_reviewer, project=project).item_id == item.pk


def test_skip_hides_the_item_from_the_skipper_only(project, reviewer, second_reviewer):
    skipped, other = queue(project, 2)
    assignment = assignment_claim_next(reviewer=reviewer, project=project)
    assert assignment.item_id == skipped.pk
    assignment_release(assignment_id=assignment.pk, reviewer=reviewer, skip=True)
    assert assignment_claim_next(reviewer=reviewer, project=project).item_id == other.pk
    assert assignment_claim_next(reviewer=second_reviewer, project=project).item_id == skipped.pk


def test_release_of_someone_elses_claim_is_refused(project, reviewer, second_reviewer):
    queue(project, 1)
    assignment = assignment_claim_next(reviewer=reviewer, project=project)
    with pytest.raises(StaleAssignment, match="another reviewer"):
        assignment_release(assignment_id=assignment.pk, reviewer=second_reviewer)


def test_non_member_cannot_claim(project, outsider):
    queue(project, 1)
    with pytest.raises(NotAllowed):
        assignment_claim_next(reviewer=outsider, project=project)


def test_expire_stale_closes_leases_and_returns_items(project, reviewer):
    (item,) = queue(project, 1)
    assignment = assignment_claim_next(reviewer=reviewer, project=project)
    _age(assignment, 5)
    assert assignment_expire_stale() == 1
    item.refresh_from_db()
    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.EXPIRED
    assert item.status == ItemStatus.PENDING_REVIEW
    assert assignment_expire_stale() == 0
    call_command("expire_leases")


def test_audit_sample_is_claimed_last_and_keeps_its_status(monitor_project, django_user_model):
    monitor_project.audit_sample_rate = 1.0
    monitor_project.save()
    user = django_user_model.objects.create_user("audrey", password="a-pass-123", is_staff=True)
    factories.add_member(monitor_project, user)
    (audit,) = queue(monitor_project, 1, confidence=0.95)
    (low,) = queue(monitor_project, 1, confidence=0.1)
    assert audit.status == ItemStatus.AUTO_APPROVED and audit.in_queue and audit.is_audit
    first = assignment_claim_next(reviewer=user, project=monitor_project)
    assert first.item_id == low.pk
    review_submit(assignment_id=first.pk, reviewer=user, data=ReviewInput(verdict="approve"))
    second = assignment_claim_next(reviewer=user, project=monitor_project)
    assert second.item_id == audit.pk
    review = review_submit(
        assignment_id=second.pk,
        reviewer=user,
        data=ReviewInput(verdict="reject", reason_code="hallucination", severity="major"),
    )
    audit.refresh_from_db()
    assert review.is_audit
    assert audit.status == ItemStatus.AUTO_APPROVED
    assert audit.final_output == audit.output
    assert not audit.in_queue
    assert not ReviewItem.objects.filter(in_queue=True).exists()
