"""Real processes around the export storage: killed workers, and two "machines".

Each worker is a real ``manage.py rqworker`` process on this suite's Redis
database; the web process is a real gunicorn. "Machines" are processes with
their own, separate ``HITL_EXPORT_DIR``, sharing only PostgreSQL, Redis and
the S3 server (SeaweedFS on loopback).
"""

import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from django.db import connection
from rq import Queue

from datasets.models import DatasetExport, ExportStatus
from datasets.services import export_create, export_retry, exports_sweep
from hitlplatform import queues
from tests.datasets.factories import reviewed_many

ROOT = Path(__file__).resolve().parents[2]
REDIS_DB = 8  # this module's own Redis database
HEARTBEAT_TIMEOUT = 5  # seconds, for the sweep in this process; workers beat every second

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


def machine_env(queue: Queue, export_dir: Path, **extra) -> dict[str, str]:
    """The environment of a process on another machine: same services, own directory."""
    db = connection.settings_dict
    kwargs = queue.connection.connection_pool.connection_kwargs
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HITL_S3_", "HITL_EXPORT_"))
    }
    return {
        **env,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": f"redis://{kwargs['host']}:{kwargs['port']}/{REDIS_DB}",
        "HITL_EXPORT_DIR": str(export_dir),
        "HITL_EXPORT_HEARTBEAT_SECONDS": "1",
        **extra,
    }


def worker(env: dict[str, str]) -> subprocess.Popen:
    """``rqworker exports --burst`` as a child process."""
    return subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", "exports", "--burst"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_machine(process: subprocess.Popen) -> None:
    """SIGKILL a worker and its work horse (RQ puts the horse in a process group of its own)."""
    family = [process.pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == process.pid:
                family.append(int(entry.name))
    for pid in family:
        os.kill(pid, signal.SIGKILL)
    process.wait(timeout=30)


def work(env: dict[str, str]) -> None:
    process = worker(env)
    _out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn(env: dict[str, str]):
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "hitlplatform.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "gunicorn exited"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not listen"
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def fetch(url: str, api_key: str) -> bytes:
    request = urllib.request.Request(url, headers={"Authorization": f"Api-Key {api_key}"})
    with urllib.request.urlopen(request, timeout=120) as answer:
        assert answer.status == 200
        return answer.read()


class FinalNameWatch:
    """Looks, as fast as it can, for any file of ``export`` under its final names."""

    def __init__(self, export: DatasetExport, listing) -> None:
        self.names = {export.file_name("train"), export.manifest_name}
        self.listing = listing
        self.seen: set[str] = set()
        self.looks = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "FinalNameWatch":
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.done.set()
        self.thread.join()

    def _run(self) -> None:
        while not self.done.is_set():
            self.seen |= self.names & set(self.listing())
            self.looks += 1
            time.sleep(0.02)


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_worker_killed_mid_build_is_failed_by_the_sweep_and_leaves_nothing(
    where, request, project, exports_queue, export_dir, settings
):
    extra: dict[str, str] = {}
    if where == "s3":
        s3 = request.getfixturevalue("s3_exports")
        extra = s3.env
        listing = s3.keys
    else:
        export_dir.mkdir(parents=True)

        def listing():
            return [path.name for path in export_dir.iterdir()]

    env = machine_env(exports_queue, export_dir, **extra)
    reviewed_many(project, 40000)
    clean = export_create(format="sft_chat", projects=[project], filters={})
    work(env)
    clean.refresh_from_db()
    assert clean.status == ExportStatus.SUCCEEDED, clean.error
    before = sorted(listing())

    export = export_create(format="sft_chat", projects=[project], filters={})
    # Small chunks make the build slow enough to kill in the middle.
    building = worker({**env, "HITL_EXPORT_CHUNK_SIZE": "20"})
    with FinalNameWatch(export, listing) as watch:
        deadline = time.monotonic() + 120
        while True:
            export.refresh_from_db()
            if export.status == ExportStatus.RUNNING and export.rows_done >= 2000:
                break
            assert building.poll() is None, building.stderr.read()
            assert time.monotonic() < deadline, "the build did not get going"
            time.sleep(0.05)
        kill_machine(building)
        killed = time.monotonic()
        assert export.rows_done < 40000, "the build finished before it was killed"

        settings.HITL_EXPORT_HEARTBEAT_TIMEOUT = HEARTBEAT_TIMEOUT
        assert exports_sweep().failed == 0  # its last beat is fresh: it may be alive
        export.refresh_from_db()
        assert export.status == ExportStatus.RUNNING
        if where == "local":
            assert any(name.startswith(f".export-{export.pk}-") for name in listing())
        else:
            assert s3.uploads() == [f"{s3.prefix}/{export.file_name('train')}"]
        while export.status == ExportStatus.RUNNING:
            assert time.monotonic() - killed < HEARTBEAT_TIMEOUT + 30, "not failed in time"
            time.sleep(1)
            result = exports_sweep()
            export.refresh_from_db()
        waited = time.monotonic() - killed

    assert export.status == ExportStatus.FAILED
    assert "heartbeats" in export.error
    assert waited >= HEARTBEAT_TIMEOUT - 1.5  # not before its heartbeat went silent
    assert result.temp_removed >= 1
    assert sorted(listing()) == before  # temporary files gone, the clean build untouched
    if where == "s3":
        assert s3.uploads() == []
    assert watch.looks > 20 and watch.seen == set()  # nothing ever under a final name
    assert not export.entries.exists()

    export_retry(export=export)
    work(env)
    export.refresh_from_db()
    assert export.status == ExportStatus.SUCCEEDED, export.error
    assert export.files["train"]["sha256"] == clean.files["train"]["sha256"]
    assert export.item_count == clean.item_count == 40000


def test_a_worker_and_a_web_process_on_two_machines_share_exports_through_s3(
    project, exports_queue, s3_exports, tmp_path, api_key
):
    machine_a, machine_b = tmp_path / "machine-a", tmp_path / "machine-b"
    machine_a.mkdir()
    machine_b.mkdir()
    reviewed_many(project, 20000)
    export = export_create(
        format="sft_chat", projects=[project], filters={}, validation_ratio=0.1, seed=3
    )

    work(machine_env(exports_queue, machine_a, **s3_exports.env))

    export.refresh_from_db()
    assert export.status == ExportStatus.SUCCEEDED, export.error
    assert list(machine_a.iterdir()) == []  # nothing of it stayed on the worker's disk
    with gunicorn(machine_env(exports_queue, machine_b, **s3_exports.env)) as base:
        for split, meta in export.files.items():
            body = fetch(f"{base}/api/v1/exports/{export.pk}/download/?split={split}", api_key)
            assert len(body) == meta["bytes"]
            assert hashlib.sha256(body).hexdigest() == meta["sha256"], split
        manifest = fetch(f"{base}/api/v1/exports/{export.pk}/manifest/", api_key)
    assert manifest.startswith(b"{") and f'"export_id": {export.pk}'.encode() in manifest
    assert list(machine_b.iterdir()) == []  # served from the bucket, not from a local copy
