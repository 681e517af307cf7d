"""Imports from the attacker's side: a reviewer, or another project's admin, gets nothing."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from reviews.models import ImportStatus, ItemImport, ItemImportError, ReviewItem
from tests.imports.helpers import item_row, jsonl, map_fields, start

pytestmark = pytest.mark.usefixtures("import_dir", "inline_jobs")


@pytest.fixture
def finished_import(admin_client, project, django_capture_on_commit_callbacks):
    content = jsonl([item_row(1), item_row(2, prompt="")])
    item_import = start(
        admin_client, project, "a.jsonl", content, capture=django_capture_on_commit_callbacks
    )
    assert ItemImportError.objects.filter(item_import=item_import).count() == 1
    return item_import


@pytest.fixture
def draft_import(admin_client, project):
    response = admin_client.post(
        reverse("admin:reviews_itemimport_add"),
        {"project": project.pk, "file": SimpleUploadedFile("d.jsonl", jsonl([item_row(5)]))},
    )
    assert response.status_code == 302
    return ItemImport.objects.get(original_name="d.jsonl")


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture(params=["reviewer", "senior", "other_admin"])
def attacker(request):
    return request.getfixturevalue(request.param)


def test_attacker_cannot_upload_into_the_project(attacker, project):
    client = _client(attacker)
    response = client.post(
        reverse("admin:reviews_itemimport_add"),
        {"project": project.pk, "file": SimpleUploadedFile("x.jsonl", jsonl([item_row(9)]))},
    )
    # Another project's admin sees the form, with this project not among the choices.
    assert response.status_code in (400, 403)
    assert not ItemImport.objects.exists()


def test_attacker_cannot_see_map_or_download_another_projects_import(
    attacker, finished_import, draft_import
):
    client = _client(attacker)
    urls = [
        reverse("admin:reviews_itemimport_change", args=[finished_import.pk]),
        reverse("admin:reviews_itemimport_progress", args=[finished_import.pk]),
        reverse("admin:reviews_itemimport_errors", args=[finished_import.pk]),
        reverse("admin:reviews_itemimport_map", args=[draft_import.pk]),
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code in (302, 403, 404), url
        assert b"a.jsonl" not in response.content and b"d.jsonl" not in response.content
    listing = client.get(reverse("admin:reviews_itemimport_changelist"))
    assert b"a.jsonl" not in listing.content
    response = client.post(
        reverse("admin:reviews_itemimport_map", args=[draft_import.pk]),
        {**map_fields(), "confirm": "1"},
    )
    assert response.status_code in (302, 403, 404)
    draft_import.refresh_from_db()
    assert draft_import.status == ImportStatus.DRAFT
    assert not ReviewItem.objects.filter(external_id=item_row(5)["external_id"]).exists()


def test_the_projects_admin_may_open_everything_of_it(admin_client, finished_import):
    for name in ("change", "progress", "errors"):
        url = reverse(f"admin:reviews_itemimport_{name}", args=[finished_import.pk])
        assert admin_client.get(url).status_code == 200, name
