"""The items API's hand-written item answer equals DRF's field-by-field one.

``ItemOutputSerializer.to_representation`` builds the dict itself for speed;
the declared fields remain the documented schema. Both are compared here on
items in every shape: checks passed and failed, a judge verdict, automatic
decisions, an audit sample, a human decision, and the detail view's extras.
"""

import pytest
from django.utils import timezone
from rest_framework import serializers

from reviews.api.serializers import ItemDetailSerializer, ItemOutputSerializer
from reviews.models import JudgeVerdict, ReviewItem
from reviews.principals import ApiClient
from reviews.selectors import items_visible_to
from reviews.services.projects import api_key_create
from tests import factories


def drf_representation(serializer_class, item: ReviewItem) -> dict:
    serializer = serializer_class()
    return serializers.ModelSerializer.to_representation(serializer, item)


@pytest.fixture
def items(db):
    gate = factories.make_project(slug="parity-gate", mode="gate")
    factories.make_rule(gate, kind="min_length", limit=10)
    factories.make_rule(gate, name="no-cure", kind="banned_keywords", keywords=["miracle cure"])
    monitor = factories.make_project(
        slug="parity-monitor", mode="monitor", confidence_threshold=0.5, audit_sample_rate=0.0
    )
    audited = factories.make_project(slug="parity-audit", mode="monitor", audit_sample_rate=1.0)
    reviewed = factories.ingest(gate, factories.item_payload(confidence=None))[0]
    rejected = factories.ingest(gate, factories.item_payload(output="A miracle cure, daily."))[0]
    released = factories.ingest(monitor, factories.item_payload(confidence=1))[0]
    sampled = factories.ingest(audited, factories.item_payload())[0]
    compared = factories.ingest(gate, factories.comparison_payload(3))[0]
    JudgeVerdict.objects.create(
        item=reviewed, backend="openai", model="judge", rubric_version=2, label="flag", score=0.2
    )
    decided = factories.ingest(gate, factories.item_payload(metadata={"k": [1, "two"]}))[0]
    ReviewItem.objects.filter(pk=decided.pk).update(
        status="corrected",
        final_output="Corrected <b>text</b>",
        final_verdict="correct",
        final_reason_code="factual_error",
        final_severity="major",
        decided_at=timezone.now(),
        in_queue=False,
    )
    keys = [ApiClient(key=api_key_create(project=p, name="parity")[0]) for p in (gate, monitor)]
    keys.append(ApiClient(key=api_key_create(project=audited, name="parity")[0]))
    found = []
    for key in keys:
        found += list(items_visible_to(key).order_by("id"))
    assert {i.pk for i in found} == {
        i.pk for i in (reviewed, rejected, released, sampled, decided, compared)
    }
    return found


@pytest.mark.parametrize("serializer_class", [ItemOutputSerializer, ItemDetailSerializer])
def test_the_fast_item_answer_equals_drfs(items, serializer_class):
    statuses = set()
    for item in items:
        fast = serializer_class(item).data
        assert fast == drf_representation(serializer_class, item)
        assert list(fast) == list(drf_representation(serializer_class, item))
        statuses.add(fast["status"])
    assert statuses == {"pending_review", "auto_rejected", "auto_approved", "corrected"}
