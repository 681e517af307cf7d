"""A 50,000-row JSONL import ingested by a real ``rqworker`` process on Redis."""

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from django.db import connection
from django.test import Client
from django.urls import reverse
from rq import Queue

from hitlplatform import queues
from reviews.models import ImportStatus, ReviewItem
from tests import factories
from tests.imports.helpers import item_row, start

ROOT = Path(__file__).resolve().parents[2]
REDIS_DB = 9  # this suite's own Redis database
ROWS = 50_000

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def default_queue(monkeypatch, settings):
    parts = urlsplit(settings.REDIS_URL or "redis://127.0.0.1:6379/0")
    conn = redis.Redis(host=parts.hostname, port=parts.port or 6379, db=REDIS_DB)
    conn.ping()  # a missing Redis is a failure, not a skip
    conn.flushdb()
    queue = Queue("default", connection=conn)
    settings.RQ_INLINE = False
    monkeypatch.setattr(queues, "get_queue", lambda name: queue)
    yield queue
    conn.flushdb()


def run_worker(queue: Queue, import_dir: Path) -> None:
    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    kwargs = queue.connection.connection_pool.connection_kwargs
    result = subprocess.run(
        [sys.executable, "manage.py", "rqworker", "default", "--burst"],
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": database_url,
            "REDIS_URL": f"redis://{kwargs['host']}:{kwargs['port']}/{REDIS_DB}",
            "HITL_IMPORT_DIR": str(import_dir),
        },
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]


def test_worker_imports_50000_rows_and_a_reupload_adds_nothing(
    project, django_user_model, import_dir, default_queue
):
    admin = django_user_model.objects.create_user("ada", password="ada-pass-1", is_staff=True)
    factories.add_member(project, admin, "admin")
    client = Client()
    client.force_login(admin)
    lines = [json.dumps(item_row(n)) for n in range(ROWS)]
    lines[777] = json.dumps(item_row(777, model_version=""))
    content = ("\n".join(lines) + "\n").encode()

    item_import = start(client, project, "big.jsonl", content)
    assert default_queue.count == 1
    item_import.refresh_from_db()
    assert item_import.status == ImportStatus.QUEUED
    run_worker(default_queue, import_dir)

    item_import.refresh_from_db()
    assert item_import.status == ImportStatus.DONE, item_import.error
    assert item_import.total_rows == ROWS
    assert (item_import.created_count, item_import.error_count) == (ROWS - 1, 1)
    assert ReviewItem.objects.filter(project=project).count() == ROWS - 1
    progress = client.get(reverse("admin:reviews_itemimport_progress", args=[item_import.pk]))
    assert progress.json()["processed_rows"] == ROWS
    assert list(item_import.errors.values_list("row", "field")) == [(778, "model_version")]

    again = start(client, project, "big.jsonl", content)
    run_worker(default_queue, import_dir)
    again.refresh_from_db()
    assert (again.created_count, again.existing_count) == (0, ROWS - 1)
    assert ReviewItem.objects.filter(project=project).count() == ROWS - 1
