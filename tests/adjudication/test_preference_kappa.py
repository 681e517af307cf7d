"""Agreement on preferences: kappa per pair of reviewers and per project, ties counted.

The references are two published worked examples, stored as preferences:

- Cohen's kappa: the worked example of Wikipedia's "Cohen's kappa" article
  (section "Simple example"): 50 items, both raters "yes" on 20, both "no" on
  15, A "yes" and B "no" on 5, A "no" and B "yes" on 10; p_o = 0.7,
  p_e = 0.5, kappa = 0.4. Here "yes" is "candidate 1 is best" and "no" a tie.
- Fleiss' kappa: the worked example of Fleiss, J. L. (1971), "Measuring nominal
  scale agreement among many raters", Psychological Bulletin 76(5), as given in
  Wikipedia's "Fleiss' kappa" article ("Worked example"): 10 subjects, 14
  raters each, 5 categories; P-bar = 0.378, P-bar_e = 0.213, kappa = 0.210.
  Here the categories are candidates 1-3 of a comparison, tie and all bad.
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from adjudication.metrics import project_agreement
from reviews.models import Review
from reviews.quality.quarantine import quarantine_create
from reviews.services.projects import api_key_create
from reviews.stats import cohen_kappa, fleiss_kappa
from tests import factories
from tests.factories import comparison_payload

pytestmark = pytest.mark.django_db

# Fleiss (1971) / Wikipedia: subjects (rows) by categories (columns): raters per category.
FLEISS_1971 = [
    (0, 0, 0, 0, 14),
    (0, 2, 6, 4, 2),
    (0, 0, 3, 5, 6),
    (0, 3, 9, 2, 0),
    (2, 2, 8, 1, 1),
    (7, 7, 0, 0, 0),
    (3, 2, 6, 3, 0),
    (2, 5, 3, 2, 2),
    (6, 5, 2, 1, 0),
    (0, 2, 2, 3, 7),
]
# Wikipedia, "Cohen's kappa": (A, B) -> items.
COHEN_EXAMPLE = {("yes", "yes"): 20, ("no", "no"): 15, ("yes", "no"): 5, ("no", "yes"): 10}


def period() -> dict:
    now = timezone.now()
    return {"start": now - timedelta(days=1), "end": now + timedelta(minutes=1)}


def prefer(item, reviewer, choice: str) -> Review:
    """Store ``reviewer``'s preference on ``item``: ``candidate_<n>`` (from 1), tie, all_bad."""
    if choice.startswith("candidate_"):
        winner = item.candidates.get(position=int(choice.removeprefix("candidate_")) - 1)
        return Review.objects.create(
            item=item, reviewer=reviewer, verdict="approve", preference="winner", winner=winner
        )
    verdict = "reject" if choice == "all_bad" else "approve"
    return Review.objects.create(item=item, reviewer=reviewer, verdict=verdict, preference=choice)


def users(django_user_model, project, count: int, prefix: str):
    made = []
    for n in range(count):
        user = django_user_model.objects.create_user(f"{prefix}-{n:02d}", is_staff=True)
        factories.add_member(project, user, "reviewer")
        made.append(user)
    return made


@pytest.fixture
def cohen_example(django_user_model):
    """The 50 items of Cohen's example as comparisons, rated by rater A and rater B."""
    project = factories.make_project(name="Pairs", slug="pairs", reviews_required=2)
    a, b = users(django_user_model, project, 2, "rater")
    cells = [cell for cell, count in COHEN_EXAMPLE.items() for _ in range(count)]
    items = factories.ingest(project, *(comparison_payload(2) for _ in cells))
    meaning = {"yes": "candidate_1", "no": "tie"}
    for item, (first, second) in zip(items, cells, strict=True):
        prefer(item, a, meaning[first])
        prefer(item, b, meaning[second])
    return project, a, b, items


def test_the_published_examples_by_the_formulas_themselves():
    pairs = [cell for cell, count in COHEN_EXAMPLE.items() for _ in range(count)]
    assert cohen_kappa(pairs) == pytest.approx(0.4)
    subjects = [dict(enumerate(row)) for row in FLEISS_1971]
    assert fleiss_kappa(subjects) == pytest.approx(0.210, abs=0.0005)
    assert fleiss_kappa([{"tie": 3}, {"tie": 2}]) is None  # one category: undefined
    assert fleiss_kappa([{"tie": 1}, {"candidate_1": 1}]) is None  # no subject rated twice
    assert fleiss_kappa([{"tie": 2}, {"candidate_1": 2}]) == 1.0


