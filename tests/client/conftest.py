"""The client against a live server: pytest-django's ``live_server`` on the test
PostgreSQL database, jobs on a real Redis, requests over loopback HTTP."""

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from django.conf import settings
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
    """A real ``rqworker`` process on ``queue``'s Redis database and the test database.

    It runs from the checkout under test and writes exports where the live
    server reads them; stopped (SIGTERM, then SIGKILL) on exit.
    """

    def __init__(self, queue: Queue, *names: str) -> None:
        self.queue = queue
        self.names = names or (queue.name,)
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "BackgroundWorker":
        db = connection.settings_dict
        kwargs = self.queue.connection.connection_pool.connection_kwargs
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "REDIS_URL": f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs['db']}",
            "HITL_EXPORT_DIR": str(settings.HITL_EXPORT_DIR),
            "HITL_WEBHOOK_ALLOW_PRIVATE": "1",
        }
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "rqworker", *self.names],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        return self

    def __exit__(self, *exc) -> None:
        assert self.process is not None
        self.process.terminate()
        try:
            _out, err = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _out, err = self.process.communicate()
        self.stderr = err.decode(errors="replace")
