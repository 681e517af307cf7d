"""The agreement API from the attacker's side.

Agreement figures name colleagues and their overturn rates: seniors and admins
of the project, its API key and superusers may read them; anyone else gets the
404 of a project that does not exist.
"""

import pytest
from rest_framework.test import APIClient

from reviews.services.projects import api_key_create
from tests.factories import add_member, make_project


def url(slug: str = "clinical") -> str:
    return f"/api/v1/projects/{slug}/agreement/"


@pytest.fixture
def oncology(db):
    return make_project(name="Oncology answers", slug="oncology")


def test_reviewer_of_the_project_cannot_read_its_agreement(reviewer, project, client):
    client.force_login(reviewer)
    refused = client.get(url())
    assert refused.status_code == 404
    assert client.get(url("no-such-project")).json() == refused.json()


def test_senior_and_project_admin_read_it(senior, project, client, django_user_model):
    client.force_login(senior)
    assert client.get(url()).status_code == 200
    lead = django_user_model.objects.create_user("ada", password="ada-pass-1", is_staff=True)
    add_member(project, lead, "admin")
    client.force_login(lead)
    assert client.get(url()).status_code == 200


def test_senior_of_a_cannot_read_agreement_of_b(senior, oncology, client):
    add_member(oncology, senior, "reviewer")
    client.force_login(senior)
    assert client.get(url("oncology")).status_code == 404


def test_api_key_of_a_cannot_read_agreement_of_b(client_api, oncology):
    assert client_api.get(url()).status_code == 200
    assert client_api.get(url("oncology")).status_code == 404
    _key, raw = api_key_create(project=oncology, name="oncology client")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert other.get(url()).status_code == 404


def test_anonymous_is_asked_for_credentials(project):
    response = APIClient().get(url())
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Api-Key"
