"""Control items copy what the client submitted, so their review page is the item's."""

import pytest

from reviews.api.validation import validate_item
from reviews.models import ItemStatus, ReviewItem
from reviews.models.items import SUBMITTED_CONTENT_FIELDS
from reviews.quality.controls import controls_create_from_items
from tests.factories import add_member, ingest, make_project
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