def test_pair_kappa_on_stored_preferences_matches_cohens_example(cohen_example, django_user_model):
    project, a, b, items = cohen_example
    # A quarantined reviewer's preferences and a control's no longer count.
    (late,) = users(django_user_model, project, 1, "late")
    for item in items[:10]:
        prefer(item, late, "all_bad")
    quarantine_create(
        project=project,
        reviewer=late,
        start=timezone.now() - timedelta(hours=1),
        end=timezone.now() + timedelta(seconds=30),
        reason="Failed controls",
    )
    (control,) = factories.ingest(project, comparison_payload(2))
    control.is_control = True
    control.save(update_fields=["is_control"])
    prefer(control, a, "tie")
    prefer(control, b, "candidate_2")

    figures = project_agreement(project=project, **period())["preferences"]
    (pair,) = figures["pairs"]
    assert (pair["reviewer_a"], pair["reviewer_b"]) == ("rater-00", "rater-01")
    assert pair["items"] == 50
    assert pair["percent_agreement"] == 70.0
    assert pair["kappa"] == pytest.approx(0.4, abs=0.00005)
    summary = figures["summary"]
    assert (summary["items"], summary["ratings"], summary["reviewers"]) == (50, 100, 2)
    assert summary["categories"] == {"candidate_1": 55, "tie": 45}
    # Two raters: Fleiss' kappa is Scott's pi, chance from the pooled shares
    # (0.55^2 + 0.45^2 = 0.505): (0.7 - 0.505) / (1 - 0.505).
    assert summary["kappa"] == pytest.approx((0.7 - 0.505) / 0.495, abs=0.00005)
    # Krippendorff's nominal alpha: D_o = 30/100, D_e = 2 * 55 * 45 / (100 * 99) = 0.5.
    assert summary["alpha"] == pytest.approx(1 - 0.3 / 0.5, abs=0.00005)


def test_project_kappa_on_stored_preferences_matches_fleiss_1971(django_user_model):
    project = factories.make_project(name="Many", slug="many", reviews_required=2)
    raters = users(django_user_model, project, 14, "rater")
    items = factories.ingest(project, *(comparison_payload(3) for _ in FLEISS_1971))
    categories = ("candidate_1", "candidate_2", "candidate_3", "tie", "all_bad")
    for item, row in zip(items, FLEISS_1971, strict=True):
        choices = [c for c, count in zip(categories, row, strict=True) for _ in range(count)]
        for rater, choice in zip(raters, choices, strict=True):
            prefer(item, rater, choice)

    figures = project_agreement(project=project, **period())["preferences"]
    summary = figures["summary"]
    assert summary["kappa"] == pytest.approx(0.210, abs=0.0005)
    assert (summary["items"], summary["ratings"], summary["reviewers"]) == (10, 140, 14)
    assert summary["percent_agreement"] == 10.0  # only subject 1 is unanimous
    assert len(figures["pairs"]) == 14 * 13 // 2
    assert all(pair["items"] == 10 for pair in figures["pairs"])


def test_agreement_api_and_report_show_preference_kappa(
    cohen_example, client, senior, django_assert_max_num_queries
):
    project = cohen_example[0]
    _key, raw = api_key_create(project=project, name="report")
    # The same budget as with no comparisons (test_api_agreement): constant in volume.
    with django_assert_max_num_queries(9):
        response = client.get(
            f"/api/v1/projects/{project.slug}/agreement/", HTTP_AUTHORIZATION=f"Api-Key {raw}"
        )
    assert response.status_code == 200, response.content
    preferences = response.json()["preferences"]
    assert preferences["pairs"][0]["kappa"] == pytest.approx(0.4)
    assert preferences["summary"]["items"] == 50
    # Verdict agreement stays of single outputs: no pair of them here.
    assert response.json()["summary"]["items"] == 0

    factories.add_member(project, senior, "senior")
    client.force_login(senior)
    page = client.get(reverse("admin:adjudication_agreement"), {"project": project.pk})
    assert page.status_code == 200
    content = page.content.decode()
    assert 'id="adj-preferences"' in content
    assert '<td class="num adj-pref-pair-kappa">0.400</td>' in content
    assert 'id="adj-pref-alpha">0.400<' in content
