"""The client against a live server: pytest-django's ``live_server`` on the test
PostgreSQL database, jobs on a real Redis, requests over loopback HTTP."""

import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from django.db import connection
from rq import Queue, SimpleWorker

from hitlplatform import queues
from reviews.services.projects import api_key_create
from tests import factories
from tests.client.proxy import FaultProxy

ROOT = Path(__file__).resolve().parents[2]
# The client of the checkout under test, whatever else is installed.
sys.path.insert(0, str(ROOT / "clients" / "python" / "src"))

import hitl  # noqa: E402

REDIS_DB = 7  # this suite's own Redis database

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def gate(transactional_db):
    return factories.make_project(name="Clinical answers", slug="clinical", mode="gate")


@pytest.fixture
def key(gate) -> str:
    _key, raw = api_key_create(project=gate, name="client tests")
    return raw


@pytest.fixture
def proxy(live_server):
    started = FaultProxy(live_server.url).start()
    yield started
    started.stop()


@pytest.fixture
def fast_retries() -> hitl.RetryPolicy:
    return hitl.RetryPolicy(attempts=4, base=0.05, cap=0.2)


@pytest.fixture
def client(proxy, key, fast_retries):
    with hitl.Client(base_url=proxy.url, api_key=key, retry=fast_retries) as started:
        yield started


@pytest.fixture
def exports_queue(monkeypatch, settings, tmp_path):
    """The exports queue (and every other) on this suite's Redis database, not inline."""
    parts = urlsplit(settings.REDIS_URL or "redis://127.0.0.1:6379/0")
    conn = redis.Redis(host=parts.hostname, port=parts.port or 6379, db=REDIS_DB)
    conn.ping()  # a missing Redis is a failure, not a skip
    conn.flushdb()
    settings.RQ_INLINE = False
    settings.HITL_EXPORT_DIR = tmp_path / "exports"
    queue = Queue("exports", connection=conn)
    monkeypatch.setattr(queues, "get_queue", lambda name: Queue(name, connection=conn))
    yield queue
    conn.flushdb()


def work(queue: Queue) -> bool:
    """Run every job on ``queue`` with a real RQ worker (in this process), then return."""
    try:
        return SimpleWorker([queue], connection=queue.connection).work(burst=True)
    finally:
        connection.close()


class BackgroundWorker:
    """An RQ worker in a thread, draining the queue in bursts until stopped."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.jobs = 0

    def _run(self) -> None:
        worker = SimpleWorker([self.queue], connection=self.queue.connection)
        try:
            while not self._stop.is_set():
                if worker.work(burst=True):
                    self.jobs += 1
                self._stop.wait(0.1)
        finally:
            connection.close()

    def __enter__(self) -> "BackgroundWorker":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
