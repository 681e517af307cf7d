import re
from datetime import timedelta

import pytest
from django.urls import reverse

from reviews.models import Assignment, AssignmentState, ItemStatus, Review
from reviews.services.accounts import user_roles_sync
from reviews.workspace.services import ReviewInput, assignment_claim_next, review_submit
from tests import factories
from tests.workspace.conftest import queue

pytestmark = pytest.mark.django_db

QUEUE_URL = reverse("admin:reviews_workspace_queue")


def claim_url(project):
    return reverse("admin:reviews_workspace_claim", args=[project.pk])


def review_url(assignment):
    return reverse("admin:reviews_workspace_review", args=[assignment.pk])


def timeline_url(item):
    return reverse("admin:reviews_item_timeline", args=[item.pk])


@pytest.fixture
def rita(client, reviewer):
    client.force_login(reviewer)
    return client


def test_my_queue_shows_waiting_items_and_my_reviews_today(rita, project, reviewer):
    queue(project, 3)
    assignment = assignment_claim_next(reviewer=reviewer, project=project)
    review_submit(assignment_id=assignment.pk, reviewer=reviewer, data=ReviewInput("approve"))
    response = rita.get(QUEUE_URL)
    assert response.status_code == 200
    rows = response.context["rows"]
    assert [(r.project, r.waiting, r.reviewed_today) for r in rows] == [(project, 2, 1)]
    assert rows[0].median_seconds is not None
    assert b"Start reviewing" in response.content


def test_my_queue_caps_the_waiting_count(rita, project, monkeypatch):
    monkeypatch.setattr("reviews.workspace.selectors.WAITING_SHOWN_UP_TO", 2)
    queue(project, 2)
    page = rita.get(QUEUE_URL)
    assert page.context["rows"][0].waiting == 2
    assert re.search(rb'class="num waiting">2<', page.content)
    queue(project, 3)
    page = rita.get(QUEUE_URL)
    # Counted no further than one past the cap, whatever the queue's size.
    assert page.context["rows"][0].waiting == 3
    assert re.search(rb'class="num waiting">2\+<', page.content)


def test_start_reviewing_claims_and_opens_the_review_page(rita, project, reviewer):
    (item,) = queue(project, 1)
    response = rita.post(claim_url(project))
    assignment = Assignment.objects.get(reviewer=reviewer)
    assert response.status_code == 302 and response.url == review_url(assignment)
    page = rita.get(response.url)
    assert page.status_code == 200
    assert item.prompt.encode() in page.content


def test_start_reviewing_with_an_empty_queue_says_so(rita, project):
    response = rita.post(claim_url(project), follow=True)
    assert b"Nothing left to review" in response.content


def test_claim_is_post_only(rita, project):
    queue(project, 1)
    assert rita.get(claim_url(project)).status_code == 405
    assert not Assignment.objects.exists()


def test_review_page_escapes_untrusted_text_and_pretty_prints_json(rita, project, reviewer):
    queue(
        project,
        1,
        prompt="<img src=x onerror=alert(1)>",
        output='{"answer": "<script>alert(1)</script>", "n": 1}',
        context=[{"text": "<b>ctx</b>", "title": "<i>doc</i>", "source": "s.pdf"}],
        messages=[{"role": "user", "content": "<svg onload=alert(2)>"}],
        metadata={"ticket": "<u>T-1</u>"},
    )
    assignment = assignment_claim_next(reviewer=reviewer, project=project)
    content = rita.get(review_url(assignment)).content.decode()
    for raw in (
        "<img src=x",
        "<script>alert(1)",
        "<b>ctx</b>",
        "<i>doc</i>",
        "<svg onload",
        "<u>T",
    ):
        assert raw not in content
    assert "&lt;img src=x onerror=alert(1)&gt;" in content
    assert "&lt;b&gt;ctx&lt;/b&gt;" in content
    assert "{\n  &quot;answer&quot;: &quot;&lt;script&gt;" in content
    assert "(JSON, pretty-printed)" in content


def test_review_page_shows_model_checks_and_judge(rita, project, reviewer):
    queue(project, 1, model_name="acme-med", model_version="v7", confidence=0.42)
    assignment = assignment_claim_next(reviewer=reviewer, project=project)
    content = rita.get(review_url(assignment)).content.decode()
    assert "acme-med" in content and "v7" in content and "0.42" in content
    assert "No judge verdict for this item." in content
    for key in ("<kbd>a</kbd>", "<kbd>r</kbd>", "<kbd>e</kbd>", "<kbd>n</kbd>", "<kbd>?</kbd>"):
        assert key in content
    for code in project.reason_codes:
        assert code in content


