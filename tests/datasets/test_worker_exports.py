"""The export job on a real Redis queue, run by a real ``rqworker`` process."""

import io
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from rq import Queue
from rq.job import Job, JobStatus
from rq.results import Result

from datasets.models import DatasetExport, ExportStatus
from datasets.services import ExportSweep, export_create, export_retry, exports_sweep
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


def _age(export, minutes: int) -> None:
    """Pretend ``export`` was created and started ``minutes`` ago."""
    past = timezone.now() - timedelta(minutes=minutes)
    DatasetExport.objects.filter(pk=export.pk).update(created_at=past, started_at=past)


def test_sweep_requeues_an_export_whose_job_redis_lost_and_a_worker_builds_it(
    project, exports_queue, export_dir
):
    reviewed(project, verdict="correct", corrected_output="Corrected.")
    export = export_create(format="sft_chat", projects=[project], filters={})
    exports_queue.connection.flushdb()  # Redis lost the job
    assert exports_sweep().requeued == 0  # too recent: it may still be on its way
    _age(export, 30)

    assert exports_sweep() == ExportSweep(requeued=1, failed=0)
    lost_job = export.job_id
    export.refresh_from_db()
    assert export.job_id != lost_job  # each attempt has its own job id
    assert exports_queue.fetch_job(export.job_id).get_status() == "queued"
    assert exports_sweep() == ExportSweep()  # its job is back: nothing to do
    run_worker(exports_queue, export_dir)
    export.refresh_from_db()
    assert export.status == ExportStatus.SUCCEEDED, export.error


def test_sweep_fails_running_exports_whose_job_died_or_vanished(project, exports_queue, export_dir):
    """Running exports are judged by their heartbeat; RQ's record names the cause."""
    reviewed(project, verdict="correct", corrected_output="Corrected.")
    died, vanished, slow = (
        export_create(format="sft_chat", projects=[project], filters={}) for _ in range(3)
    )
    DatasetExport.objects.filter(pk__in=[died.pk, vanished.pk, slow.pk]).update(
        status=ExportStatus.RUNNING
    )
    for export in (died, vanished, slow):
        _age(export, 30)
    # What RQ records when a work horse is killed mid-build.
    job = exports_queue.fetch_job(died.job_id)
    job.set_status(JobStatus.FAILED)
    Result.create_failure(job, ttl=600, exc_string="Work-horse terminated unexpectedly")
    exports_queue.connection.delete(Job.key_for(vanished.job_id))
    exports_queue.fetch_job(slow.job_id).set_status(JobStatus.STARTED)
    DatasetExport.objects.filter(pk=slow.pk).update(heartbeat_at=timezone.now())  # still beating

    assert exports_sweep() == ExportSweep(requeued=0, failed=2)
    died.refresh_from_db(), vanished.refresh_from_db(), slow.refresh_from_db()
    assert died.status == ExportStatus.FAILED
    assert died.error == "The build job died: Work-horse terminated unexpectedly"
    assert vanished.status == ExportStatus.FAILED and "was lost" in vanished.error
    assert slow.status == ExportStatus.RUNNING
    retried = export_retry(export=died)
    assert retried.status == ExportStatus.QUEUED


def test_sweep_command_reports_what_it_did(project, exports_queue):
    export = export_create(format="sft_chat", projects=[project], filters={})
    exports_queue.connection.flushdb()
    _age(export, 30)
    out = io.StringIO()
    call_command("exports_sweep", "--older-than-minutes", "10", stdout=out)
    assert out.getvalue().startswith("Re-enqueued 1 export(s) whose job was missing; marked 0")
    with pytest.raises(CommandError):
        call_command("exports_sweep", "--older-than-minutes", "-1")
