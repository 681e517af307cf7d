"""Narrowing the reviewer's queue by model version, routing reason or failed check."""

from django.test import Client
from django.urls import reverse

from reviews.models import Assignment
from reviews.services.search import search_index_pending
from reviews.workspace.services import (
    QueueNarrowing,
    ReviewInput,
    assignment_claim_next,
    review_submit,
)
from tests import factories

QUEUE = reverse("admin:reviews_workspace_queue")


def test_claims_keep_to_the_chosen_model_version_reason_or_check(
    monitor_project, django_user_model
):
    user = django_user_model.objects.create_user("rhea", password="rhea-pass-1", is_staff=True)
    factories.add_member(monitor_project, user, "reviewer")
    rule = factories.make_rule(
        monitor_project, kind="must_not_match", pattern="(?i)guarantee", severity="warning"
    )
    low_v1, risky_v2, warned = factories.ingest(
        monitor_project,
        factories.item_payload(confidence=0.1, model_version="v1"),
        factories.item_payload(prompt="Can I sue? lawsuit", model_version="v2"),
        factories.item_payload(output="We guarantee it.", model_version="v3"),
    )
    assert all(item.in_queue for item in (low_v1, risky_v2, warned))
    cases = [
        (QueueNarrowing(model_version="v2"), risky_v2),
        (QueueNarrowing(reason="low_confidence"), low_v1),
        (QueueNarrowing(check=rule.name), warned),
    ]
    for narrowing, expected in cases:
        claim = assignment_claim_next(reviewer=user, project=monitor_project, narrowing=narrowing)
        assert claim.item_id == expected.pk, narrowing
        claim.state = "released"
        claim.save()
    nothing = QueueNarrowing(model_version="v9")
    assert assignment_claim_next(reviewer=user, project=monitor_project, narrowing=nothing) is None


def test_the_queue_page_counts_and_claims_within_the_narrowing(project, reviewer):
    v1, v2a, v2b = factories.ingest(
        project,
        factories.item_payload(model_version="v1", confidence=0.1),
        factories.item_payload(model_version="v2"),
        factories.item_payload(model_version="v2"),
    )
    client = Client()
    client.force_login(reviewer)
    page = client.get(QUEUE, {"model_version": "v2"})
    assert page.status_code == 200
    assert [row.waiting for row in page.context["rows"]] == [2]
    assert b'name="model_version" value="v2"' in page.content
    response = client.post(
        reverse("admin:reviews_workspace_claim", args=[project.pk]), {"model_version": "v2"}
    )
    assert response.status_code == 302
    claim = Assignment.objects.get(reviewer=reviewer)
    assert claim.item_id == v2a.pk
    # After a decision, the next item comes from the same part of the queue.
    response = client.post(
        reverse("admin:reviews_workspace_review", args=[claim.pk]), {"action": "approve"}
    )
    assert response.status_code == 302
    following = Assignment.objects.filter(reviewer=reviewer, state="active").get()
    assert following.item_id == v2b.pk
    assert v1.pk not in Assignment.objects.values_list("item_id", flat=True)


def test_a_note_enters_the_item_search(project, reviewer):
    (item,) = factories.ingest(project)
    claim = assignment_claim_next(reviewer=reviewer, project=project)
    review_submit(
        assignment_id=claim.pk,
        reviewer=reviewer,
        data=ReviewInput(
            verdict="reject", reason_code="unsafe", severity="major", note="Dangerous overdose"
        ),
    )
    item.refresh_from_db()
    assert item.review_notes == "Dangerous overdose"
    search_index_pending()  # the worker's job, run here (search is near-real-time)
    assert list(type(item).objects.search("overdose").values_list("pk", flat=True)) == [item.pk]


def test_a_first_blind_review_note_stays_out_of_the_search_until_the_second(
    double_project, double_reviewers
):
    first, second, _third = double_reviewers
    (item,) = factories.ingest(double_project)
    for reviewer, note in ((first, "Looks like a hallucination"), (second, "Fine by me")):
        claim = assignment_claim_next(reviewer=reviewer, project=double_project)
        assert claim.item_id == item.pk
        review_submit(
            assignment_id=claim.pk,
            reviewer=reviewer,
            data=ReviewInput(verdict="approve", note=note),
        )
        search_index_pending()
        found = set(type(item).objects.search("hallucination").values_list("pk", flat=True))
        assert found == (set() if reviewer == first else {item.pk})
