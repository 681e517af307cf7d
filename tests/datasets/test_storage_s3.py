"""Exports on S3-compatible object storage: a real SeaweedFS server on loopback.

Publish, read (stream and presigned redirect), delete, sweep and retention,
through the same services, API and admin as local storage.
"""

import hashlib
import json
import urllib.request
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.views.debug import SafeExceptionReporterFilter
from rest_framework.test import APIClient

from datasets import storage
from datasets.formats import sft_chat
from datasets.models import DatasetExport, ExportStatus
from datasets.services import export_build, export_create, export_delete, exports_sweep
from hitlplatform import settings as platform_settings
from reviews.services.projects import api_key_create
from tests.datasets.factories import reviewed, reviewed_many
from tests.factories import make_project

URL = "/api/v1/exports/"


def build(project, **kwargs) -> DatasetExport:
    export = export_create(
        format="sft_chat", projects=[project], filters={}, enqueue=False, **kwargs
    )
    return export_build(export_id=export.pk)


def streamed(response) -> bytes:
    assert response.streaming
    return b"".join(response.streaming_content)


def test_build_publishes_whole_objects_whose_bytes_match_the_manifest(
    project, s3_exports, export_dir, settings, client_api
):
    settings.HITL_EXPORT_PART_MB = 5  # S3's smallest part: the train file takes several
    reviewed_many(project, 30000)
    export = build(project, validation_ratio=0.1, seed=7)

    assert export.status == ExportStatus.SUCCEEDED, export.error
    names = sorted([meta["name"] for meta in export.files.values()] + [export.manifest_name])
    assert s3_exports.keys() == names
    assert s3_exports.uploads() == []
    assert list(export_dir.iterdir()) == []  # the scratch files are gone too
    train = export.files["train"]
    assert train["bytes"] > 5 * 1024 * 1024  # two parts at least
    for split, meta in export.files.items():
        body = s3_exports.read(meta["name"])
        assert hashlib.sha256(body).hexdigest() == meta["sha256"], split
        assert len(body) == meta["bytes"]

        download = client_api.get(f"{URL}{export.pk}/download/?split={split}")
        assert download.status_code == 200
        assert download["Content-Length"] == str(meta["bytes"])
        assert download["ETag"] == f'"{meta["sha256"]}"'
        assert hashlib.sha256(streamed(download)).hexdigest() == meta["sha256"]
    manifest = json.loads(streamed(client_api.get(f"{URL}{export.pk}/manifest/")))
    assert manifest["files"] == export.files
    assert len(manifest["items"]) == export.item_count == 30000


def test_multipart_upload_reuses_its_buffers_as_parts_grow(s3_exports, settings, monkeypatch):
    settings.HITL_EXPORT_PART_MB = 5
    monkeypatch.setattr(storage.MultipartPendingFile, "PARTS_PER_STEP", 1)  # 5, 10, 15 MB...
    pending = storage.pending_file("export-1-x-train.bin", build_id="", content_type="text/plain")
    written = bytearray()
    for n in range(240):  # 27 MB in uneven writes: parts of 5, 10 and the last 12 MB
        block = hashlib.sha256(str(n).encode()).digest() * (3000 + 97 * n % 1000)
        pending.write(block)
        written += block
    assert s3_exports.keys() == []  # nothing visible before publish
    pending.publish()
    assert [part["PartNumber"] for part in pending.parts] == [1, 2, 3]
    body = s3_exports.read("export-1-x-train.bin")
    assert body == written
    assert pending.sha256 == hashlib.sha256(written).hexdigest()
    assert pending.size == len(written)


def test_an_empty_file_is_published_as_an_empty_object(s3_exports):
    pending = storage.pending_file(
        "export-2-x-validation.bin", build_id="", content_type="text/plain"
    )
    pending.publish()
    assert s3_exports.read("export-2-x-validation.bin") == b""


def test_the_same_data_gives_the_same_bytes_on_s3_and_on_local_disk(
    project, s3_exports, settings, tmp_path
):
    for n in range(30):
        reviewed(project, verdict="correct", corrected_output=f"Fixed {n}.")
    on_s3 = build(project)
    settings.STORAGES = {
        **settings.STORAGES,
        "exports": {"BACKEND": "datasets.storage.ExportFileSystemStorage"},
    }
    on_disk = build(project)
    assert on_s3.files["train"]["sha256"] == on_disk.files["train"]["sha256"]
    assert storage.export_path(on_disk.files["train"]["name"]).exists()


def test_presigned_downloads_redirect_to_a_short_lived_url_after_the_access_check(
    project, s3_exports, settings, client_api
):
    settings.HITL_S3_PRESIGNED_DOWNLOADS = True
    settings.HITL_S3_PRESIGNED_EXPIRY = 120
    reviewed(project, verdict="correct", corrected_output="Fixed.")
    export = build(project)
    meta = export.files["train"]

    response = client_api.get(f"{URL}{export.pk}/download/?split=train")
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(f"{s3_exports.server.endpoint_url}/{s3_exports.bucket}/")
    assert "X-Amz-Expires=120" in location
    with urllib.request.urlopen(location) as answer:
        assert 'filename="' in answer.headers["Content-Disposition"]
        assert hashlib.sha256(answer.read()).hexdigest() == meta["sha256"]

    # Another project's key learns nothing: no redirect, no URL.
    other = make_project(name="Other", slug="other")
    _key, raw = api_key_create(project=other, name="other client")
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    refused = stranger.get(f"{URL}{export.pk}/download/?split=train")
    assert refused.status_code == 404
    assert "Location" not in refused


