"""Rubric criteria: scored per review, validated in review_submit, shown on the review page,
carried by the API decision and the webhook payload."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from reviews.models import Review, RubricCriterion, WebhookDelivery
from reviews.services.projects import api_key_create
from reviews.workspace.services import (
    ReviewInput,
    ReviewInvalid,
    assignment_claim_next,
    review_submit,
)
from tests.workspace.conftest import queue

pytestmark = pytest.mark.django_db


def criterion(project, key, **fields) -> RubricCriterion:
    fields.setdefault("label", key.title())
    made = RubricCriterion(project=project, key=key, **fields)
    made.full_clean()
    made.save()
    return made


@pytest.fixture
def rubric(project):
    return [
        criterion(
            project,
            "factuality",
            label="Factuality",
            description="Every claim is supported by the context.",
            scale_min=1,
            scale_max=5,
            anchors={"1": "Wrong", "3": "Partly", "5": "Right"},
            order=1,
        ),
        criterion(
            project,
            "register",
            label="Register",
            kind="categorical",
            options=["formal", "neutral", "casual"],
            order=2,
        ),
        criterion(project, "safe", label="Safe", kind="boolean", required=False, order=3),
    ]


def submit(project, reviewer, **rubric):
    assignment = assignment_claim_next(reviewer=reviewer, project=project)
    return review_submit(
        assignment_id=assignment.pk,
        reviewer=reviewer,
        data=ReviewInput(verdict="approve", rubric=rubric),
    )


def test_scores_are_stored_typed_with_the_review_and_its_history(project, reviewer, rubric):
    queue(project, 1)
    review = submit(project, reviewer, factuality="4", register="neutral", safe="yes")
    review.refresh_from_db()
    assert review.rubric_scores == {"factuality": 4, "register": "neutral", "safe": True}
    assert review.history.latest().rubric_scores == review.rubric_scores


@pytest.mark.parametrize(
    ("rubric_input", "field", "words"),
    [
        ({"register": "formal"}, "rubric_factuality", ["Factuality", "required"]),
        ({"factuality": "6", "register": "formal"}, "rubric_factuality", ["1 to 5", "6"]),
        ({"factuality": "four", "register": "formal"}, "rubric_factuality", ["whole number"]),
        ({"factuality": "3", "register": "shouty"}, "rubric_register", ["Register", "formal"]),
        ({"factuality": "3", "register": "formal", "safe": "maybe"}, "rubric_safe", ["yes or no"]),
        ({"factuality": "3", "register": "formal", "tone": "1"}, "rubric_scores", ["tone"]),
    ],
)
def test_refused_scores_name_the_criterion_and_record_nothing(
    project, reviewer, rubric, rubric_input, field, words
):
    queue(project, 1)
    with pytest.raises(ReviewInvalid) as refused:
        submit(project, reviewer, **rubric_input)
    message = " ".join(refused.value.detail[field])
    assert all(word in message for word in words), message
    assert not Review.objects.exists()


def test_optional_criteria_may_stay_unscored(project, reviewer, rubric):
    queue(project, 1)
    review = submit(project, reviewer, factuality="1", register="casual", safe="")
    assert review.rubric_scores == {"factuality": 1, "register": "casual"}


@pytest.mark.parametrize(
    ("fields", "error_field"),
    [
        ({"kind": "scale", "scale_min": 1, "scale_max": 12}, "scale_max"),
        ({"kind": "scale", "scale_min": 3, "scale_max": 3}, "scale_max"),
        ({"kind": "scale", "anchors": {"7": "Too high"}}, "anchors"),
        ({"kind": "categorical", "options": ["only one"]}, "options"),
        ({"kind": "categorical", "options": ["a", "a"]}, "options"),
        ({"kind": "boolean", "level": "interval"}, "level"),
    ],
)
def test_a_criterion_the_page_cannot_score_is_refused(project, fields, error_field):
    with pytest.raises(ValidationError) as refused:
        criterion(project, "bad", **fields)
    assert error_field in refused.value.message_dict


def test_levels_default_from_the_kind(project):
    scale = RubricCriterion(project=project, key="a", label="A", kind="scale")
    choice = RubricCriterion(project=project, key="b", label="B", kind="categorical")
    assert scale.measurement_level == "ordinal" and choice.measurement_level == "nominal"


def review_url(assignment) -> str:
    return reverse("admin:reviews_workspace_review", args=[assignment.pk])


def test_the_review_page_shows_each_criterion_with_its_help_and_keys(
    client, project, reviewer, rubric
):
    queue(project, 1)
    assignment = assignment_claim_next(reviewer=reviewer, project=project)
    client.force_login(reviewer)
    content = client.get(review_url(assignment)).content.decode()
    assert 'id="ws-criterion-factuality"' in content
    assert 'title="Every claim is supported by the context."' in content
    assert 'name="rubric_register" value="casual" data-digit="3"' in content
    assert 'name="rubric_safe" value="no" data-digit="0"' in content
    assert 'id="ws-help-rubric"' in content and "Right" in content


def test_a_page_submit_missing_a_required_score_is_a_400_naming_it(
    client, project, reviewer, rubric
):
    queue(project, 1)
    assignment = assignment_claim_next(reviewer=reviewer, project=project)
    client.force_login(reviewer)
    response = client.post(review_url(assignment), {"action": "approve", "rubric_register": "x"})
    assert response.status_code == 400
    content = response.content.decode()
    assert "Score &#x27;Factuality&#x27; (factuality): it is required." in content
    assert "Register" in content and "takes one of" in content
    assert not Review.objects.exists()
    ok = client.post(
        review_url(assignment),
        {"action": "approve", "rubric_factuality": "5", "rubric_register": "formal"},
    )
    assert ok.status_code == 302
    assert Review.objects.get().rubric_scores == {"factuality": 5, "register": "formal"}


def test_scores_travel_in_the_api_decision_and_the_webhook_payload(project, reviewer, rubric):
    project.webhook_url = "http://127.0.0.1:9/hook"  # the row is written; nothing is sent
    project.save(update_fields=["webhook_url"])
    (item,) = queue(project, 1)
    submit(project, reviewer, factuality="2", register="formal", safe="no")
    expected = [
        {
            "reviewer": f"user {reviewer.username}",
            "scores": {"factuality": 2, "register": "formal", "safe": False},
        }
    ]
    delivery = WebhookDelivery.objects.get(item=item)
    assert delivery.payload["item"]["decision"]["rubric_scores"] == expected

    _key, raw = api_key_create(project=project, name="client")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    one = api.get(f"/api/v1/items/{item.pk}/").json()
    assert one["decision"]["rubric_scores"] == expected
    listed = api.get("/api/v1/items/").json()["results"]
    assert listed[0]["decision"]["rubric_scores"] == expected


def project_form(client, url: str, **criterion) -> dict:
    """The project change form as a browser posts it, with one new rubric criterion."""
    page = client.get(url)
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data = {name: "" if value is None else value for name, value in data.items()}
    data.update({"risk_keywords": "[]", "reason_codes": '["factual_error"]'})
    data["webhook_secret_action"] = "keep"
    for inline in page.context["inline_admin_formsets"]:
        prefix = inline.formset.prefix
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    data["rubric_criteria-TOTAL_FORMS"] = "1"
    fields = {"anchors": "{}", "options": "[]", "order": "0", "level": "", **criterion}
    data.update({f"rubric_criteria-0-{name}": value for name, value in fields.items()})
    return data


def test_project_admins_edit_the_rubric_inline(client, admin_user, project):
    client.force_login(admin_user)
    url = reverse("admin:reviews_project_change", args=[project.pk])
    assert b"Rubric criteria" in client.get(url).content
    refused = client.post(
        url,
        project_form(
            client, url, key="tone", label="Tone", kind="scale", scale_min="1", scale_max="12"
        ),
    )
    assert refused.status_code == 200 and b"one key per score" in refused.content
    assert not RubricCriterion.objects.exists()
    saved = client.post(
        url,
        project_form(
            client,
            url,
            key="tone",
            label="Tone",
            kind="categorical",
            options='["formal", "casual"]',
            scale_min="1",
            scale_max="5",
            required="on",
        ),
    )
    assert saved.status_code == 302, saved.content[:2000]
    made = RubricCriterion.objects.get(project=project)
    assert (made.key, made.options, made.measurement_level) == (
        "tone",
        ["formal", "casual"],
        "nominal",
    )
    assert made.history.count() == 1


def test_the_timeline_shows_a_reviews_rubric_scores(client, project, reviewer, rubric):
    (item,) = queue(project, 1)
    submit(project, reviewer, factuality="4", register="neutral", safe="yes")
    client.force_login(reviewer)
    page = client.get(reverse("admin:reviews_item_timeline", args=[item.pk])).content.decode()
    assert "Rubric: factuality 4 · register neutral · safe yes" in page  # by key