@pytest.mark.parametrize("queue_size", [1, 40])
def test_review_page_runs_constant_queries_whatever_the_queue_size(
    rita, project, reviewer, queue_size, django_assert_max_num_queries
):
    queue(project, queue_size, context=[{"text": "doc"}] * 5)
    assignment = assignment_claim_next(reviewer=reviewer, project=project)
    # Session, user, claim with item and project, checks, judge verdicts, rubric criteria.
    with django_assert_max_num_queries(7) as captured:
        response = rita.get(review_url(assignment))
    assert response.status_code == 200, [q["sql"][:200] for q in captured.captured_queries]


def test_submit_and_next_opens_the_next_item(rita, project, reviewer):
    first, second = queue(project, 2)
    assignment = assignment_claim_next(reviewer=reviewer, project=project)
    Assignment.objects.filter(pk=assignment.pk).update(
        claimed_at=assignment.claimed_at - timedelta(seconds=30)
    )
    response = rita.post(review_url(assignment), {"action": "approve", "active_seconds": "3.5"})
    nxt = Assignment.objects.get(reviewer=reviewer, state=AssignmentState.ACTIVE)
    assert response.status_code == 302 and response.url == review_url(nxt)
    assert nxt.item_id == second.pk
    first.refresh_from_db()
    assert first.status == ItemStatus.APPROVED
    assert Review.objects.get(item=first).seconds_spent == 3.5
    last = rita.post(
        response.url,
        {
            "action": "correct",
            "corrected_output": "Adults: at most 4 g in 24 hours.",
            "reason_code": "format",
            "severity": "minor",
        },
        follow=True,
    )
    assert b"The queue is empty for now." in last.content
    second.refresh_from_db()
    assert second.status == ItemStatus.CORRECTED
    assert second.final_output == "Adults: at most 4 g in 24 hours."


def test_an_invalid_submit_is_a_400_that_keeps_the_input(rita, project, reviewer):
    (item,) = queue(project, 1)
    assignment = assignment_claim_next(reviewer=reviewer, project=project)
    response = rita.post(
        review_url(assignment),
        {"action": "correct", "corrected_output": "My <careful> edit", "reason_code": "other"},
    )
    assert response.status_code == 400
    content = response.content.decode()
    assert "Choose a severity." in content
    assert "Describe the problem when the reason is" in content
    assert "My &lt;careful&gt; edit" in content
    assert 'data-open-panel="correct"' in content
    assert not Review.objects.exists()
    item.refresh_from_db()
    assert item.status == ItemStatus.IN_REVIEW


def test_a_double_submit_shows_a_clear_message_and_records_once(rita, project, reviewer):
    queue(project, 1)
    assignment = assignment_claim_next(reviewer=reviewer, project=project)
    rita.post(review_url(assignment), {"action": "approve"})
    again = rita.post(review_url(assignment), {"action": "approve"}, follow=True)
    assert b"already submitted" in again.content
    assert Review.objects.count() == 1
    back = rita.get(review_url(assignment), follow=True)
    assert b"already submitted" in back.content


def test_skip_and_release_buttons(rita, project, reviewer):
    _first, second = queue(project, 2)
    assignment = assignment_claim_next(reviewer=reviewer, project=project)
    skipped = rita.post(review_url(assignment), {"action": "skip"})
    nxt = Assignment.objects.get(reviewer=reviewer, state=AssignmentState.ACTIVE)
    assert skipped.url == review_url(nxt) and nxt.item_id == second.pk
    released = rita.post(review_url(nxt), {"action": "release"}, follow=True)
    assert b"it is back in the queue" in released.content
    assert not Assignment.objects.filter(state=AssignmentState.ACTIVE).exists()


def test_timeline_shows_the_whole_story(rita, project, reviewer):
    (item,) = queue(project, 1, output="Take 8 g.")
    assignment = assignment_claim_next(reviewer=reviewer, project=project)
    rita.post(
        review_url(assignment),
        {
            "action": "correct",
            "corrected_output": "Take 4 g.",
            "reason_code": "factual_error",
            "severity": "critical",
            "note": "<b>label</b>",
        },
    )
    content = rita.get(timeline_url(item)).content.decode()
    for text in ("Ingested", "Claimed", "Review: Correct — Factual error, critical", "chars 5-6"):
        assert text in content
    assert "<del>8</del><ins>4</ins>" in content
    assert "&lt;b&gt;label&lt;/b&gt;" in content


