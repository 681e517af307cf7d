"""An item's raw history pages (simple-history) are its project admins': reviewers and
seniors get the same 403 for a control and a real item, and no History link on either
item page; they read the timeline instead. Admins read both trails in full."""

import pytest
from django.test import Client
from django.urls import reverse

from reviews.quality.controls import KnownAnswer, control_create
from reviews.services.ingest import item_ingest
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
    "tools": [],
    "is_transcript": False,
}


@pytest.fixture
def lead(django_user_model, project):
    user = django_user_model.objects.create_user("lead", password="lead-pass-1", is_staff=True)
    factories.add_member(project, user, "admin")
    return user


@pytest.fixture
def pair(project, lead):
    (normal,) = item_ingest(
        project=project, payloads=[{**CONTENT, "external_id": "real"}], via="API key 'prod'"
    ).items
    control = control_create(
        project=project,
        content=dict(CONTENT),
        answer=KnownAnswer(verdict="approve"),
        by=lead,
    ).item
    return normal, control


def _pages(client, item) -> tuple[int, int, str]:
    history = client.get(reverse("admin:reviews_reviewitem_history", args=[item.pk]))
    version = item.history.earliest("history_date").history_id
    row = client.get(reverse("admin:reviews_reviewitem_simple_history", args=[item.pk, version]))
    page = client.get(reverse("admin:reviews_reviewitem_change", args=[item.pk]))
    assert page.status_code == 200
    return history.status_code, row.status_code, page.content.decode()


@pytest.mark.parametrize("who", ["reviewer", "senior"])
def test_history_pages_of_controls_and_real_items_alike_are_refused(pair, who, request):
    normal, control = pair
    client = Client()
    client.force_login(request.getfixturevalue(who))
    history_url = reverse("admin:reviews_reviewitem_history", args=[normal.pk])
    for item in (normal, control):
        history, row, page = _pages(client, item)
        assert (history, row) == (403, 403)
        assert "/history/" not in page
    # The pages they may open still link the timeline, the same way for both.
    assert "Timeline" in _pages(client, control)[2]
    assert history_url not in _pages(client, normal)[2]


def test_a_project_admin_reads_the_history_of_both(pair, lead):
    normal, control = pair
    client = Client()
    client.force_login(lead)
    normal_history, normal_row, _ = _pages(client, normal)
    control_history, control_row, control_page = _pages(client, control)
    assert (normal_history, normal_row, control_history, control_row) == (200, 200, 200, 200)
    assert reverse("admin:reviews_reviewitem_history", args=[control.pk]) in control_page
    response = client.get(reverse("admin:reviews_reviewitem_history", args=[normal.pk]))
    assert "Ingested via API key &#x27;prod&#x27;" in response.content.decode()
