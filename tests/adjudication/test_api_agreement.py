"""GET /api/v1/projects/{slug}/agreement/: figures, access and bad input."""

from fractions import Fraction

import pytest
from rest_framework.test import APIClient

from adjudication.services import case_claim_next, case_decide
from reviews.services.projects import api_key_create
from tests import factories


def review(verdict: str, seconds: float, output: str | None = None) -> dict:
    fields = {"verdict": verdict, "seconds_spent": seconds, "severity": "none"}
    if verdict != "approve":
        fields.update(reason_code="factual_error", severity="minor")
    if output is not None:
        fields["corrected_output"] = output
    return fields


@pytest.fixture
def reviewed(make_reviewed_item, senior):
    """Four items reviewed by rita (first) and sam (second), two adjudicated."""
    make_reviewed_item(review("approve", 10), review("approve", 5))
    make_reviewed_item(review("reject", 20), review("reject", 5))
    make_reviewed_item(review("approve", 30), review("reject", 5))
    make_reviewed_item(review("correct", 40, "3 g"), review("correct", 5, "2 g"))
    first = case_claim_next(user=senior)  # approve / reject: uphold rita's approval
    case_decide(case=first.case, claim_id=first.pk, user=senior, upheld="a", rationale="Fine.")
    second = case_claim_next(user=senior)  # 3 g / 2 g: the senior writes sam's answer
    case_decide(
        case=second.case,
        claim_id=second.pk,
        user=senior,
        upheld="neither",
        verdict="correct",
        final_output=" 2  g",
        reason_code="factual_error",
        severity="major",
        rationale="2 g is the safe limit here.",
    )


def url(slug: str = "clinical") -> str:
    return f"/api/v1/projects/{slug}/agreement/"


def test_agreement_figures_match_the_hand_count(
    reviewed, client_api, django_assert_max_num_queries
):
    # 9: the preferences on comparisons are one query more (their kappa).
    with django_assert_max_num_queries(9):
        response = client_api.get(url())
    assert response.status_code == 200, response.content
    body = response.json()
    summary = body["summary"]
    assert summary["items"] == 4
    assert summary["percent_agreement"] == 50.0
    assert summary["verdict_agreement_percent"] == 75.0
    # First reviews approve 2, reject 1, correct 1; second: approve 1, reject 2, correct 1.
    # p_o = 3/4, p_e = (2*1 + 1*2 + 1*1) / 16 = 5/16, kappa = (12 - 5) / (16 - 5) = 7/11.
    assert summary["kappa"] == pytest.approx(float(Fraction(7, 11)), abs=1e-4)
    assert summary["adjudicated"] == 2
    assert summary["median_seconds_per_item"] == 30.0  # items took 15, 25, 35, 45 s
    assert body["confusion"]["approve"]["reject"] == 1
    assert body["confusion"]["correct"]["correct"] == 1

    (pair,) = body["pairs"]
    assert {pair["reviewer_a"], pair["reviewer_b"]} == {"rita", "sam"}
    assert pair["items"] == 4 and pair["percent_agreement"] == 50.0

    reviewers = {row["reviewer"]: row for row in body["reviewers"]}
    assert reviewers["rita"]["overturned"] == 1  # 3 g lost to the senior's 2 g
    assert reviewers["rita"]["overturned_percent"] == 50.0
    assert reviewers["sam"]["overturned"] == 1  # reject lost to rita's approval
    assert reviewers["rita"]["median_seconds_per_item"] == 25.0
    assert reviewers["sam"]["median_seconds_per_item"] == 5.0
    assert reviewers["rita"]["reviews"] == 4


def test_a_period_without_reviews_has_no_kappa(reviewed, client_api):
    response = client_api.get(url(), {"start": "2020-01-01", "end": "2020-02-01T00:00:00Z"})
    assert response.status_code == 200
    summary = response.json()["summary"]
    assert summary["items"] == 0
    assert summary["kappa"] is None
    assert summary["percent_agreement"] is None


def test_bad_periods_are_400_per_field(double_project, client_api):
    response = client_api.get(url(), {"start": "last tuesday"})
    assert response.status_code == 400
    assert "start" in response.json()
    response = client_api.get(url(), {"start": "2026-02-01", "end": "2026-01-01"})
    assert response.status_code == 400
    assert "start" in response.json()
    # Found by schemathesis: a default start 30 days before year 1 was a 500.
    response = client_api.get(url(), {"end": "0001-01-01T00:00:02Z"})
    assert response.status_code == 400
    assert "end" in response.json()


def test_agreement_page_refuses_dates_at_the_calendars_ends(senior_client_page):
    for params in ({"end": "9999-12-31"}, {"end": "0001-01-05"}):
        response = senior_client_page.get("/admin/adjudication/adjudicationcase/agreement/", params)
        assert response.status_code == 200, params
        assert "Choose a date between years 1 and 9999." in response.content.decode(), params


@pytest.fixture
def senior_client_page(client, senior, double_project):
    client.force_login(senior)
    return client


def test_seniors_see_the_figures_and_reviewers_do_not(double_project, senior, reviewer):
    client = APIClient()
    client.force_authenticate(senior)
    assert client.get(url()).status_code == 200
    client.force_authenticate(reviewer)
    assert client.get(url()).status_code == 404


def test_another_projects_key_sees_nothing(double_project):
    other = factories.make_project()
    _key, raw = api_key_create(project=other, name="other")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert client.get(url()).status_code == 404
    assert client.get(url(other.slug)).status_code == 200
    assert APIClient().get(url()).status_code in (401, 403)