def test_blind_review_hides_the_first_decision_from_the_second_reviewer(
    client, double_project, double_reviewers
):
    dora, dave, _ = double_reviewers
    (item,) = queue(double_project, 1)
    first = assignment_claim_next(reviewer=dora, project=double_project)
    review_submit(
        assignment_id=first.pk,
        reviewer=dora,
        data=ReviewInput(verdict="reject", reason_code="hallucination", severity="major"),
    )
    client.force_login(dave)
    second = assignment_claim_next(reviewer=dave, project=double_project)
    page = client.get(review_url(second)).content.decode()
    timeline = client.get(timeline_url(item)).content.decode()
    history = client.get(reverse("admin:reviews_reviewitem_history", args=[item.pk]))
    assert "dora" not in page  # the review page carries nothing of other reviews
    # The raw history is the project admins' (tests/quality/test_control_history.py).
    assert history.status_code == 403
    for content in (timeline, history.content.decode()):
        assert "hallucination" not in content.lower()
        assert not re.search(r"\breject", content, re.I)
    assert "Hidden until every required review is in" in timeline
    client.force_login(dora)
    own = client.get(timeline_url(item)).content.decode()
    assert "Hallucination" in own  # the reason's label, not its code


def test_a_reviewer_of_another_project_sees_nothing_of_this_one(client, project, outsider):
    (item,) = queue(project, 1)
    client.force_login(outsider)
    assert client.post(claim_url(project)).status_code == 404
    assert client.get(timeline_url(item)).status_code == 404
    changelist = client.get(reverse("admin:reviews_reviewitem_changelist"))
    assert changelist.status_code == 200
    assert item.external_id.encode() not in changelist.content
    assert project.name.encode() not in changelist.content
    change = client.get(reverse("admin:reviews_reviewitem_change", args=[item.pk]))
    assert change.status_code == 302  # the admin's "does not exist" redirect
    projects = client.get(reverse("admin:reviews_project_changelist"))
    assert project.name.encode() not in projects.content
    assert client.get(QUEUE_URL).context["rows"][0].project.slug == "tax"
    api = client.get("/api/v1/items/")
    assert api.status_code == 200 and api.json()["results"] == []
    assert client.get(f"/api/v1/items/{item.pk}/").status_code == 404


def test_review_page_of_someone_elses_claim_is_404(client, project, reviewer, second_reviewer):
    queue(project, 1)
    assignment = assignment_claim_next(reviewer=reviewer, project=project)
    client.force_login(second_reviewer)
    assert client.get(review_url(assignment)).status_code == 404
    assert client.post(review_url(assignment), {"action": "approve"}).status_code == 404


def test_workspace_without_a_membership_offers_nothing(client, django_user_model):
    loner = django_user_model.objects.create_user("loner", password="x-pass-123", is_staff=True)
    client.force_login(loner)
    response = client.get(QUEUE_URL)
    assert response.status_code == 200
    assert b"You are not a member of any project yet." in response.content
    assert client.post(reverse("admin:reviews_workspace_claim", args=[99])).status_code == 404


@pytest.mark.parametrize("per_project", [1, 30])
def test_item_list_filters_by_the_users_projects_in_constant_queries(
    client, project, other_project, reviewer, per_project, django_assert_max_num_queries
):
    factories.add_member(other_project, reviewer, "reviewer")
    user_roles_sync(user=reviewer)
    hidden = factories.make_project(name="Hidden desk", slug="hidden")
    mine, theirs = queue(project, per_project), queue(other_project, per_project)
    queue(hidden, per_project)
    client.force_login(reviewer)
    url = reverse("admin:reviews_reviewitem_changelist")
    with django_assert_max_num_queries(12):
        page = client.get(url).content.decode()
    assert "Hidden desk" not in page  # offered projects: the user's own only
    assert f"?project={project.pk}" in page and f"?project={other_project.pk}" in page
    with django_assert_max_num_queries(12):
        filtered = client.get(url, {"project": other_project.pk}).content.decode()
    assert theirs[0].external_id in filtered and mine[0].external_id not in filtered
    assert "0 review items" in client.get(url, {"project": hidden.pk}).content.decode()
    assert client.get(url, {"project": "x"}).status_code == 200


def test_admin_carries_the_product_name(client):
    page = client.get(reverse("admin:login")).content.decode()
    assert "HITL Review" in page and "Django administration" not in page
