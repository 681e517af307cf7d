"""The export job on a real Redis queue, run by a real ``rqworker`` process."""

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from django.db import connection
from rq import Queue

from datasets.models import ExportStatus
from datasets.services import export_create
from hitlplatform import queues
from tests.datasets.factories import reviewed

ROOT = Path(__file__).resolve().parents[2]
REDIS_DB = 4  # this suite's own Redis database

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def exports_queue(monkeypatch, settings):
    parts = urlsplit(settings.REDIS_URL or "redis://127.0.0.1:6379/0")
    conn = redis.Redis(host=parts.hostname, port=parts.port or 6379, db=REDIS_DB)
    conn.ping()  # a missing Redis is a failure, not a skip
    conn.flushdb()
    queue = Queue("exports", connection=conn)
    settings.RQ_INLINE = False
    monkeypatch.setattr(queues, "get_queue", lambda name: queue)
    yield queue
    conn.flushdb()


def run_worker(queue: Queue, export_dir: Path, **env) -> None:
    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    kwargs = queue.connection.connection_pool.connection_kwargs
    result = subprocess.run(
        [sys.executable, "manage.py", "rqworker", "exports", "--burst"],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": f"redis://{kwargs['host']}:{kwargs['port']}/{REDIS_DB}",
            "HITL_EXPORT_DIR": str(export_dir),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr


def test_worker_builds_export_and_job_meta_carries_progress(project, exports_queue, export_dir):
    for n in range(5):
        reviewed(project, verdict="correct", corrected_output=f"Corrected {n}.")
    export = export_create(format="sft_chat", projects=[project], filters={})
    job = exports_queue.fetch_job(export.job_id)
    assert job is not None and job.get_status() == "queued"

    run_worker(exports_queue, export_dir, HITL_EXPORT_CHUNK_SIZE="2")

    export.refresh_from_db()
    assert export.status == ExportStatus.SUCCEEDED, export.error
    assert (export.rows_total, export.rows_done, export.row_count) == (5, 5, 5)
    job.refresh()
    assert job.get_status() == "finished"
    assert job.meta == {"progress": 1.0, "rows_done": 5, "rows_total": 5}
    path = export_dir / export.files["train"]["name"]
    assert len(path.read_bytes().splitlines()) == 5
    assert sorted(p.name for p in export_dir.iterdir()) == sorted(
        [export.files["train"]["name"], export.manifest_name]
    )


def test_failing_worker_job_marks_export_failed_and_leaves_no_file(
    project, exports_queue, tmp_path
):
    reviewed(project)
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the export directory should be")
    export = export_create(format="sft_chat", projects=[project], filters={})

    run_worker(exports_queue, blocked / "exports")

    export.refresh_from_db()
    assert export.status == ExportStatus.FAILED
    assert export.error.startswith(("FileExistsError", "NotADirectoryError"))
    assert exports_queue.fetch_job(export.job_id).get_status() == "failed"
    assert [p.name for p in tmp_path.iterdir()] == ["not-a-directory"]
    assert not export.entries.exists()
