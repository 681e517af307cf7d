"""Comparisons through the client: submit, read back, a refusal naming the candidate field."""

import hitl
import pytest

from reviews.models import ReviewItem

pytestmark = pytest.mark.django_db(transaction=True)


def comparison(external_id: str, *outputs: str) -> hitl.Comparison:
    return hitl.Comparison(
        external_id=external_id,
        prompt="How far apart should paracetamol doses be?",
        candidates=[
            hitl.Candidate(output=text, model_name=f"m{i}", model_version="v1", confidence=0.5)
            for i, text in enumerate(outputs)
        ],
    )


def test_a_comparison_is_submitted_and_read_back(client):
    result = client.submit(comparison("pair-1", "Four hours.", "Four to six hours."))
    assert (result.created, result.kind, result.status) == (True, "comparison", "pending_review")
    item = ReviewItem.objects.get(pk=result.id)
    assert [c.model_name for c in item.candidates.order_by("position")] == ["m0", "m1"]
    again = client.submit(comparison("pair-1", "Four hours.", "Four to six hours."))
    assert again.created is False


def test_identical_candidates_are_refused_naming_the_field(client):
    with pytest.raises(hitl.ValidationError) as refused:
        client.submit(comparison("pair-2", "Four hours.", "Four hours."))
    assert refused.value.errors == {"candidates.1.output": ["Identical to candidate 0's output."]}
    assert not ReviewItem.objects.exists()
