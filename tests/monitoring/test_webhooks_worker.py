"""Webhooks end to end: a real ``rqworker`` (with its scheduler) posts to a real receiver.

The worker (the ``rq_worker`` fixture) runs in a subprocess on the test
database and on Redis database 6 of the test Redis server; the test process
enqueues there too.
"""

import time

from django.core.management import call_command

from reviews.models import DeliveryStatus, Project, WebhookAttempt, WebhookDelivery
from reviews.workspace.services import ReviewInput, assignment_claim_next, review_submit
from tests import factories
from tests.monitoring.helpers import wait_for
from tests.monitoring.receiver import WebhookReceiver, free_port

SECRET = "receiver-shared-secret"


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
