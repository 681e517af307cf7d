"""The items endpoint's parser: one item or a batch, project slugs apart from the payloads."""

import pytest
from rest_framework.exceptions import ValidationError

from reviews.api.validation import ItemSubmissionSerializer
from tests.factories import item_payload


def parse(data) -> dict:
    submission = ItemSubmissionSerializer(data=data)
    submission.is_valid(raise_exception=True)
    return submission.validated_data


def test_a_batch_keeps_each_items_project_apart_from_its_payload():
    parsed = parse({"items": [item_payload(project="clinical"), item_payload()]})
    assert parsed["batch"] is True
    assert parsed["projects"] == ["clinical", None]
    assert all("project" not in payload for payload in parsed["payloads"])


def test_one_item_is_not_a_batch():
    raw = item_payload(project="clinical")
    parsed = parse(raw)
    assert parsed["batch"] is False and parsed["projects"] == ["clinical"]
    assert raw["project"] == "clinical"  # the request's data is left as it came


@pytest.mark.parametrize("data", [None, [], 3, "item"])
def test_anything_but_an_object_gets_one_answer(data):
    with pytest.raises(ValidationError) as caught:
        parse(data)
    assert caught.value.detail == {
        "non_field_errors": ['Send one item object or {"items": [...]}.']
    }


def test_batch_messages_are_keyed_by_position():
    with pytest.raises(ValidationError) as caught:
        parse({"items": [item_payload(), item_payload(prompt="")]})
    assert caught.value.detail == {"items": {"1": {"prompt": ["This field may not be blank."]}}}
