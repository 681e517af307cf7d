"""Webhooks end to end: a real ``rqworker`` (with its scheduler) posts to a real receiver.

The worker runs in a subprocess on the test database and on Redis database
6 of the test Redis server; the test process enqueues there too.
"""

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from django.core.management import call_command
from django.db import connection

from reviews.models import DeliveryStatus, Project, WebhookAttempt, WebhookDelivery
from reviews.services.workspace import ReviewInput, assignment_claim_next, review_submit
from tests import factories
from tests.monitoring.receiver import WebhookReceiver, free_port

WORKER_REDIS_DB = 6
ROOT = Path(__file__).resolve().parents[2]
SECRET = "receiver-shared-secret"


def wait_for(condition, *, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"Timed out after {timeout}s waiting for {what}")


@pytest.fixture
def worker_redis_url(settings) -> str:
    parts = urlsplit(settings.REDIS_URL or "redis://127.0.0.1:6379/0")
    return f"redis://{parts.hostname}:{parts.port or 6379}/{WORKER_REDIS_DB}"


@pytest.fixture
def rq_worker(transactional_db, settings, worker_redis_url, tmp_path):
    """An ``rqworker webhooks --with-scheduler`` subprocess sharing the test database."""
    conn = redis.Redis.from_url(worker_redis_url)
    conn.flushdb()
    settings.RQ_INLINE = False
    settings.RQ_QUEUES = {
        name: {"URL": worker_redis_url, "DEFAULT_TIMEOUT": 60} for name in settings.RQ_QUEUE_NAMES
    }
    settings.HITL_WEBHOOK_ALLOW_PRIVATE = True
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "REDIS_URL": worker_redis_url,
        "HITL_WEBHOOK_ALLOW_PRIVATE": "1",
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


def webhook_project(url: str) -> Project:
    return factories.make_project(
        name="Webhook client",
        slug="hooked",
        mode="monitor",
        confidence_threshold=0.5,
        webhook_url=url,
        webhook_secret=SECRET,
    )


def delivered(count: int):
    return lambda: WebhookDelivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == count


def test_final_items_reach_the_receiver_signed(rq_worker, receiver):
    project = webhook_project(receiver.url)
    items = factories.ingest(project, *[factories.item_payload() for _ in range(5)])
    wait_for(delivered(5), what="five deliveries")
    assert len(receiver.received) == 5
    assert all(r.signature_valid for r in receiver.received)
    by_delivery = {r.headers["X-HITL-Delivery"]: r.json for r in receiver.received}
    assert set(by_delivery) == {
        str(pk) for pk in WebhookDelivery.objects.values_list("pk", flat=True)
    }
    assert {body["item"]["external_id"] for body in by_delivery.values()} == {
        item.external_id for item in items
    }
    assert {r.headers["X-HITL-Event"] for r in receiver.received} == {"item.final"}


def test_retries_after_500_then_succeeds(rq_worker, receiver):
    receiver.statuses = [500, 502]
    project = webhook_project(receiver.url)
    factories.ingest(project)
    wait_for(delivered(1), what="the delivery after two 5xx answers")
    delivery = WebhookDelivery.objects.get()
    assert delivery.attempts == 3
    codes = list(
        WebhookAttempt.objects.filter(delivery=delivery)
        .order_by("attempted_at")
        .values_list("status_code", flat=True)
    )
    assert codes == [500, 502, 200]
    assert [r.status for r in receiver.received] == [500, 502, 200]
    assert len({r.body for r in receiver.received}) == 1
    assert all(r.signature_valid for r in receiver.received)
    # The waits between attempts grow (1 s, then 2 s).
    times = list(
        WebhookAttempt.objects.filter(delivery=delivery)
        .order_by("attempted_at")
        .values_list("attempted_at", flat=True)
    )
    assert (times[1] - times[0]).total_seconds() >= 1
    assert (times[2] - times[1]).total_seconds() >= 2


def test_no_delivery_is_lost_while_the_receiver_is_down(rq_worker, reviewer, project):
    port = free_port()
    down = WebhookReceiver(secret=SECRET, port=port)
    hooked = webhook_project(down.url)
    factories.ingest(hooked, *[factories.item_payload() for _ in range(10)])
    # A human decision in another project with the same receiver.
    Project.objects.filter(pk=project.pk).update(webhook_url=down.url, webhook_secret=SECRET)
    factories.ingest(project)
    assignment = assignment_claim_next(reviewer=reviewer, project=project)
    review_submit(
        assignment_id=assignment.pk, reviewer=reviewer, data=ReviewInput(verdict="approve")
    )
    assert WebhookDelivery.objects.count() == 11
    wait_for(
        lambda: not WebhookDelivery.objects.filter(attempts__lt=2).exists(),
        what="every delivery to fail twice",
    )
    assert not WebhookDelivery.objects.exclude(status=DeliveryStatus.PENDING).exists()
    assert "ConnectionRefusedError" in WebhookDelivery.objects.first().last_error

    down.start()
    try:
        wait_for(delivered(11), timeout=45, what="all deliveries once the receiver is back")
        ids = {r.headers["X-HITL-Delivery"] for r in down.received}
        assert ids == {str(pk) for pk in WebhookDelivery.objects.values_list("pk", flat=True)}
        assert all(r.signature_valid for r in down.received)
        statuses = {r.json["item"]["status"] for r in down.received}
        assert statuses == {"auto_approved", "approved"}
    finally:
        down.stop()


def test_the_sweep_recovers_deliveries_enqueued_while_redis_was_down(
    rq_worker, receiver, settings, worker_redis_url
):
    project = webhook_project(receiver.url)
    healthy = settings.RQ_QUEUES
    settings.RQ_QUEUES = {
        name: {"URL": "redis://127.0.0.1:1/0"} for name in settings.RQ_QUEUE_NAMES
    }
    factories.ingest(project, factories.item_payload(), factories.item_payload())
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).count() == 2
    time.sleep(2)
    assert receiver.received == []  # the job never reached a queue

    settings.RQ_QUEUES = healthy
    settings.HITL_WEBHOOK_SWEEP_GRACE_SECONDS = 0
    call_command("webhooks_sweep")
    wait_for(delivered(2), what="the swept deliveries")
    assert len(receiver.received) == 2
