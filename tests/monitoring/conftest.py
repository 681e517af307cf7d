import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from django.db import connection

from tests import factories
from tests.monitoring.helpers import wait_for
from tests.monitoring.receiver import WebhookReceiver

WORKER_REDIS_DB = 6
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def auditor(django_user_model):
    return django_user_model.objects.create_user("audrey", password="audrey-pass-1", is_staff=True)


@pytest.fixture
def audited_project(db):
    """A monitor-mode project that audit-samples every auto-approved output."""
    return factories.make_project(
        name="Support answers",
        slug="support",
        mode="monitor",
        confidence_threshold=0.5,
        audit_sample_rate=1.0,
        drift_min_samples=30,
        drift_margin=0.05,
        monitoring_window_days=7,
        accuracy_target=0.9,
    )


@pytest.fixture
def receiver():
    started = WebhookReceiver(secret="receiver-shared-secret").start()
    yield started
    started.stop()


@pytest.fixture
def webhook_settings(settings):
    settings.HITL_WEBHOOK_ALLOW_PRIVATE = True  # the receiver listens on loopback
    settings.HITL_WEBHOOK_TIMEOUT = 2
    settings.HITL_WEBHOOK_BACKOFF_SECONDS = 1
    settings.HITL_WEBHOOK_BACKOFF_MAX_SECONDS = 2
    return settings


@pytest.fixture
def worker_redis_url(settings) -> str:
    parts = urlsplit(settings.REDIS_URL or "redis://127.0.0.1:6379/0")
    return f"redis://{parts.hostname}:{parts.port or 6379}/{WORKER_REDIS_DB}"


@pytest.fixture
def worker_allows_private() -> bool:
    """HITL_WEBHOOK_ALLOW_PRIVATE of the worker: on, as the receivers are on loopback.

    A test module overrides this fixture to run the worker under the address rule.
    """
    return True


@pytest.fixture
def rq_worker(transactional_db, settings, worker_redis_url, worker_allows_private, tmp_path):
    """An ``rqworker webhooks --with-scheduler`` subprocess sharing the test database."""
    conn = redis.Redis.from_url(worker_redis_url)
    conn.flushdb()
    settings.RQ_INLINE = False
    settings.RQ_QUEUES = {
        name: {"URL": worker_redis_url, "DEFAULT_TIMEOUT": 60} for name in settings.RQ_QUEUE_NAMES
    }
    settings.HITL_WEBHOOK_ALLOW_PRIVATE = worker_allows_private
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "REDIS_URL": worker_redis_url,
        "HITL_WEBHOOK_ALLOW_PRIVATE": "1" if worker_allows_private else "0",
        "HITL_WEBHOOK_TIMEOUT": "2",
        "HITL_WEBHOOK_BACKOFF_SECONDS": "1",
        "HITL_WEBHOOK_BACKOFF_MAX_SECONDS": "2",
        "HITL_WEBHOOK_MAX_ATTEMPTS": "50",
    }
    log = (tmp_path / "worker.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", "webhooks", "--with-scheduler"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(
            lambda: conn.keys("rq:worker:*") or process.poll() is not None,
            timeout=30,
            what="the worker to start",
        )
        assert process.poll() is None, (tmp_path / "worker.log").read_text()
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        conn.flushdb()
        # Shown by pytest when the test failed.
        print((tmp_path / "worker.log").read_text())
