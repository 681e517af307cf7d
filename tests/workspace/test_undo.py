"""Undo of a reviewer's last decision: what it restores, and each refusal."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse

from reviews.errors import NotAllowed
from reviews.models import Assignment, AssignmentState, ItemStatus, Project, Review, WebhookDelivery
from reviews.quality.quarantine import quarantine_create
from reviews.workspace.services import ReviewInput, assignment_claim_next, review_submit
from reviews.workspace.undo import UndoRefused, review_undo
from tests import factories
from tests.workspace.conftest import queue

pytestmark = pytest.mark.django_db

REJECT = ReviewInput(verdict="reject", reason_code="factual_error", severity="major")


def decide(project, user, data=None) -> Review:
    assignment = assignment_claim_next(reviewer=user, project=project)
    return review_submit(
        assignment_id=assignment.pk, reviewer=user, data=data or ReviewInput(verdict="approve")
    )


def age(review: Review, seconds: float) -> None:
    Review.objects.filter(pk=review.pk).update(
        created_at=review.created_at - timedelta(seconds=seconds)
    )


def test_undo_withdraws_a_final_decision_and_restores_the_claim(project, reviewer):
    (item,) = queue(project, 1)
    review = decide(project, reviewer)
    item.refresh_from_db()
    assert item.status == ItemStatus.APPROVED

    assignment = review_undo(review_id=review.pk, reviewer=reviewer)

    item.refresh_from_db()
    assert item.status == ItemStatus.IN_REVIEW and item.in_queue
    assert item.final_output is None and item.final_verdict == "" and item.decided_at is None
    assert not Review.objects.filter(pk=review.pk).exists()
    gone = Review.history.filter(id=review.pk).latest()
    assert gone.history_type == "-" and gone.history_change_reason == "Undone by the reviewer"
    assert gone.history_user == reviewer
    assert assignment.state == AssignmentState.ACTIVE and assignment.item_id == item.pk
    assert not WebhookDelivery.objects.exists()  # no webhook: nobody was told either time
    # The reviewer decides again, differently, on the same claim.
    again = review_submit(assignment_id=assignment.pk, reviewer=reviewer, data=REJECT)
    item.refresh_from_db()
    assert again.verdict == "reject" and item.status == ItemStatus.REJECTED


def test_undo_puts_the_next_claimed_item_back(project, reviewer):
    _first, second = queue(project, 2)
    review = decide(project, reviewer)
    nxt = assignment_claim_next(reviewer=reviewer, project=project)
    assert nxt.item_id == second.pk
    restored = review_undo(review_id=review.pk, reviewer=reviewer)
    nxt.refresh_from_db()
    second.refresh_from_db()
    assert nxt.state == AssignmentState.RELEASED and second.status == ItemStatus.PENDING_REVIEW
    assert assignment_claim_next(reviewer=reviewer, project=project).pk == restored.pk


def test_undo_is_refused_once_the_window_passed(project, reviewer):
    queue(project, 1)
    review = decide(project, reviewer)
    age(review, project.undo_seconds + 1)
    with pytest.raises(UndoRefused, match="60 seconds"):
        review_undo(review_id=review.pk, reviewer=reviewer)
    assert Review.objects.filter(pk=review.pk).exists()


def test_undo_is_refused_when_the_project_turned_it_off(project, reviewer):
    Project.objects.filter(pk=project.pk).update(undo_seconds=0)
    queue(project, 1)
    review = decide(project, reviewer)
    with pytest.raises(UndoRefused, match="does not allow"):
        review_undo(review_id=review.pk, reviewer=reviewer)


def test_only_the_author_may_undo(project, reviewer, second_reviewer):
    queue(project, 1)
    review = decide(project, reviewer)
    with pytest.raises(NotAllowed):
        review_undo(review_id=review.pk, reviewer=second_reviewer)
    assert Review.objects.filter(pk=review.pk).exists()


def test_undo_is_refused_once_a_webhook_told_the_client_and_points_to_reopen(project, reviewer):
    Project.objects.filter(pk=project.pk).update(webhook_url="http://127.0.0.1:9/hook")
    (item,) = queue(project, 1)
    review = decide(project, reviewer)
    assert WebhookDelivery.objects.filter(item=item).exists()
    with pytest.raises(UndoRefused, match="webhook told the client") as refused:
        review_undo(review_id=review.pk, reviewer=reviewer)
    assert "reopen" in refused.value.message
    item.refresh_from_db()
    assert item.status == ItemStatus.APPROVED


def test_undo_is_refused_after_another_reviewer_claimed_the_item(double_project, double_reviewers):
    dora, dave, _ = double_reviewers
    (item,) = queue(double_project, 1)
    review = decide(double_project, dora, REJECT)
    assert assignment_claim_next(reviewer=dave, project=double_project).item_id == item.pk
    with pytest.raises(UndoRefused, match="Someone else"):
        review_undo(review_id=review.pk, reviewer=dora)


def test_undo_is_refused_when_the_decision_opened_a_case(double_project, double_reviewers):
    dora, dave, _ = double_reviewers
    (item,) = queue(double_project, 1)
    decide(double_project, dora)
    second = decide(double_project, dave, REJECT)
    item.refresh_from_db()
    assert item.status == ItemStatus.IN_ADJUDICATION
    with pytest.raises(UndoRefused, match="adjudication"):
        review_undo(review_id=second.pk, reviewer=dave)


def test_a_first_blind_review_undone_waits_for_its_reviewer_again(double_project, double_reviewers):
    dora, _dave, _ = double_reviewers
    (item,) = queue(double_project, 1)
    review = decide(double_project, dora, REJECT)
    assignment = review_undo(review_id=review.pk, reviewer=dora)
    item.refresh_from_db()
    assert item.status == ItemStatus.IN_REVIEW
    assert Assignment.objects.get(pk=assignment.pk).state == AssignmentState.ACTIVE
    assert not Review.objects.filter(item=item).exists()


@pytest.mark.django_db(transaction=True)
def test_two_undos_at_once_withdraw_the_review_once(django_user_model):
    project = factories.make_project(name="Undo race", slug="undo-race")
    user = django_user_model.objects.create_user("racer", is_staff=True)
    factories.add_member(project, user)
    queue(project, 1)
    review = decide(project, user)
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def undo() -> None:
        try:
            start.wait()
            review_undo(review_id=review.pk, reviewer=user)
            outcomes.append("undone")
        except NotAllowed:  # the review was gone once the lock was ours
            outcomes.append("refused")
        except BaseException as exc:  # reported in the main thread below
            outcomes.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=undo) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["refused", "undone"]
    assert Assignment.objects.filter(reviewer=user, state=AssignmentState.ACTIVE).count() == 1
    assert Review.history.filter(id=review.pk, history_type="-").count() == 1


def undo_url(review) -> str:
    return reverse("admin:reviews_workspace_undo", args=[review.pk])


def test_the_page_offers_undo_after_a_decision_and_undoes_in_one_post(client, project, reviewer):
    queue(project, 2)
    client.force_login(reviewer)
    first = assignment_claim_next(reviewer=reviewer, project=project)
    response = client.post(
        reverse("admin:reviews_workspace_review", args=[first.pk]), {"action": "approve"}
    )
    page = client.get(response.url).content.decode()
    review = Review.objects.get(reviewer=reviewer)
    assert f'action="{undo_url(review)}"' in page and 'id="ws-undo"' in page
    assert client.get(undo_url(review)).status_code == 405
    undone = client.post(undo_url(review))
    assert undone.status_code == 302
    assert undone.url == reverse("admin:reviews_workspace_review", args=[first.pk])
    assert not Review.objects.exists()
    assert 'id="ws-undo"' not in client.get(undone.url).content.decode()


def test_a_refused_undo_says_why_on_the_queue_page(client, project, reviewer):
    queue(project, 1)
    review = decide(project, reviewer)
    age(review, 600)
    client.force_login(reviewer)
    response = client.post(undo_url(review), follow=True)
    assert response.status_code == 200
    assert "that time has passed" in response.content.decode()


def test_attackers_cannot_undo_someone_elses_decision(
    client, project, reviewer, second_reviewer, outsider, senior
):
    queue(project, 1)
    review = decide(project, reviewer)
    for attacker in (second_reviewer, outsider, senior):
        client.force_login(attacker)
        assert client.post(undo_url(review)).status_code == 404
    client.logout()
    anonymous = client.post(undo_url(review))
    assert anonymous.status_code == 302 and anonymous.url.startswith("/admin/login/")
    assert Review.objects.filter(pk=review.pk).exists()
    assert client.post(reverse("admin:reviews_workspace_undo", args=[999999])).status_code == 302


def test_undo_is_refused_for_a_quarantined_review(project, reviewer):
    queue(project, 1)
    review = decide(project, reviewer)
    quarantine_create(
        project=project,
        reviewer=reviewer,
        start=review.created_at - timedelta(minutes=1),
        end=review.created_at + timedelta(minutes=1),
        reason="Control accuracy collapsed.",
    )
    with pytest.raises(UndoRefused, match="quarantined"):
        review_undo(review_id=review.pk, reviewer=reviewer)


def test_undo_is_refused_without_a_claim_to_restore(project, reviewer):
    queue(project, 1)
    review = decide(project, reviewer)
    Review.objects.filter(pk=review.pk).update(assignment=None)
    with pytest.raises(UndoRefused, match="no claim"):
        review_undo(review_id=review.pk, reviewer=reviewer)


def test_an_undone_audit_review_puts_the_sample_back_in_the_queue(django_user_model):
    project = factories.make_project(
        name="Audited", slug="audited", mode="monitor", audit_sample_rate=1.0
    )
    user = django_user_model.objects.create_user("auditor", is_staff=True)
    factories.add_member(project, user)
    (item,) = queue(project, 1, confidence=0.99)
    assert item.status == ItemStatus.AUTO_APPROVED and item.is_audit and item.in_queue
    review = decide(project, user)
    item.refresh_from_db()
    assert review.is_audit and not item.in_queue
    assignment = review_undo(review_id=review.pk, reviewer=user)
    item.refresh_from_db()
    assert item.in_queue and item.status == ItemStatus.AUTO_APPROVED
    assert item.history.latest().history_change_reason == "Audit review undone by auditor"
    assert assignment_claim_next(reviewer=user, project=project).pk == assignment.pk
