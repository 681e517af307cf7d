"""Comparison items through the items API: ingest, validation naming the field, read back."""

import pytest

from reviews.api.serializers import ItemInputSerializer
from reviews.api.validation import validate_item
from reviews.models import Candidate, ItemStatus, ReviewItem
from reviews.services.comparisons import PreferenceInput
from reviews.workspace.preferences import preference_submit
from reviews.workspace.services import assignment_claim_next
from tests import factories
from tests.factories import comparison_payload

ITEMS = "/api/v1/items/"


def post(client, body):
    return client.post(ITEMS, body, format="json")


def test_comparison_is_stored_with_its_candidates_and_read_back(client_api, project):
    payload = comparison_payload(3)
    response = post(client_api, payload)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["kind"] == "comparison"
    assert body["status"] == ItemStatus.PENDING_REVIEW
    item = ReviewItem.objects.get(pk=body["id"])
    assert item.output == "" and item.model_name == ""
    assert item.confidence == 0.5  # the lowest candidate confidence orders the queue
    detail = client_api.get(f"{ITEMS}{body['id']}/").json()
    assert [c["model_name"] for c in detail["candidates"]] == ["model-w", "model-x", "model-y"]
    assert [c["output"] for c in detail["candidates"]] == [
        c["output"] for c in payload["candidates"]
    ]
    assert detail["candidates"][2]["confidence"] == pytest.approx(0.7)
    assert detail["preference"] is None
    assert Candidate.history.filter(item_id=item.pk).count() == 3


def test_identical_resubmit_is_200_and_changed_candidates_are_409(client_api, project):
    payload = comparison_payload(2)
    assert post(client_api, payload).status_code == 201
    assert post(client_api, payload).status_code == 200
    changed = {**payload, "candidates": [*payload["candidates"]]}
    changed["candidates"][1] = {**changed["candidates"][1], "output": "A different answer."}
    response = post(client_api, changed)
    assert response.status_code == 409
    assert response.json()["conflicting_external_ids"] == [payload["external_id"]]
    reordered = {**payload, "candidates": payload["candidates"][::-1]}
    assert post(client_api, reordered).status_code == 409
    assert Candidate.objects.count() == 2


def _without(candidate: dict, key: str) -> dict:
    return {k: v for k, v in candidate.items() if k != key}


@pytest.mark.parametrize(
    ("mutate", "errors"),
    [
        (
            lambda p: {**p, "candidates": p["candidates"][:1]},
            {"candidates": ["Ensure this field has at least 2 elements."]},
        ),
        (
            lambda p: {**p, "candidates": p["candidates"] * 2 + p["candidates"][:1]},
            {"candidates": ["Ensure this field has no more than 4 elements."]},
        ),
        (
            lambda p: {**p, "candidates": "two answers"},
            {"candidates": ['Expected a list of items but got type "str".']},
        ),
        (
            lambda p: {
                **p,
                "candidates": [*p["candidates"], {**p["candidates"][0], "model_name": "other"}],
            },
            {"candidates": {"2": {"output": ["Identical to candidate 0's output."]}}},
        ),
        (
            lambda p: {
                **p,
                "candidates": [
                    *p["candidates"],
                    {**p["candidates"][1], "output": "  " + p["candidates"][1]["output"] + "\n"},
                ],
            },
            {"candidates": {"2": {"output": ["Identical to candidate 1's output."]}}},
        ),
        (
            lambda p: {
                **p,
                "candidates": [p["candidates"][0], _without(p["candidates"][1], "model_name")],
            },
            {"candidates": {"1": {"model_name": ["This field is required."]}}},
        ),
        (
            lambda p: {
                **p,
                "candidates": [p["candidates"][0], {**p["candidates"][1], "confidence": 3}],
            },
            {"candidates": {"1": {"confidence": ["Must be between 0 and 1."]}}},
        ),
        (
            lambda p: {**p, "output": "one output too"},
            {"output": ["Not allowed with candidates: give it on each candidate."]},
        ),
        (
            lambda p: {k: v for k, v in p.items() if k not in ("prompt", "messages")},
            {"prompt": ["This field is required."]},
        ),
    ],
    ids=[
        "one",
        "five",
        "not-a-list",
        "identical",
        "identical-but-whitespace",
        "no-model-name",
        "bad-confidence",
        "item-output",
        "no-prompt",
    ],
)
def test_bad_comparisons_are_400_naming_the_field(client_api, project, mutate, errors):
    body = mutate(comparison_payload(2))
    response = post(client_api, body)
    assert response.status_code == 400
    assert response.json() == errors
    assert not ReviewItem.objects.exists()
    # The documented serializer (OpenAPI) refuses the same fields.
    serializer = ItemInputSerializer(data=body)
    assert not serializer.is_valid()
    assert set(serializer.errors) == set(errors)


