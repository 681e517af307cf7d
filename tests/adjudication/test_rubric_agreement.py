"""Agreement per rubric criterion: Krippendorff's alpha from stored scores, in the report and API.

The reference is the worked example of Krippendorff, K. (2011). "Computing
Krippendorff's Alpha-Reliability", Annenberg School for Communication,
University of Pennsylvania (https://repository.upenn.edu/asc_papers/43), section
C: four observers, twelve units, missing values. Its published results are
alpha nominal 0.743, ordinal 0.815, interval 0.849 and ratio 0.797.
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from adjudication.metrics import project_agreement
from adjudication.rubric_metrics import criterion_figures
from reviews.models import Review, RubricCriterion
from reviews.services.projects import api_key_create
from tests import factories

pytestmark = pytest.mark.django_db

# Krippendorff (2011), section C: observers A-D (rows) by units 1-12 (columns), "." missing.
KRIPPENDORFF_2011 = {
    "A": "1 2 3 3 2 1 4 1 2 . . .",
    "B": "1 2 3 3 2 2 4 1 2 5 . 3",
    "C": ". 3 3 3 2 3 4 2 2 5 1 .",
    "D": "1 2 3 3 2 4 4 1 2 5 1 .",
}
PUBLISHED_ALPHA = {"nominal": 0.743, "ordinal": 0.815, "interval": 0.849, "ratio": 0.797}


@pytest.fixture
def worked_example(django_user_model):
    """The example stored as reviews: one scale criterion per level, each scored alike."""
    project = factories.make_project(name="Rubric", slug="rubric", reviews_required=2)
    for order, level in enumerate(PUBLISHED_ALPHA):
        criterion = RubricCriterion(
            project=project,
            key=level,
            label=f"Quality ({level})",
            kind="scale",
            scale_min=1,
            scale_max=5,
            level=level,
            order=order,
        )
        criterion.full_clean()
        criterion.save()
    items = factories.ingest(project, *(factories.item_payload() for _ in range(12)))
    for name, row in KRIPPENDORFF_2011.items():
        user = django_user_model.objects.create_user(f"observer-{name}", is_staff=True)
        factories.add_member(project, user, "reviewer")
        for item, value in zip(items, row.split(), strict=True):
            if value == ".":
                continue
            score = int(value)
            Review.objects.create(
                item=item,
                reviewer=user,
                verdict="approve",
                rubric_scores=dict.fromkeys(PUBLISHED_ALPHA, score),
            )
    return project


def _period():
    now = timezone.now()
    return {"start": now - timedelta(days=1), "end": now + timedelta(minutes=1)}


def test_alpha_per_level_matches_krippendorff_2011_from_stored_scores(worked_example):
    figures = project_agreement(project=worked_example, **_period())
    rows = {row["key"]: row for row in figures["rubric"]}
    assert list(rows) == list(PUBLISHED_ALPHA)  # the rubric's order
    for level, expected in PUBLISHED_ALPHA.items():
        assert rows[level]["level"] == level
        assert rows[level]["alpha"] == pytest.approx(expected, abs=0.0005), level
        # Units 1-11 have two or more values (unit 12 only one); 41 values in all.
        assert rows[level]["items"] == 11
        assert rows[level]["scores"] == 41
        # The observers of a unit all agree on units 1, 3, 4, 5, 7, 9, 10 and 11.
        assert rows[level]["percent_agreement"] == pytest.approx(100 * 8 / 11, abs=0.01)


def test_agreement_api_and_report_show_alpha_per_criterion(worked_example, client, senior):
    _key, raw = api_key_create(project=worked_example, name="report")
    response = client.get(
        f"/api/v1/projects/{worked_example.slug}/agreement/", HTTP_AUTHORIZATION=f"Api-Key {raw}"
    )
    assert response.status_code == 200, response.content
    api = {row["key"]: row for row in response.json()["rubric"]}
    assert api["interval"]["alpha"] == pytest.approx(0.849, abs=0.0005)
    assert api["nominal"]["percent_agreement"] == pytest.approx(72.73, abs=0.01)

    factories.add_member(worked_example, senior, "senior")
    client.force_login(senior)
    page = client.get(reverse("admin:adjudication_agreement"), {"project": worked_example.pk})
    assert page.status_code == 200
    content = page.content.decode()
    assert 'id="adj-rubric-ordinal"' in content
    assert "0.815" in content and "0.797" in content


def test_alpha_is_null_without_pairable_scores_or_with_one_value():
    criterion = RubricCriterion(key="tone", label="Tone", kind="boolean")
    single = criterion_figures(criterion=criterion, units={1: {10: 1.0}, 2: {11: 0.0}})
    assert single["alpha"] is None and single["percent_agreement"] is None
    same = criterion_figures(criterion=criterion, units={1: {10: 1.0, 11: 1.0}})
    assert same["alpha"] is None and same["percent_agreement"] == 100.0
    assert same["level"] == "nominal"  # defaulted from the kind


def test_categorical_scores_compare_by_option():
    criterion = RubricCriterion(
        key="register", label="Register", kind="categorical", options=["formal", "casual"]
    )
    # Two coders, four units, one disagreement: nominal alpha by hand.
    units = {1: {1: 0.0, 2: 0.0}, 2: {1: 1.0, 2: 1.0}, 3: {1: 0.0, 2: 1.0}, 4: {1: 1.0, 2: 1.0}}
    figures = criterion_figures(criterion=criterion, units=units)
    # Values: 0 x3, 1 x5 (n = 8); D_o = 2/8; D_e = 2*3*5/(8*7) = 30/56; alpha = 1 - D_o/D_e.
    assert figures["alpha"] == pytest.approx(1 - (2 / 8) / (30 / 56), abs=1e-4)
    assert figures["percent_agreement"] == 75.0