def test_admin_download_streams_from_s3(project, s3_exports, admin_user, client):
    reviewed(project, verdict="correct", corrected_output="Fixed.")
    export = build(project)
    client.force_login(admin_user)
    response = client.get(f"/admin/datasets/datasetexport/{export.pk}/download/train/")
    assert response.status_code == 200
    assert hashlib.sha256(streamed(response)).hexdigest() == export.files["train"]["sha256"]


def test_a_file_missing_from_the_bucket_is_a_404(project, s3_exports, client_api):
    reviewed(project)
    export = build(project)
    s3_exports.server.client().delete_object(
        Bucket=s3_exports.bucket, Key=f"{s3_exports.prefix}/{export.files['train']['name']}"
    )
    response = client_api.get(f"{URL}{export.pk}/download/?split=train")
    assert response.status_code == 404


def test_a_failing_build_leaves_no_object_and_no_upload(
    project, s3_exports, export_dir, settings, monkeypatch
):
    settings.HITL_EXPORT_CHUNK_SIZE = 2
    for _ in range(5):
        reviewed(project)
    real_line = sft_chat.sft_line
    calls = []

    def flaky_line(**kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise OSError("No space left on device")
        return real_line(**kwargs)

    monkeypatch.setattr(sft_chat, "sft_line", flaky_line)
    monkeypatch.setattr(sft_chat, "plain_head", lambda messages: None)  # every line by sft_line
    export = export_create(format="sft_chat", projects=[project], filters={}, enqueue=False)
    with pytest.raises(OSError, match="No space left"):
        export_build(export_id=export.pk)
    export.refresh_from_db()
    assert export.status == ExportStatus.FAILED
    assert s3_exports.keys() == []
    assert s3_exports.uploads() == []
    assert list(export_dir.iterdir()) == []


def test_delete_removes_the_objects(project, s3_exports, django_capture_on_commit_callbacks):
    reviewed(project)
    export = build(project)
    assert len(s3_exports.keys()) == 2
    with django_capture_on_commit_callbacks(execute=True):
        export_delete(export=export)
    assert s3_exports.keys() == []


def test_sweep_aborts_the_uploads_of_dead_builds_and_keeps_the_live_ones(
    project, s3_exports, settings
):
    reviewed(project)
    dead, live = (
        export_create(format="sft_chat", projects=[project], filters={}, enqueue=False)
        for _ in range(2)
    )
    DatasetExport.objects.filter(pk=dead.pk).update(status=ExportStatus.FAILED)
    DatasetExport.objects.filter(pk=live.pk).update(
        status=ExportStatus.RUNNING, build_id="b" * 32, heartbeat_at=timezone.now()
    )
    # What a killed build leaves: an upload begun, a part sent, never completed.
    for export in (dead, live):
        pending = storage.pending_file(
            export.file_name("train"), build_id="b" * 32, content_type="application/jsonl"
        )
        pending.write(b'{"messages": []}\n')
        pending.close()
    assert len(s3_exports.uploads()) == 2
    assert s3_exports.keys() == []  # nothing under a final name

    result = exports_sweep()

    assert result.temp_removed == 1
    assert s3_exports.uploads() == [f"{s3_exports.prefix}/{live.file_name('train')}"]


def test_retention_deletes_old_exports_and_their_objects(
    project, s3_exports, settings, django_capture_on_commit_callbacks
):
    reviewed(project)
    old, recent = build(project), build(project)
    DatasetExport.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(days=31))
    assert len(s3_exports.keys()) == 4

    settings.HITL_EXPORT_RETENTION_DAYS = 0  # off: nothing goes
    assert exports_sweep().expired == 0
    settings.HITL_EXPORT_RETENTION_DAYS = 30
    with django_capture_on_commit_callbacks(execute=True):
        assert exports_sweep().expired == 1

    assert not DatasetExport.objects.filter(pk=old.pk).exists()
    assert s3_exports.keys() == sorted([recent.files["train"]["name"], recent.manifest_name])


def _storage_config(kind: str, *, setting: str = "HITL_EXPORT_STORAGE", prefix: str = "exports"):
    return platform_settings._file_storage(
        kind_setting=setting, kind=kind, local={"BACKEND": "local"}, prefix=prefix
    )


def test_s3_settings_come_from_the_environment_and_hide_the_secret(monkeypatch):
    monkeypatch.setenv("HITL_S3_BUCKET", "datasets")
    monkeypatch.setenv("HITL_S3_SECRET_ACCESS_KEY", "never-shown-9f3a")
    config = _storage_config("s3", prefix="/hitl/exports/")
    assert config["BACKEND"] == "storages.backends.s3.S3Storage"
    assert config["OPTIONS"]["location"] == "hitl/exports"
    assert config["OPTIONS"]["bucket_name"] == "datasets"
    safe = SafeExceptionReporterFilter().cleanse_setting("STORAGES", {"exports": config})
    assert "never-shown-9f3a" not in repr(safe)
    # Imports share the connection under their own prefix.
    imports = _storage_config("S3", setting="HITL_IMPORT_STORAGE", prefix="imports")
    assert imports["OPTIONS"]["location"] == "imports"
    assert imports["OPTIONS"]["bucket_name"] == "datasets"
    assert _storage_config("local") == {"BACKEND": "local"}

    monkeypatch.delenv("HITL_S3_BUCKET")
    with pytest.raises(ImproperlyConfigured, match=r"HITL_S3_BUCKET .*HITL_IMPORT_STORAGE"):
        _storage_config("s3", setting="HITL_IMPORT_STORAGE")
    with pytest.raises(ImproperlyConfigured, match="HITL_EXPORT_STORAGE must be local or s3"):
        _storage_config("ftp")
