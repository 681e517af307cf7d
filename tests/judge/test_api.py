"""Judge verdicts in the items API."""

import pytest
from rest_framework.test import APIClient

from reviews.judge.services import judge_pending_items
from reviews.services.projects import api_key_create
from tests.factories import ingest, item_payload
from tests.judge.conftest import make_judge

URL = "/api/v1/items/"


@pytest.fixture
def client_for(db):
    def make(project):
        _key, raw = api_key_create(project=project, name="judge tests")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
        return client

    return make


def test_item_shows_its_verdict(judged_monitor_project, fake_judge, client_for):
    make_judge(judged_monitor_project, fake_judge)
    (item,) = ingest(judged_monitor_project, item_payload(output="[[judge:flag]]"))
    client = client_for(judged_monitor_project)
    before = client.get(f"{URL}{item.pk}/").json()
    assert before["status"] == "pending_judge" and before["judge"] is None
    assert before["message"] == "Pending automated checks; not released yet."
    judge_pending_items(item_ids=[item.pk])
    body = client.get(f"{URL}{item.pk}/").json()
    assert body["status"] == "pending_review"
    judge = body["judge"]
    assert judge["label"] == "flag" and judge["score"] == 0.31 and judge["flagged"] is True
    assert judge["rationale"] == "The dose is stated without the <b>liver</b> caveat."
    assert judge["error_categories"] == ["missing_caveat"]
    assert (judge["model"], judge["backend"], judge["rubric_version"]) == (
        "judge-large",
        "openai",
        1,
    )
    assert (judge["prompt_tokens"], judge["completion_tokens"]) == (321, 42)
    assert judge["error"] == "" and judge["threshold"] == 0.5


def test_list_with_verdicts_has_a_constant_query_count(
    judged_monitor_project, fake_judge, client_for, django_assert_max_num_queries
):
    make_judge(judged_monitor_project, fake_judge)
    items = ingest(judged_monitor_project, *[item_payload() for _ in range(25)])
    judge_pending_items(item_ids=[item.pk for item in items])
    client = client_for(judged_monitor_project)
    with django_assert_max_num_queries(5):
        results = client.get(URL).json()["results"]
    assert len(results) == 25
    assert all(row["judge"]["label"] == "pass" for row in results)


def test_schema_documents_the_judge_field(admin_user):
    client = APIClient()
    client.force_login(admin_user)
    schema = client.get("/api/schema/", {"format": "json"})
    assert schema.status_code == 200
    assert b"JudgeVerdict" in schema.content
