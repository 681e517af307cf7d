import json

import pytest
from rest_framework.test import APIClient

from datasets.models import DatasetExport
from reviews.services.projects import api_key_create
from tests.datasets import schemas
from tests.datasets.factories import reviewed
from tests.factories import add_member, make_project

URL = "/api/v1/exports/"


def post(client, body):
    return client.post(URL, data=json.dumps(body), content_type="application/json")


def streamed(response) -> bytes:
    assert response.streaming
    return b"".join(response.streaming_content)


@pytest.fixture
def corrected(project):
    return [
        reviewed(project, verdict="correct", corrected_output=f"Fixed answer {n}.")
        for n in range(3)
    ]


def test_post_builds_export_and_detail_shows_status_progress_and_manifest(
    client_api, project, corrected, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(
            client_api, {"format": "dpo_pairs", "name": "prefs", "validation_ratio": 0.2}
        )
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued"
    assert response["Location"].endswith(f"{URL}{body['id']}/")

    detail = client_api.get(f"{URL}{body['id']}/").json()
    assert detail["status"] == "succeeded"
    assert detail["progress"] == 1.0
    assert detail["projects"] == ["clinical"]
    assert detail["created_via"].startswith("API key ")
    assert detail["manifest"]["format"] == "dpo_pairs"
    assert detail["manifest"]["filters"]["statuses"] == ["corrected"]
    assert sum(detail["counts"]["rows"].values()) == 3
    assert set(detail["downloads"]) == {"train", "validation"}

    export = DatasetExport.objects.get(pk=body["id"])
    rows = []
    for split in ("train", "validation"):
        download = client_api.get(f"{URL}{export.pk}/download/?split={split}")
        assert download.status_code == 200
        assert download["Content-Type"] == "application/jsonl"
        assert download["ETag"] == f'"{export.files[split]["sha256"]}"'
        assert "attachment" in download["Content-Disposition"]
        rows += [json.loads(line) for line in streamed(download).splitlines()]
    assert len(rows) == 3
    for row in rows:
        schemas.validate(row, schemas.TRL_PREFERENCE_LINE)

    manifest = json.loads(streamed(client_api.get(f"{URL}{export.pk}/manifest/")))
    assert sorted(item for item, _history, _split in manifest["items"]) == sorted(
        item.pk for item in corrected
    )


def test_download_before_build_is_409(client_api, project):
    response = post(client_api, {"format": "sft_chat"})
    export_id = response.json()["id"]
    download = client_api.get(f"{URL}{export_id}/download/")
    assert download.status_code == 409
    assert download.json()["status"] == "queued"


def test_missing_split_is_404_and_bad_split_is_400(
    client_api, project, corrected, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        export_id = post(client_api, {"format": "sft_chat"}).json()["id"]
    assert client_api.get(f"{URL}{export_id}/download/?split=validation").status_code == 404
    bad = client_api.get(f"{URL}{export_id}/download/?split=test")
    assert bad.status_code == 400 and "split" in bad.json()


def test_bad_input_is_400_per_field_and_stores_nothing(client_api):
    response = post(
        client_api,
        {
            "format": "parquet",
            "validation_ratio": 0.9,
            "statuses": ["pending_review"],
            "decided_after": "yesterday",
            "model_names": "acme",
        },
    )
    assert response.status_code == 400
    errors = response.json()
    assert set(errors) == {
        "format",
        "validation_ratio",
        "statuses",
        "decided_after",
        "model_names",
    }
    format_only = post(client_api, {"format": "dpo_pairs", "statuses": ["approved"]})
    assert format_only.status_code == 400
    assert "statuses" in format_only.json()
    assert not DatasetExport.objects.exists()


def test_api_key_exports_only_its_own_project(client_api, project):
    other = make_project(slug="other")
    response = post(client_api, {"format": "sft_chat", "projects": ["other"]})
    assert response.status_code == 400
    assert response.json()["projects"] == ["Unknown project 'other'."]

    _key, raw = api_key_create(project=other, name="other client")
    other_client = APIClient()
    other_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    theirs = post(other_client, {"format": "sft_chat"}).json()["id"]
    ours = post(client_api, {"format": "sft_chat"}).json()["id"]
    assert client_api.get(f"{URL}{theirs}/").status_code == 404
    assert client_api.get(f"{URL}{theirs}/download/").status_code == 404
    listed = client_api.get(URL).json()["results"]
    assert [row["id"] for row in listed] == [ours]


def test_staff_session_exports_member_projects_only(client, project, django_user_model):
    # Building exports is a project admin's (roles: tests/datasets/test_api_roles.py).
    other = make_project(slug="elsewhere")
    lead = django_user_model.objects.create_user("lena", password="lena-pass-1", is_staff=True)
    add_member(project, lead, "admin")
    client.force_login(lead)
    ok = post(client, {"format": "review_log", "projects": ["clinical"]})
    assert ok.status_code == 202, ok.content
    assert ok.json()["created_by"] == "lena"
    refused = post(client, {"format": "review_log", "projects": ["clinical", "elsewhere"]})
    assert refused.status_code == 400
    assert refused.json()["projects"] == ["Unknown project 'elsewhere'."]
    add_member(other, lead, "admin")
    assert post(client, {"format": "review_log", "projects": ["elsewhere"]}).status_code == 202
    assert post(client, {"format": "review_log"}).status_code == 400


def test_anonymous_is_refused(project):
    assert APIClient().get(URL).status_code in (401, 403)
    assert post(APIClient(), {"format": "sft_chat"}).status_code in (401, 403)
