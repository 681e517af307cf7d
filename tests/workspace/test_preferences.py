"""Preferences on comparison items: the claim's order, the stored review, the page, attacks."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from adjudication.models import AdjudicationCase
from reviews.models import (
    Assignment,
    Candidate,
    ItemStatus,
    Preference,
    Review,
    ReviewItem,
    Severity,
    Verdict,
)
from reviews.services.comparisons import PreferenceInput
from reviews.workspace.preferences import preference_submit
from reviews.workspace.services import (
    ReviewInput,
    ReviewInvalid,
    StaleAssignment,
    assignment_claim_next,
    review_submit,
)
from tests import factories
from tests.factories import comparison_payload

MODEL_NAMES = ("model-w", "model-x", "model-y", "model-z")


def compare(project, count: int = 4, **overrides) -> ReviewItem:
    (item,) = factories.ingest(project, comparison_payload(count, **overrides))
    return item


def review_url(assignment) -> str:
    return reverse("admin:reviews_workspace_review", args=[assignment.pk])


def candidates_of(item) -> list[Candidate]:
    return list(item.candidates.order_by("position"))


# --- services ---------------------------------------------------------------------------


def test_claim_draws_an_order_of_the_items_candidates_and_keeps_it(project, reviewer):
    item = compare(project, 4)
    assignment = assignment_claim_next(reviewer=reviewer, project=project)
    ids = [c.pk for c in candidates_of(item)]
    assert sorted(assignment.candidate_order) == sorted(ids)
    # Claiming again (a reload, Start reviewing again) resumes the same claim and order.
    again = assignment_claim_next(reviewer=reviewer, project=project)
    assert again.pk == assignment.pk
    assert Assignment.objects.get(pk=assignment.pk).candidate_order == assignment.candidate_order


def test_two_reviewers_usually_see_different_orders_and_each_is_stored(
    double_project, double_reviewers
):
    dora, dave, _dina = double_reviewers
    items = [compare(double_project, 4) for _ in range(10)]
    for reviewer in (dora, dave):
        for _ in items:
            claim = assignment_claim_next(reviewer=reviewer, project=double_project)
            preference_submit(
                assignment_id=claim.pk,
                reviewer=reviewer,
                data=PreferenceInput(preference=Preference.TIE),
            )
    differing = 0
    for item in items:
        first, second = Review.objects.filter(item=item).order_by("created_at", "pk")
        assert sorted(first.candidate_order) == sorted(c.pk for c in candidates_of(item))
        assert first.candidate_order == first.assignment.candidate_order
        assert second.candidate_order == second.assignment.candidate_order
        differing += first.candidate_order != second.candidate_order
    # Independent draws of 24 orders agree with probability 1/24: ten items, at most a few.
    assert differing >= 6


def test_preference_is_stored_and_the_winner_is_the_gold_answer(project, reviewer):
    item = compare(project, 3)
    claim = assignment_claim_next(reviewer=reviewer, project=project)
    winner = candidates_of(item)[1]
    review = preference_submit(
        assignment_id=claim.pk,
        reviewer=reviewer,
        data=PreferenceInput(
            preference=Preference.WINNER,
            winner_id=winner.pk,
            reason_code="tone",
            severity=Severity.MINOR,
            note="B is kinder; C is curt.",
        ),
        active_seconds=12,
    )
    review.refresh_from_db()
    assert (review.preference, review.winner_id, review.verdict) == ("winner", winner.pk, "approve")
    assert review.candidate_order == claim.candidate_order
    assert (review.reason_code, review.severity, review.note) == (
        "tone",
        "minor",
        "B is kinder; C is curt.",
    )
    assert review.seconds_spent <= 12
    item.refresh_from_db()
    assert item.status == ItemStatus.APPROVED
    assert item.final_output == winner.output
    assert (item.final_preference, item.final_candidate_id) == ("winner", winner.pk)
    assert Review.history.filter(id=review.pk).count() == 1


def test_a_corrected_winner_releases_the_correction(project, reviewer):
    item = compare(project, 2)
    claim = assignment_claim_next(reviewer=reviewer, project=project)
    winner = candidates_of(item)[0]
    preference_submit(
        assignment_id=claim.pk,
        reviewer=reviewer,
        data=PreferenceInput(
            preference=Preference.WINNER,
            winner_id=winner.pk,
            corrected_output="Space doses at least 4 hours apart; at most 4 g a day.",
            reason_code="incomplete",
            severity=Severity.MAJOR,
        ),
    )
    item.refresh_from_db()
    assert item.status == ItemStatus.CORRECTED
    assert item.final_output == "Space doses at least 4 hours apart; at most 4 g a day."
    assert item.final_candidate_id == winner.pk


def test_tie_releases_nothing_single_and_all_bad_needs_a_reason(project, reviewer):
    tie_item = compare(project, 2)
    claim = assignment_claim_next(reviewer=reviewer, project=project)
    preference_submit(
        assignment_id=claim.pk, reviewer=reviewer, data=PreferenceInput(preference="tie")
    )
    tie_item.refresh_from_db()
    assert (tie_item.status, tie_item.final_preference, tie_item.final_output) == (
        ItemStatus.APPROVED,
        "tie",
        None,
    )

    bad_item = compare(project, 2)
    claim = assignment_claim_next(reviewer=reviewer, project=project)
    with pytest.raises(ReviewInvalid) as refused:
        preference_submit(
            assignment_id=claim.pk, reviewer=reviewer, data=PreferenceInput(preference="all_bad")
        )
    assert set(refused.value.detail) == {"reason_code", "severity"}
    assert not Review.objects.filter(item=bad_item).exists()
    preference_submit(
        assignment_id=claim.pk,
        reviewer=reviewer,
        data=PreferenceInput(preference="all_bad", reason_code="hallucination", severity="major"),
    )
    bad_item.refresh_from_db()
    assert (bad_item.status, bad_item.final_preference, bad_item.final_output) == (
        ItemStatus.REJECTED,
        "all_bad",
        None,
    )
    assert Review.objects.get(item=bad_item).verdict == Verdict.REJECT


def test_a_winner_from_another_item_or_a_failed_candidate_is_refused(project, reviewer):
    factories.make_rule(
        project, name="no-7h", kind="must_not_match", pattern="7 hours", severity="blocking"
    )
    other = compare(project, 2)
    item = compare(project, 4)
    claim = assignment_claim_next(reviewer=reviewer, project=project)
    if claim.item_id != item.pk:  # the queue is oldest first: review `other` out of the way
        preference_submit(assignment_id=claim.pk, reviewer=reviewer, data=PreferenceInput("tie"))
        claim = assignment_claim_next(reviewer=reviewer, project=project)
    assert claim.item_id == item.pk
    for winner_id in (candidates_of(other)[0].pk, 0, None):
        with pytest.raises(ReviewInvalid) as refused:
            preference_submit(
                assignment_id=claim.pk,
                reviewer=reviewer,
                data=PreferenceInput(preference="winner", winner_id=winner_id),
            )
        assert list(refused.value.detail) == ["winner"]
    failed = item.candidates.get(check_failed=True)
    with pytest.raises(ReviewInvalid) as refused:
        preference_submit(
            assignment_id=claim.pk,
            reviewer=reviewer,
            data=PreferenceInput(preference="winner", winner_id=failed.pk),
        )
    assert "blocking check" in refused.value.detail["winner"][0]
    assert not Review.objects.filter(item=item).exists()


def test_a_double_submit_records_once(project, reviewer):
    item = compare(project, 2)
    claim = assignment_claim_next(reviewer=reviewer, project=project)
    data = PreferenceInput(preference="winner", winner_id=candidates_of(item)[0].pk)
    preference_submit(assignment_id=claim.pk, reviewer=reviewer, data=data)
    with pytest.raises(StaleAssignment):
        preference_submit(assignment_id=claim.pk, reviewer=reviewer, data=data)
    assert Review.objects.filter(item=item).count() == 1


def test_a_single_verdict_on_a_comparison_and_a_preference_on_a_single_item_are_refused(
    project, reviewer
):
    compare(project, 2)
    claim = assignment_claim_next(reviewer=reviewer, project=project)
    with pytest.raises(ReviewInvalid):
        review_submit(assignment_id=claim.pk, reviewer=reviewer, data=ReviewInput("approve"))
    preference_submit(assignment_id=claim.pk, reviewer=reviewer, data=PreferenceInput("tie"))
    factories.ingest(project)
    claim = assignment_claim_next(reviewer=reviewer, project=project)
    with pytest.raises(ReviewInvalid):
        preference_submit(assignment_id=claim.pk, reviewer=reviewer, data=PreferenceInput("tie"))
    assert not Review.objects.filter(assignment=claim).exists()


def test_two_preferences_that_differ_open_a_case_and_agreeing_ones_are_final(
    double_project, double_reviewers
):
    dora, dave, _dina = double_reviewers
    split = compare(double_project, 3)
    agreed = compare(double_project, 3)
    picks = {
        (dora, split.pk): 0,
        (dave, split.pk): 1,
        (dora, agreed.pk): 2,
        (dave, agreed.pk): 2,
    }
    for reviewer in (dora, dave):
        for _ in range(2):
            claim = assignment_claim_next(reviewer=reviewer, project=double_project)
            item = claim.item
            winner = candidates_of(item)[picks[(reviewer, item.pk)]]
            preference_submit(
                assignment_id=claim.pk,
                reviewer=reviewer,
                data=PreferenceInput(preference="winner", winner_id=winner.pk, note=f"{reviewer}"),
            )
    split.refresh_from_db()
    agreed.refresh_from_db()
    assert split.status == ItemStatus.IN_ADJUDICATION
    case = AdjudicationCase.objects.get(item=split)
    assert {case.review_a.winner_id, case.review_b.winner_id} == {
        candidates_of(split)[0].pk,
        candidates_of(split)[1].pk,
    }
    # The history names candidates by id, never the models.
    assert not any(name in case.open_reason for name in MODEL_NAMES)
    assert agreed.status == ItemStatus.APPROVED
    assert agreed.final_candidate_id == candidates_of(agreed)[2].pk


# --- the review page --------------------------------------------------------------------


@pytest.fixture
def rita(reviewer):
    client = Client()
    client.force_login(reviewer)
    return client


def _shown_labels(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'data-candidate="(\d+)"', html)]


def test_page_hides_the_models_until_the_decision_then_names_them(rita, project, reviewer):
    item = compare(project, 4)
    compare(project, 2)  # the next item
    claim = assignment_claim_next(reviewer=reviewer, project=project)
    assert claim.item_id == item.pk
    page = rita.get(review_url(claim))
    html = page.content.decode()
    assert page.status_code == 200
    assert page.templates[0].name == "admin/reviews/workspace/compare.html"
    for candidate in candidates_of(item):
        assert candidate.output in html
        assert candidate.model_name not in html
        assert candidate.model_version not in html
    # Shown in the claim's order, the same on a reload.
    assert _shown_labels(html) == claim.candidate_order
    assert _shown_labels(rita.get(review_url(claim)).content.decode()) == claim.candidate_order

    first_shown = claim.candidate_order[0]
    response = rita.post(
        review_url(claim), {"choice": f"winner:{first_shown}", "active_seconds": "3"}, follow=True
    )
    assert response.status_code == 200
    after = response.content.decode()
    assert "you preferred A" in after
    for candidate in candidates_of(item):
        assert f"{candidate.model_name} {candidate.model_version}" in after
    assert Review.objects.get(item=item).winner_id == first_shown


def test_page_escapes_candidate_text(rita, project, reviewer):
    payload = comparison_payload(2)
    payload["candidates"][0]["output"] = "<script>alert(1)</script> <b>bold</b>"
    factories.ingest(project, payload)
    claim = assignment_claim_next(reviewer=reviewer, project=project)
    html = rita.get(review_url(claim)).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_all_bad_without_a_reason_is_a_400_naming_the_field(rita, project, reviewer):
    item = compare(project, 2)
    claim = assignment_claim_next(reviewer=reviewer, project=project)
    response = rita.post(review_url(claim), {"choice": "all_bad", "note": "all wrong"})
    assert response.status_code == 400
    assert "Choose a reason." in response.content.decode()
    assert "all wrong" in response.content.decode()
    assert not Review.objects.filter(item=item).exists()


def test_tampered_winner_id_in_the_post_is_a_400_and_records_nothing(rita, project, reviewer):
    other = compare(project, 2)
    factories.ingest(project)  # keeps the queue non-empty
    claim = assignment_claim_next(reviewer=reviewer, project=project)
    assert claim.item_id == other.pk
    foreign = compare(factories.make_project(), 2)
    for value in (f"winner:{candidates_of(foreign)[0].pk}", "winner:abc", "winner:-1"):
        response = rita.post(review_url(claim), {"choice": value})
        assert response.status_code == 400, value
    assert not Review.objects.exists()
    assert Assignment.objects.get(pk=claim.pk).state == "active"


def test_another_projects_reviewer_cannot_open_or_submit_the_claim(project, reviewer, outsider):
    item = compare(project, 2)
    claim = assignment_claim_next(reviewer=reviewer, project=project)
    client = Client()
    client.force_login(outsider)
    assert client.get(review_url(claim)).status_code == 404
    winner = candidates_of(item)[0].pk
    assert client.post(review_url(claim), {"choice": f"winner:{winner}"}).status_code == 404
    assert not Review.objects.exists()
    # Nor may they read the candidates (and their models) through the items API.
    api = Client()
    api.force_login(outsider)
    assert api.get(f"/api/v1/items/{item.pk}/").status_code == 404


@pytest.mark.parametrize("queue_size", [1, 30])
def test_comparison_page_runs_constant_queries_whatever_the_queue_size(
    rita, project, reviewer, queue_size, django_assert_max_num_queries
):
    factories.ingest(project, *(comparison_payload(4) for _ in range(queue_size)))
    claim = assignment_claim_next(reviewer=reviewer, project=project)
    with django_assert_max_num_queries(8) as captured:
        response = rita.get(review_url(claim))
    assert response.status_code == 200, [q["sql"][:200] for q in captured.captured_queries]


def test_timeline_of_a_comparison_renders_and_names_no_model(double_project, double_reviewers):
    dora, dave, _dina = double_reviewers
    item = compare(double_project, 2)
    claim = assignment_claim_next(reviewer=dora, project=double_project)
    preference_submit(
        assignment_id=claim.pk,
        reviewer=dora,
        data=PreferenceInput(
            preference="winner",
            winner_id=candidates_of(item)[0].pk,
            corrected_output="Doses 4-6 hours apart.",
            reason_code="incomplete",
            severity="minor",
        ),
    )
    client = Client()
    client.force_login(dave)
    page = client.get(reverse("admin:reviews_item_timeline", args=[item.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert not any(name in html for name in MODEL_NAMES)
    assert "Doses 4-6 hours apart." not in html  # blind until dave has decided too
