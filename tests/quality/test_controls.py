"""Control items copy what the client submitted, so their review page is the item's."""

import pytest

from reviews.api.validation import validate_item
from reviews.models import ItemStatus, ReviewItem
from reviews.models.items import SUBMITTED_CONTENT_FIELDS
from reviews.quality.controls import (
    ControlInvalid,
    KnownAnswer,
    control_create,
    controls_create_from_items,
)
from tests.factories import add_member, ingest, make_project, make_rule
from tests.reviews.test_transcripts import transcript

pytestmark = pytest.mark.django_db


def test_a_control_of_a_transcript_keeps_its_tools_and_turns(django_user_model):
    project = make_project()
    lead = django_user_model.objects.create_user("lead", password="pw-lead-1234")
    add_member(project, lead, role="admin")
    fields, errors = validate_item(
        transcript(tools=[{"name": "book", "input_schema": {"type": "object"}}])
    )
    assert not errors, errors
    (source,) = ingest(project, fields)
    ReviewItem.objects.filter(pk=source.pk).update(status=ItemStatus.APPROVED)
    source.refresh_from_db()
    assert source.is_transcript and source.tools

    (control,) = controls_create_from_items(items=[source], by=lead)

    copy = control.item
    for name in (*SUBMITTED_CONTENT_FIELDS, "model_name", "model_version", "confidence"):
        assert getattr(copy, name) == getattr(source, name), name
    assert copy.external_id != source.external_id


UPLOAD = {
    "prompt": "Is 12 g of paracetamol a day safe? Could it cause an overdose?",
    "messages": [],
    "output": "Yes, 12 g a day is fine. TODO",
    "model_name": "acme-med",
    "model_version": "2026-11-01",
    "confidence": 0.3,
    "context": [],
    "metadata": {},
    "tools": [],
    "is_transcript": False,
}


def _lead(django_user_model, project):
    lead = django_user_model.objects.create_user("lead", password="pw-lead-1234")
    add_member(project, lead, role="admin")
    return lead


def test_an_uploaded_control_gets_the_checks_and_reasons_ingest_would_give(django_user_model):
    project = make_project(mode="gate", confidence_threshold=0.5, risk_keywords=["overdose"])
    make_rule(project, name="no-todo", kind="must_not_match", pattern="TODO", severity="warning")
    lead = _lead(django_user_model, project)
    (twin,) = ingest(project, {**UPLOAD, "external_id": "twin"})

    control = control_create(
        project=project, content=UPLOAD, answer=KnownAnswer(verdict="reject"), by=lead
    ).item

    assert control.review_reasons == twin.review_reasons
    assert "low_confidence" in control.review_reasons
    assert "risk_keyword:overdose" in control.review_reasons
    assert control.priority == twin.priority
    assert [(c.name, c.passed, c.message) for c in control.check_results.order_by("name")] == [
        (c.name, c.passed, c.message) for c in twin.check_results.order_by("name")
    ]
    assert control.history.earliest().history_change_reason == (
        twin.history.earliest().history_change_reason
    )
    assert not control.in_queue and control.is_control


def test_an_output_a_blocking_check_rejects_cannot_be_a_control(django_user_model):
    project = make_project()
    make_rule(project, name="no-todo", kind="must_not_match", pattern="TODO", severity="blocking")
    lead = _lead(django_user_model, project)
    with pytest.raises(ControlInvalid) as refused:
        control_create(
            project=project, content=UPLOAD, answer=KnownAnswer(verdict="reject"), by=lead
        )
    assert "no-todo" in refused.value.detail["output"][0]
    assert not ReviewItem.objects.exists()
