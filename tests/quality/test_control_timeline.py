"""A control's timeline and item page, as a reviewer sees them, read like a real item's:
only their own claim and review, the status a claim gives, nothing naming it."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from reviews.models import Project
from reviews.quality.controls import KnownAnswer, control_create
from reviews.workspace.services import (
    ReviewInput,
    assignment_claim_next,
    assignment_release,
    review_submit,
)
from tests import factories

pytestmark = pytest.mark.django_db

CONTENT = {
    "prompt": "What is the maximum daily dose of paracetamol for adults?",
    "messages": [],
    "output": "For healthy adults the usual maximum is 4 g per day.",
    "model_name": "acme-med",
    "model_version": "2026-11-01",
    "confidence": 0.9,
    "context": [],
    "metadata": {},
}


def _normalised(html: str, item) -> str:
    """Without what legitimately differs: ids, the content hash, tokens, times."""
    html = html.replace(item.external_id, "EXT").replace(f"/reviewitem/{item.pk}/", "/ITEM/")
    html = html.replace(item.payload_hash, "HASH")
    html = re.sub(r'name="csrfmiddlewaretoken" value="\w+"', "CSRF", html)
    html = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "WHEN", html)
    # The admin's own format ("Dec. 3, 2026, 7:59 a.m."): the two items are minutes apart.
    return re.sub(
        r"[A-Z][a-z]{2,8}\.? \d{1,2}, \d{4}, (\d{1,2}(:\d\d)? [ap]\.m\.|noon|midnight)",
        "WHEN",
        html,
    )


def _timeline(client, item) -> tuple[list[tuple], str]:
    response = client.get(reverse("admin:reviews_item_timeline", args=[item.pk]))
    assert response.status_code == 200
    events = [(e.kind, e.title, e.actor, e.detail) for e in response.context["events"]]
    return events, _normalised(response.content.decode(), item)


def _item_page(client, item) -> str:
    response = client.get(reverse("admin:reviews_reviewitem_change", args=[item.pk]))
    assert response.status_code == 200
    return _normalised(response.content.decode(), item)


def test_a_reviewer_sees_a_controls_timeline_as_a_real_items(
    project, reviewer, second_reviewer, django_user_model
):
    lead = django_user_model.objects.create_user("lead", password="lead-pass-1", is_staff=True)
    factories.add_member(project, lead, "admin")
    (normal,) = factories.ingest(project, {**CONTENT, "external_id": "a-real-one"})
    control = control_create(
        project=project,
        content={**CONTENT, "tools": [], "is_transcript": False},
        answer=KnownAnswer(verdict="approve"),
        by=lead,
    ).item
    Project.objects.filter(pk=project.pk).update(control_rate=1.0)
    project.refresh_from_db()
    # Someone else reviewed the control before: it must not show.
    held = assignment_claim_next(reviewer=second_reviewer, project=project)
    assert held.item_id == control.pk
    review_submit(assignment_id=held.pk, reviewer=second_reviewer, data=ReviewInput("approve"))
    first = assignment_claim_next(reviewer=reviewer, project=project)
    assert first.item_id == control.pk
    client = Client()
    client.force_login(reviewer)
    control_events, control_html = _timeline(client, control)
    control_page = _item_page(client, control)
    assignment_release(assignment_id=first.pk, reviewer=reviewer, skip=True)
    Project.objects.filter(pk=project.pk).update(control_rate=0.0)
    project.refresh_from_db()
    second = assignment_claim_next(reviewer=reviewer, project=project)
    assert second.item_id == normal.pk
    normal_events, normal_html = _timeline(client, normal)
    normal_page = _item_page(client, normal)

    assert [e[:3] for e in control_events] == [
        ("item", "Ingested", ""),
        ("claim", "Claimed", "rita"),
        ("item", "Status: In review", "rita"),
    ]
    assert normal_events == control_events
    assert normal_html == control_html
    assert "sam" not in control_html
    assert "control" not in control_html.lower()
    assert 'id="ws-status">In review<' in control_html
    assert normal_page == control_page
    assert "control" not in control_page.lower()
    # The control's project admin sees everything that happened to it.
    client.force_login(lead)
    admin_events, admin_html = _timeline(client, control)
    assert {e[2] for e in admin_events if e[0] == "review"} == {"sam"}
    assert 'id="ws-status">Pending review<' in admin_html
    assert "Is control" in _item_page(client, control)