def test_a_batch_names_the_item_and_the_candidate(client_api, project):
    bad = comparison_payload(2)
    bad["candidates"][1]["output"] = bad["candidates"][0]["output"]
    response = post(client_api, {"items": [comparison_payload(2), bad]})
    assert response.status_code == 400
    assert response.json() == {
        "items": {"1": {"candidates": {"1": {"output": ["Identical to candidate 0's output."]}}}}
    }


def test_transcript_form_ends_with_the_user_turn_the_candidates_answer(client_api, project):
    payload = comparison_payload(2)
    del payload["prompt"]
    payload["messages"] = [
        {"role": "system", "content": "You are a careful pharmacist."},
        {"role": "user", "content": "How far apart should doses be?"},
    ]
    response = post(client_api, payload)
    assert response.status_code == 201, response.json()
    item = ReviewItem.objects.get(pk=response.json()["id"])
    assert item.prompt == "How far apart should doses be?"
    assert item.messages == [{"role": "system", "content": "You are a careful pharmacist."}]

    ending_with_answer = {
        **payload,
        "external_id": "ends-with-answer",
        "messages": [*payload["messages"], {"role": "assistant", "content": "Four hours."}],
    }
    response = post(client_api, ending_with_answer)
    assert response.status_code == 400
    assert list(response.json()) == ["messages"]


def test_fast_validator_matches_the_serializer_on_a_valid_comparison():
    payload = comparison_payload(4)
    clean, errors = validate_item(payload)
    serializer = ItemInputSerializer(data=payload)
    assert errors == {} and serializer.is_valid(), serializer.errors
    assert [c["model_name"] for c in clean["candidates"]] == [
        c["model_name"] for c in serializer.validated_data["candidates"]
    ]


def test_blocking_check_marks_the_candidate_and_keeps_it(project):
    factories.make_rule(
        project, name="no-hours", kind="must_not_match", pattern="7 hours", severity="blocking"
    )
    (item,) = factories.ingest(project, comparison_payload(4))
    assert item.status == ItemStatus.PENDING_REVIEW
    failed = {c.position: c.check_failed for c in item.candidates.all()}
    assert failed == {0: False, 1: False, 2: False, 3: True}
    third = item.candidates.get(position=3)
    assert third.checks[0]["name"] == "no-hours" and third.checks[0]["passed"] is False
    assert "check_warning:no-hours" in item.review_reasons
    assert not item.check_results.exists()  # per candidate, never as the item's own


def test_fewer_than_two_passing_candidates_auto_rejects(project):
    factories.make_rule(
        project, name="no-space", kind="must_not_match", pattern="space doses", severity="blocking"
    )
    (item,) = factories.ingest(project, comparison_payload(3))
    assert item.status == ItemStatus.AUTO_REJECTED
    assert item.review_reasons == ["check_failed:no-space"]
    assert item.candidates.filter(check_failed=True).count() == 3


def test_comparisons_go_to_review_in_monitor_mode(monitor_project):
    (item,) = factories.ingest(monitor_project, comparison_payload(2))
    assert item.status == ItemStatus.PENDING_REVIEW and item.in_queue
    assert item.review_reasons[0] == "comparison"


def test_openapi_documents_candidates_and_their_read_back(client_api):
    schema = client_api.get("/api/schema/", {"format": "json"}).json()["components"]["schemas"]
    candidates = schema["ItemInputRequest"]["properties"]["candidates"]
    assert (candidates["minItems"], candidates["maxItems"]) == (2, 4)
    assert candidates["items"]["$ref"].endswith("/CandidateInputRequest")
    assert set(schema["CandidateInputRequest"]["required"]) == {
        "output",
        "model_name",
        "model_version",
    }
    detail = schema["ItemDetail"]["properties"]
    assert detail["candidates"]["items"]["$ref"].endswith("/CandidateOutput")
    assert schema["ItemKindEnum"]["enum"] == ["single", "comparison"]


def test_reviewers_see_candidate_models_only_once_the_item_is_final(
    client, client_api, project, reviewer
):
    (item,) = factories.ingest(project, comparison_payload(2))
    client.force_login(reviewer)
    url = f"{ITEMS}{item.pk}/"
    blind = client.get(url).json()["candidates"]
    assert [(c["model_name"], c["model_version"]) for c in blind] == [(None, None), (None, None)]
    assert "model-w" not in client.get(url).content.decode()
    # The application that submitted them sees them.
    assert [c["model_name"] for c in client_api.get(url).json()["candidates"]] == [
        "model-w",
        "model-x",
    ]
    claim = assignment_claim_next(reviewer=reviewer, project=project)
    preference_submit(assignment_id=claim.pk, reviewer=reviewer, data=PreferenceInput("tie"))
    assert [c["model_name"] for c in client.get(url).json()["candidates"]] == [
        "model-w",
        "model-x",
    ]
