"""Imports on object storage: the upload lands in the bucket, the job reads it from there."""

import uuid

import pytest

from reviews.models import ImportStatus, ReviewItem
from tests.imports.helpers import item_row, jsonl, start
from tests.s3 import BUCKET, s3_storage

pytestmark = pytest.mark.usefixtures("inline_jobs")


@pytest.fixture
def s3_imports(seaweedfs, settings, monkeypatch, tmp_path):
    prefix = f"imports-{uuid.uuid4().hex[:12]}"
    for name, value in seaweedfs.env(bucket=BUCKET, prefix=prefix).items():
        monkeypatch.setenv(name, value)
    # Nothing may fall back to a local directory.
    settings.HITL_IMPORT_DIR = tmp_path / "must-stay-empty"
    settings.STORAGES = {**settings.STORAGES, "imports": s3_storage(prefix)}

    def keys() -> list[str]:
        listing = seaweedfs.client().list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/")
        return [obj["Key"] for obj in listing.get("Contents", [])]

    return keys


def test_an_import_is_stored_in_the_bucket_and_ingested_from_it(
    s3_imports, admin_client, project, django_capture_on_commit_callbacks, settings
):
    content = jsonl([item_row(n) for n in range(1, 6)])
    item_import = start(
        admin_client, project, "s3.jsonl", content, capture=django_capture_on_commit_callbacks
    )
    item_import.refresh_from_db()
    assert item_import.status == ImportStatus.DONE
    assert (item_import.created_count, item_import.error_count) == (5, 0)
    assert ReviewItem.objects.filter(project=project).count() == 5
    assert any(key.endswith(item_import.file_name) for key in s3_imports())
    assert not settings.HITL_IMPORT_DIR.exists()
