"""Adjudication of comparisons: two preferences that differ, the case page, the decision."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from adjudication.metrics import project_agreement
from adjudication.models import AdjudicationCase, CaseClaim, CaseStatus
from reviews.models import ItemStatus, ProjectMembership, ReviewItem
from reviews.services.accounts import user_roles_sync
from reviews.services.comparisons import PreferenceInput
from reviews.workspace.preferences import preference_submit
from reviews.workspace.services import assignment_claim_next
from tests import factories
from tests.factories import comparison_payload

XSS = '<script>alert("x")</script>'


@pytest.fixture
def split(double_project, reviewer, second_reviewer):
    """A comparison of three where rita prefers the first candidate and sam the second."""
    payload = comparison_payload(3)
    payload["candidates"][2]["output"] = f"Hostile {XSS} candidate."
    (item,) = factories.ingest(double_project, payload)
    candidates = list(item.candidates.order_by("position"))
    for user, winner, note in (
        (reviewer, candidates[0], f"rita: first is right {XSS}"),
        (second_reviewer, candidates[1], "sam: second is clearer"),
    ):
        claim = assignment_claim_next(reviewer=user, project=double_project)
        preference_submit(
            assignment_id=claim.pk,
            reviewer=user,
            data=PreferenceInput(
                preference="winner", winner_id=winner.pk, note=note, reason_code="tone"
            ),
        )
    return AdjudicationCase.objects.get(item=item)


@pytest.fixture
def senior_client(client, senior):
    client.force_login(senior)
    return client


def case_url(case) -> str:
    return reverse("admin:adjudication_case", args=[case.pk])


def claimed(senior_client, senior, case) -> CaseClaim:
    assert senior_client.post(case_url(case), {"action": "claim"}).status_code == 302
    return CaseClaim.objects.get(case=case, senior=senior)


def test_differing_preferences_open_a_case(split):
    assert split.item.status == ItemStatus.IN_ADJUDICATION
    assert split.review_a.preference == split.review_b.preference == "winner"
    assert split.review_a.winner_id != split.review_b.winner_id


def test_case_page_shows_both_choices_and_reasons_escaped_without_models(senior_client, split):
    page = senior_client.get(case_url(split)).content.decode()
    assert "Review A: Candidate 1 is best" in page
    assert "Review B: Candidate 2 is best" in page
    assert "sam: second is clearer" in page
    assert XSS not in page and "&lt;script&gt;" in page
    for candidate in split.item.candidates.all():
        assert candidate.model_name not in page


def test_senior_upholds_b_and_the_decision_is_final(senior_client, senior, split):
    claim = claimed(senior_client, senior, split)
    done = senior_client.post(
        case_url(split),
        {"action": "decide", "claim": claim.pk, "upheld": "b", "rationale": "B is clearer."},
    )
    assert done.status_code == 302
    item = ReviewItem.objects.get(pk=split.item_id)
    second = item.candidates.get(position=1)
    assert (item.status, item.adjudicated) == (ItemStatus.APPROVED, True)
    assert (item.final_preference, item.final_candidate_id) == ("winner", second.pk)
    assert item.final_output == second.output
    split.refresh_from_db()
    assert (split.status, split.upheld) == (CaseStatus.DECIDED, "b")
    page = senior_client.get(case_url(split)).content.decode()
    assert "Final preference: <strong>Candidate 2 is best</strong>" in page
    assert "model-x v2.0" in page  # models are named once the case is decided
    again = senior_client.post(
        case_url(split),
        {"action": "decide", "claim": claim.pk, "upheld": "a", "rationale": "No, A."},
        follow=True,
    )
    assert "already decided" in again.content.decode()
    item.refresh_from_db()
    assert item.final_candidate_id == second.pk


def test_senior_own_preference_and_its_refusals(senior_client, senior, split):
    claim = claimed(senior_client, senior, split)
    third = split.item.candidates.get(position=2)
    foreign = factories.ingest(factories.make_project(), comparison_payload(2))[0]
    for own, fields in (
        (f"winner:{foreign.candidates.first().pk}", {}),
        ("all_bad", {}),
        ("", {}),
    ):
        response = senior_client.post(
            case_url(split),
            {
                "action": "decide",
                "claim": claim.pk,
                "upheld": "neither",
                "own": own,
                "rationale": "Mine.",
                **fields,
            },
        )
        assert response.status_code == 200, own
        assert "Please correct the errors below" in response.content.decode()
    split.refresh_from_db()
    assert split.status == CaseStatus.OPEN

    done = senior_client.post(
        case_url(split),
        {
            "action": "decide",
            "claim": claim.pk,
            "upheld": "neither",
            "own": f"winner:{third.pk}",
            "final_output": "Space doses 4 to 6 hours apart.",
            "reason_code": "incomplete",
            "severity": "minor",
            "rationale": "Only the third says what matters; it needed the range.",
        },
    )
    assert done.status_code == 302
    item = ReviewItem.objects.get(pk=split.item_id)
    assert (item.status, item.final_candidate_id) == (ItemStatus.CORRECTED, third.pk)
    assert item.final_output == "Space doses 4 to 6 hours apart."


def test_a_reviewer_of_the_item_cannot_decide_its_case(client, reviewer, double_project, split):
    ProjectMembership.objects.filter(project=double_project, user=reviewer).update(role="senior")
    user_roles_sync(user=reviewer)
    client.force_login(reviewer)
    assert client.post(case_url(split), {"action": "claim"}).status_code == 403


def test_agreement_leaves_preferences_out_of_verdict_kappa_but_counts_overturns(
    senior_client, senior, split
):
    claim = claimed(senior_client, senior, split)
    third = split.item.candidates.get(position=2)
    senior_client.post(
        case_url(split),
        {
            "action": "decide",
            "claim": claim.pk,
            "upheld": "neither",
            "own": f"winner:{third.pk}",
            "rationale": "Neither: the third.",
        },
    )
    now = timezone.now()
    figures = project_agreement(
        project=split.project, start=now - timedelta(days=1), end=now + timedelta(minutes=1)
    )
    # Both preferences are verdict "approve": counted as verdicts they would "agree".
    assert figures["summary"]["items"] == 0
    overturned = {row["reviewer"]: row["overturned"] for row in figures["reviewers"]}
    assert overturned == {"rita": 1, "sam": 1}
