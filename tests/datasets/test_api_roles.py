"""The exports API from the attacker's side: who may list, download and build exports.

Listing, reading, downloading and the manifest need the download capability in
every project of an export (seniors, admins, the project's API key,
superusers); an export outside that is a 404 whether it exists or not.
Building needs the build capability in every requested project (admins, the
API key, superusers). No refusal changes anything.
"""

import json

import pytest
from rest_framework.test import APIClient

from datasets.models import DatasetExport, DatasetExportItem
from datasets.services import export_create
from reviews.services.projects import api_key_create
from tests.datasets.factories import reviewed
from tests.factories import add_member, make_project

URL = "/api/v1/exports/"


def build(*projects) -> DatasetExport:
    return export_create(format="review_log", projects=list(projects), filters={}, via="test")


def db_state() -> tuple:
    exports = DatasetExport.objects.order_by("pk").values_list("pk", "status", "created_via")
    return list(exports), DatasetExportItem.objects.count()


def ask_for(client, *slugs):
    body = {"format": "review_log", "projects": list(slugs)} if slugs else {"format": "sft_chat"}
    return client.post(URL, data=json.dumps(body), content_type="application/json")


def refused_to_read(client, export: DatasetExport) -> list[int]:
    return [
        client.get(f"{URL}{export.pk}/").status_code,
        client.get(f"{URL}{export.pk}/download/").status_code,
        client.get(f"{URL}{export.pk}/manifest/").status_code,
    ]


def listed(client) -> list[int]:
    response = client.get(URL)
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


@pytest.fixture
def oncology(db):
    return make_project(name="Oncology answers", slug="oncology")


@pytest.fixture
def exports(project, oncology, django_capture_on_commit_callbacks):
    """Built exports of A (clinical), of B (oncology) and of both."""
    reviewed(project)
    reviewed(oncology)
    with django_capture_on_commit_callbacks(execute=True):
        built = {"a": build(project), "b": build(oncology), "ab": build(project, oncology)}
    for export in built.values():
        export.refresh_from_db()
        assert export.is_built, export.error
    return built


@pytest.fixture
def project_admin(django_user_model, project):
    user = django_user_model.objects.create_user("ada", password="ada-pass-1", is_staff=True)
    add_member(project, user, "admin")
    return user


def session(user) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def test_reviewer_cannot_list_read_download_or_build_exports(reviewer, exports, client):
    client.force_login(reviewer)
    before = db_state()
    assert client.get(URL).status_code == 403
    for export in exports.values():
        assert refused_to_read(client, export) == [404, 404, 404]
    assert ask_for(client, "clinical").status_code == 403
    # Refused at the door, before the body is read: no hint whether it was valid.
    assert client.post(URL, data="{", content_type="application/json").status_code == 403
    assert db_state() == before


def test_reviewer_404_does_not_reveal_whether_an_export_exists(reviewer, exports, client):
    client.force_login(reviewer)
    missing = max(export.pk for export in exports.values()) + 1000
    existing = client.get(f"{URL}{exports['a'].pk}/")
    absent = client.get(f"{URL}{missing}/")
    assert existing.status_code == absent.status_code == 404
    assert existing.json() == absent.json()


def test_senior_lists_and_downloads_but_cannot_build(senior, exports, client):
    client.force_login(senior)
    a = exports["a"]
    assert listed(client) == [a.pk]
    assert client.get(f"{URL}{a.pk}/").status_code == 200
    download = client.get(f"{URL}{a.pk}/download/")
    assert download.status_code == 200
    assert b"".join(download.streaming_content)
    assert client.get(f"{URL}{a.pk}/manifest/").status_code == 200
    before = db_state()
    refused = ask_for(client, "clinical")
    assert refused.status_code == 403
    assert refused.json()["code"] == "not_allowed"
    assert db_state() == before


def test_admin_of_a_sees_only_exports_wholly_of_a(project_admin, exports, client):
    client.force_login(project_admin)
    before = db_state()
    assert listed(client) == [exports["a"].pk]
    assert refused_to_read(client, exports["b"]) == [404, 404, 404]
    # An export spanning A and B needs the capability in B as well.
    assert refused_to_read(client, exports["ab"]) == [404, 404, 404]
    unknown = ask_for(client, "clinical", "oncology")
    assert unknown.status_code == 400
    assert unknown.json()["projects"] == ["Unknown project 'oncology'."]
    assert db_state() == before


def test_admin_of_a_cannot_build_from_b_where_they_only_review(
    project_admin, oncology, exports, client
):
    add_member(oncology, project_admin, "reviewer")
    client.force_login(project_admin)
    before = db_state()
    refused = ask_for(client, "clinical", "oncology")
    assert refused.status_code == 403
    assert "'oncology'" in refused.json()["detail"]
    assert "'clinical'" not in refused.json()["detail"]
    assert refused_to_read(client, exports["ab"]) == [404, 404, 404]
    assert db_state() == before
    built = ask_for(client, "clinical")
    assert built.status_code == 202, built.content


def test_senior_in_both_projects_reads_the_export_spanning_them(senior, oncology, exports, client):
    add_member(oncology, senior, "senior")
    client.force_login(senior)
    assert sorted(listed(client)) == sorted(export.pk for export in exports.values())


def test_session_write_without_csrf_token_is_403(project_admin, project):
    before = db_state()
    assert ask_for(session(project_admin), "clinical").status_code == 403
    assert db_state() == before


def test_api_key_of_a_cannot_see_or_build_from_b(client_api, exports, oncology):
    before = db_state()
    assert listed(client_api) == [exports["a"].pk]
    assert refused_to_read(client_api, exports["b"]) == [404, 404, 404]
    assert refused_to_read(client_api, exports["ab"]) == [404, 404, 404]
    unknown = ask_for(client_api, "oncology")
    assert unknown.status_code == 400
    assert unknown.json()["projects"] == ["Unknown project 'oncology'."]
    assert db_state() == before


def test_api_key_of_b_cannot_read_exports_of_a(exports, oncology):
    _key, raw = api_key_create(project=oncology, name="oncology client")
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw)
    assert listed(client) == [exports["b"].pk]
    assert refused_to_read(client, exports["a"]) == [404, 404, 404]


def test_superuser_reads_every_export(admin_user, exports, client):
    client.force_login(admin_user)
    assert sorted(listed(client)) == sorted(export.pk for export in exports.values())
    assert client.get(f"{URL}{exports['ab'].pk}/download/").status_code == 200
