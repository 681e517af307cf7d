"""The items API from the attacker's side.

Every role, and the project's API key, may read the project's items; only the
key, the project's admins and superusers may submit to it. A project the caller
cannot see is "unknown" (400); one it sees but may not submit to is a 403.
"""

import json

import pytest

from reviews.models import ReviewItem
from tests.factories import add_member, ingest, item_payload, make_project

URL = "/api/v1/items/"


def submit(client, body):
    return client.post(URL, data=json.dumps(body), content_type="application/json")


def stored() -> list:
    return list(ReviewItem.objects.order_by("pk").values_list("pk", "status", "external_id"))


@pytest.fixture
def oncology(db):
    return make_project(name="Oncology answers", slug="oncology")


@pytest.fixture
def items(project, oncology):
    (a,) = ingest(project)
    (b,) = ingest(oncology)
    return {"a": a, "b": b}


@pytest.fixture
def project_admin(django_user_model, project):
    user = django_user_model.objects.create_user("ada", password="ada-pass-1", is_staff=True)
    add_member(project, user, "admin")
    return user


@pytest.mark.parametrize("role", ["reviewer", "senior"])
def test_reviewers_and_seniors_read_but_cannot_submit(role, request, items, client):
    client.force_login(request.getfixturevalue(role))
    assert [row["id"] for row in client.get(URL).json()["results"]] == [items["a"].pk]
    assert client.get(f"{URL}{items['a'].pk}/").status_code == 200
    assert client.get(f"{URL}{items['b'].pk}/").status_code == 404
    before = stored()
    refused = submit(client, item_payload(project="clinical"))
    assert refused.status_code == 403
    assert submit(client, {"items": [item_payload()]}).status_code == 403
    assert stored() == before


def test_project_admin_submits_to_their_project_only(project_admin, oncology, items, client):
    client.force_login(project_admin)
    before = stored()
    unknown = submit(client, item_payload(project="oncology"))
    assert unknown.status_code == 400
    assert unknown.json()["project"] == ["Unknown project 'oncology'."]
    add_member(oncology, project_admin, "reviewer")
    refused = submit(client, item_payload(project="oncology"))
    assert refused.status_code == 403
    assert refused.json()["code"] == "not_allowed"
    assert stored() == before
    created = submit(client, item_payload(project="clinical", external_id="by-admin"))
    assert created.status_code == 201, created.content
    assert created.json()["project"] == "clinical"


def test_session_user_must_name_the_project(project_admin, client):
    client.force_login(project_admin)
    response = submit(client, item_payload())
    assert response.status_code == 400
    assert response.json()["project"] == ["This field is required."]


def test_api_key_reads_and_submits_in_its_project_only(client_api, items):
    assert [row["id"] for row in client_api.get(URL).json()["results"]] == [items["a"].pk]
    assert client_api.get(f"{URL}{items['b'].pk}/").status_code == 404
    before = stored()
    unknown = submit(client_api, item_payload(project="oncology"))
    assert unknown.status_code == 400
    assert unknown.json()["project"] == ["Unknown project 'oncology'."]
    assert stored() == before


def test_account_in_no_project_sees_no_items(django_user_model, items, client):
    loner = django_user_model.objects.create_user("lou", password="lou-pass-1", is_staff=True)
    client.force_login(loner)
    assert client.get(URL).json()["results"] == []
    assert client.get(f"{URL}{items['a'].pk}/").status_code == 404
    assert submit(client, item_payload(project="clinical")).status_code == 403
