"""The items API gaps a client hits first: the external_id filter, automatic
decisions with their reasons, the audit outcome, and the batch limit header."""

import json

import pytest
from rest_framework.test import APIClient

from reviews.models import ReviewItem, WebhookDelivery
from reviews.services.projects import api_key_create
from reviews.workspace.services import ReviewInput, assignment_claim_next, review_submit
from tests.factories import add_member, ingest, item_payload, make_project, make_rule

URL = "/api/v1/items/"


def ids(response):
    assert response.status_code == 200, response.content
    return sorted(row["external_id"] for row in response.json()["results"])


def test_external_id_filter_is_exact_and_takes_several_ids(client_api, project):
    ingest(project, *[item_payload(external_id=f"x-{n}") for n in range(5)])
    ingest(project, item_payload(external_id="x-1-extra"), item_payload(external_id="a,b"))
    assert ids(client_api.get(URL, {"external_id": "x-1"})) == ["x-1"]
    assert ids(client_api.get(URL, {"external_id": "x-1,x-3,,nope"})) == ["x-1", "x-3"]
    assert ids(client_api.get(f"{URL}?external_id=x-2&external_id=x-4")) == ["x-2", "x-4"]
    # An id holding a comma is found as the whole value.
    assert ids(client_api.get(URL, {"external_id": "a,b"})) == ["a,b"]


@pytest.mark.parametrize("value", ["unknown", ",", " ", "x" * 300])
def test_external_id_no_item_has_is_an_empty_page_not_the_default_one(client_api, project, value):
    ingest(project, item_payload(external_id="x-1"))
    assert ids(client_api.get(URL, {"external_id": value})) == []


def test_empty_external_id_is_no_filter(client_api, project):
    ingest(project, item_payload(external_id="x-1"))
    assert ids(client_api.get(URL, {"external_id": ""})) == ["x-1"]


@pytest.mark.parametrize("value", ["bad\x00id", ",".join(f"id-{n}" for n in range(1001))])
def test_bad_external_id_is_a_400_naming_the_field(client_api, project, value):
    response = client_api.get(URL, {"external_id": value})
    assert response.status_code == 400
    assert list(response.json()) == ["external_id"]


def test_external_id_filter_sees_only_the_callers_projects(client_api, project):
    other = make_project(slug="elsewhere")
    ingest(other, item_payload(external_id="secret-1"))
    assert ids(client_api.get(URL, {"external_id": "secret-1"})) == []


def test_automatic_decisions_carry_their_verdict_and_reasons(client_for_monitor):
    client, project = client_for_monitor
    make_rule(project, name="short", kind="max_length", limit=30, severity="blocking")
    (rejected, released) = ingest(
        project, item_payload(output="x" * 40), item_payload(output="Fine.", confidence=0.99)
    )
    body = client.get(f"{URL}{rejected.pk}/").json()
    assert body["decision"]["verdict"] == "auto_reject"
    assert body["decision"]["automatic"] is True
    assert body["decision"]["reasons"] == ["check_failed:short"]
    assert body["audit"] is None
    body = client.get(f"{URL}{released.pk}/").json()
    assert body["decision"]["verdict"] == "auto_approve"
    assert body["decision"]["reasons"] == ["no_trigger"]
    assert body["decision"]["decided_at"]


def test_audit_outcome_is_on_the_item_and_in_an_item_audited_webhook(
    client_for_monitor, django_user_model
):
    client, project = client_for_monitor
    project.audit_sample_rate = 1.0
    project.webhook_url = "https://hooks.example.com/hitl"
    project.save()
    auditor = django_user_model.objects.create_user("audrey", password="x", is_staff=True)
    add_member(project, auditor, "reviewer")
    (item,) = ingest(project, item_payload(confidence=0.99))
    body = client.get(f"{URL}{item.pk}/").json()
    assert body["decision"]["reasons"] == ["no_trigger", "audit_sample"]
    assert body["audit"]["status"] == "pending"
    first = WebhookDelivery.objects.get(item=item)
    assert first.payload["item"]["audit"]["status"] == "pending"

    assignment = assignment_claim_next(reviewer=auditor, project=project)
    review_submit(
        assignment_id=assignment.pk,
        reviewer=auditor,
        data=ReviewInput(
            verdict="correct",
            corrected_output="A better answer.",
            reason_code="incomplete",
            severity="minor",
            note="Missing the caveat.",
        ),
    )
    audit = client.get(f"{URL}{item.pk}/").json()["audit"]
    assert audit["status"] == "done" and audit["audited_by"] == "user audrey"
    assert audit["agreed"] is False and audit["verdict"] == "correct"
    assert (audit["reason_code"], audit["severity"]) == ("incomplete", "minor")
    assert audit["corrected_output"] == "A better answer."
    assert audit["note"] == "Missing the caveat." and audit["audited_at"]
    audited = WebhookDelivery.objects.get(item=item, event="item.audited")
    assert audited.payload["event"] == "item.audited"
    sent = audited.payload["item"]["audit"]
    assert {k: v for k, v in sent.items() if k != "audited_at"} == {
        k: v for k, v in audit.items() if k != "audited_at"
    }
    assert ReviewItem.objects.get(pk=item.pk).status == "auto_approved"
    listed = client.get(URL).json()["results"]
    assert listed[0]["audit"]["status"] == "done"


def test_items_answers_carry_the_batch_limit(client_api, settings):
    assert client_api.get(URL)["X-HITL-Max-Batch"] == str(settings.HITL_MAX_BATCH)
    settings.HITL_MAX_BATCH = 2
    response = client_api.post(
        URL,
        data=json.dumps({"items": [item_payload() for _ in range(3)]}),
        content_type="application/json",
    )
    assert response.status_code == 400 and "items" in response.json()
    assert response["X-HITL-Max-Batch"] == "2"
    assert not ReviewItem.objects.exists()


@pytest.fixture
def client_for_monitor(monitor_project):
    _key, raw = api_key_create(project=monitor_project, name="monitor client")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return client, monitor_project


@pytest.mark.parametrize("query", ["page_size=x&page_size=4", "status=bogus&status=approved"])
def test_a_repeated_single_valued_parameter_is_a_400(client_api, query):
    response = client_api.get(f"{URL}?{query}")
    assert response.status_code == 400
    assert list(response.json()) == [query.split("=")[0]]
