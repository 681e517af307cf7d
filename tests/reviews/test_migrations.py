"""Data migrations, run forwards and back on PostgreSQL."""

import hashlib
import json

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from reviews.models import ReviewItem
from reviews.services import ingest
from tests.factories import item_payload

BEFORE = ("reviews", "0010_item_history_without_submitted_content")
AFTER = ("reviews", "0011_payload_hash_orjson")


def _migrate(*targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    targets = targets or executor.loader.graph.leaf_nodes()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def migrator(transactional_db):
    yield _migrate
    _migrate()  # leave the schema as every other test expects it


def test_stored_hashes_follow_the_new_canonical_form_so_resubmits_stay_idempotent(migrator):
    old_apps = migrator(BEFORE)
    Project = old_apps.get_model("reviews", "Project")
    OldItem = old_apps.get_model("reviews", "ReviewItem")
    project = Project.objects.create(name="Legacy", slug="legacy")
    raw = item_payload(confidence=1e-07, metadata={"p": 2e-05})
    payload = {name: raw[name] for name in ingest.INGEST_FIELDS}
    legacy = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    OldItem.objects.create(
        project=project,
        payload_hash=hashlib.sha256(legacy.encode()).hexdigest(),
        status="pending_review",
        **payload,
    )
    assert ingest.payload_hash(payload) != hashlib.sha256(legacy.encode()).hexdigest()

    new_apps = migrator(AFTER)
    migrated = new_apps.get_model("reviews", "ReviewItem").objects.get(
        external_id=payload["external_id"]
    )
    assert migrated.payload_hash == ingest.payload_hash(payload)
    # Later migrations add columns the current model (and ingest) read.
    migrator()
    stored = ReviewItem.objects.get(external_id=payload["external_id"])
    again = ingest.item_ingest(project=stored.project, payloads=[dict(payload)])
    assert again.created == [False] and again.items[0].pk == stored.pk
