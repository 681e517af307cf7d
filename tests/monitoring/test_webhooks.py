"""Webhook outbox, signing, retries and address checks, sent in-process to a real receiver."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from reviews.models import (
    DeliveryStatus,
    ItemStatus,
    Project,
    WebhookAttempt,
    WebhookDelivery,
)
from reviews.netpolicy import WebhookRefused, webhook_target_resolve
from reviews.webhooks.services import (
    webhook_body,
    webhook_deliver,
    webhook_deliveries_sweep,
    webhook_signature,
)
from tests import factories
from tests.monitoring.helpers import decide
from tests.monitoring.receiver import free_port

SECRET = "receiver-shared-secret"


def with_webhook(project: Project, url: str, secret: str = SECRET) -> Project:
    Project.objects.filter(pk=project.pk).update(webhook_url=url, webhook_secret=secret)
    project.refresh_from_db()
    return project


def test_signature_is_hmac_sha256_of_the_raw_body():
    # RFC 4231, test case 2.
    assert webhook_signature(secret="Jefe", body=b"what do ya want for nothing?") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_ingest_writes_one_delivery_per_final_item_only(monitor_project):
    with_webhook(monitor_project, "https://hooks.example.com/hitl")
    factories.make_rule(monitor_project, kind="max_length", limit=20, severity="blocking")
    items = factories.ingest(
        monitor_project,
        factories.item_payload(output="Short answer."),  # auto-approved
        factories.item_payload(output="A" * 50),  # auto-rejected by the check
        factories.item_payload(output="Short.", confidence=0.1),  # to review
    )
    statuses = [i.status for i in items]
    assert statuses == [
        ItemStatus.AUTO_APPROVED,
        ItemStatus.AUTO_REJECTED,
        ItemStatus.PENDING_REVIEW,
    ]
    deliveries = {d.item_id: d for d in WebhookDelivery.objects.all()}
    assert set(deliveries) == {items[0].pk, items[1].pk}
    body = deliveries[items[0].pk].payload
    assert body["event"] == "item.final"
    assert body["delivery_id"] == str(deliveries[items[0].pk].pk)
    assert body["project"] == "contracts"
    assert body["item"]["external_id"] == items[0].external_id
    assert body["item"]["final_output"] == "Short answer."
    assert deliveries[items[1].pk].payload["item"]["final_output"] is None


def test_ingest_without_webhook_url_writes_nothing(monitor_project):
    factories.ingest(monitor_project)
    assert not WebhookDelivery.objects.exists()


def test_bulk_ingest_creates_deliveries_without_per_item_queries(monitor_project):
    with_webhook(monitor_project, "https://hooks.example.com/hitl")

    def queries_for(count: int) -> int:
        payloads = [factories.item_payload() for _ in range(count)]
        with CaptureQueriesContext(connection) as ctx:
            factories.ingest(monitor_project, *payloads)
        return len(ctx.captured_queries)

    small, large = queries_for(5), queries_for(400)
    assert WebhookDelivery.objects.count() == 405
    assert large == small


def test_a_human_decision_writes_a_delivery_through_the_state_machine(project, reviewer):
    with_webhook(project, "https://hooks.example.com/hitl")
    [item] = factories.ingest(project)
    assert not WebhookDelivery.objects.exists()  # pending review is not final
    decide([item], reviewer=reviewer, verdict="correct")
    delivery = WebhookDelivery.objects.get()
    assert delivery.item_id == item.pk
    assert delivery.payload["item"]["status"] == "corrected"
    assert delivery.payload["item"]["final_output"] == "Fixed output."
    assert delivery.payload["item"]["decision"]["verdict"] == "correct"
    assert delivery.payload["item"]["decision"]["reason_code"] == "factual_error"


def test_delivery_is_signed_and_verified_by_the_receiver(
    monitor_project, receiver, webhook_settings
):
    with_webhook(monitor_project, receiver.url)
    [item] = factories.ingest(monitor_project)
    delivery = WebhookDelivery.objects.get()
    result = webhook_deliver(delivery_id=str(delivery.pk))
    assert result.status == DeliveryStatus.DELIVERED
    assert result.attempts == 1
    [got] = receiver.received
    assert got.signature_valid
    assert got.headers["X-HITL-Delivery"] == str(delivery.pk)
    assert got.headers["X-HITL-Event"] == "item.final"
    assert got.headers["Content-Type"] == "application/json"
    assert got.body == webhook_body(delivery.payload)
    assert got.json["item"]["id"] == item.pk
    [attempt] = WebhookAttempt.objects.filter(delivery=delivery)
    assert attempt.status_code == 200
    assert attempt.url == receiver.url


def test_a_wrong_secret_fails_verification(monitor_project, receiver, webhook_settings):
    with_webhook(monitor_project, receiver.url, secret="not-the-receivers-secret")
    factories.ingest(monitor_project)
    webhook_deliver(delivery_id=str(WebhookDelivery.objects.get().pk))
    assert receiver.received[0].signature_valid is False


def test_5xx_schedules_a_retry_with_exponential_backoff(
    monitor_project, receiver, webhook_settings
):
    webhook_settings.HITL_WEBHOOK_BACKOFF_SECONDS = 10
    webhook_settings.HITL_WEBHOOK_BACKOFF_MAX_SECONDS = 1000
    with_webhook(monitor_project, receiver.url)
    factories.ingest(monitor_project)
    delivery = WebhookDelivery.objects.get()
    receiver.statuses = [500, 503]
    first = webhook_deliver(delivery_id=str(delivery.pk))
    assert (first.status, first.attempts, first.last_status_code) == ("pending", 1, 500)
    assert first.next_attempt_at - first.last_attempt_at == timedelta(seconds=10)
    # Not due yet: a stray job does nothing.
    assert webhook_deliver(delivery_id=str(delivery.pk)).attempts == 1
    second = webhook_deliver(delivery_id=str(delivery.pk), force=True)
    assert second.attempts == 2
    assert second.next_attempt_at - second.last_attempt_at == timedelta(seconds=20)
    third = webhook_deliver(delivery_id=str(delivery.pk), force=True)
    assert third.status == DeliveryStatus.DELIVERED
    assert [r.status for r in receiver.received] == [500, 503, 200]
    assert len({r.headers["X-HITL-Delivery"] for r in receiver.received}) == 1


def test_4xx_gives_up_at_once(monitor_project, receiver, webhook_settings):
    with_webhook(monitor_project, receiver.url)
    factories.ingest(monitor_project)
    receiver.statuses = [410]
    result = webhook_deliver(delivery_id=str(WebhookDelivery.objects.get().pk))
    assert (result.status, result.attempts, result.last_error) == ("failed", 1, "HTTP 410 Gone")


def test_gives_up_after_max_attempts(monitor_project, webhook_settings):
    webhook_settings.HITL_WEBHOOK_MAX_ATTEMPTS = 3
    with_webhook(monitor_project, f"http://127.0.0.1:{free_port()}/down")
    factories.ingest(monitor_project)
    delivery_id = str(WebhookDelivery.objects.get().pk)
    for _ in range(3):
        result = webhook_deliver(delivery_id=delivery_id, force=True)
    assert result.status == DeliveryStatus.FAILED
    assert result.attempts == 3
    assert "ConnectionRefusedError" in result.last_error


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_private_and_local_addresses_are_refused(url, settings):
    settings.HITL_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(WebhookRefused, match="private or local address"):
        webhook_target_resolve(url)


def test_public_addresses_and_allowed_private_ones_pass(settings):
    settings.HITL_WEBHOOK_ALLOW_PRIVATE = False
    assert webhook_target_resolve("https://93.184.216.34/hook") == (
        "https",
        "93.184.216.34",
        443,
        "93.184.216.34",
    )
    settings.HITL_WEBHOOK_ALLOW_PRIVATE = True
    assert webhook_target_resolve("http://127.0.0.1:9/x")[3] == "127.0.0.1"
    with pytest.raises(WebhookRefused, match="http or https only"):
        webhook_target_resolve("ftp://example.com/x")


def test_a_refused_address_fails_the_delivery_without_a_request(
    monitor_project, receiver, settings
):
    settings.HITL_WEBHOOK_ALLOW_PRIVATE = False
    with_webhook(monitor_project, receiver.url)
    factories.ingest(monitor_project)
    result = webhook_deliver(delivery_id=str(WebhookDelivery.objects.get().pk))
    assert result.status == DeliveryStatus.FAILED
    assert "HITL_WEBHOOK_ALLOW_PRIVATE" in result.last_error
    assert receiver.received == []


def test_sweep_finds_overdue_deliveries_only(monitor_project, webhook_settings):
    with_webhook(monitor_project, "http://127.0.0.1:9/x")
    factories.ingest(monitor_project, factories.item_payload(), factories.item_payload())
    old, new = WebhookDelivery.objects.order_by("created_at", "pk")
    WebhookDelivery.objects.filter(pk=old.pk).update(
        next_attempt_at=timezone.now() - timedelta(minutes=10)
    )
    webhook_settings.HITL_WEBHOOK_SWEEP_GRACE_SECONDS = 60
    assert webhook_deliveries_sweep(send_inline=True) == 1
    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.attempts, new.attempts) == (1, 0)


def test_resend_from_the_admin_sends_the_same_delivery_again(
    client, admin_user, monitor_project, receiver, webhook_settings
):
    with_webhook(monitor_project, receiver.url)
    factories.ingest(monitor_project)
    delivery = WebhookDelivery.objects.get()
    receiver.statuses = [400]
    assert webhook_deliver(delivery_id=str(delivery.pk)).status == DeliveryStatus.FAILED

    client.force_login(admin_user)
    log = client.get(reverse("admin:reviews_webhookdelivery_changelist"))
    assert log.status_code == 200
    assert str(delivery.pk).encode() in log.content
    page = client.get(reverse("admin:reviews_webhookdelivery_change", args=[delivery.pk]))
    assert page.status_code == 200
    assert b"HTTP 400 Bad Request" in page.content  # the attempt log
    assert b"Re-send" in page.content
    response = client.post(reverse("admin:reviews_webhookdelivery_resend", args=[delivery.pk]))
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 0)
    assert webhook_deliver(delivery_id=str(delivery.pk)).status == DeliveryStatus.DELIVERED
    assert [r.status for r in receiver.received] == [400, 200]
    assert receiver.received[0].body == receiver.received[1].body
    assert WebhookAttempt.objects.filter(delivery=delivery).count() == 2


def test_resend_action_on_the_delivery_log(client, admin_user, monitor_project):
    with_webhook(monitor_project, "http://127.0.0.1:9/x")
    factories.ingest(monitor_project, factories.item_payload(), factories.item_payload())
    WebhookDelivery.objects.update(status=DeliveryStatus.FAILED, attempts=12)
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:reviews_webhookdelivery_changelist"),
        {
            "action": "resend",
            "_selected_action": [
                str(pk) for pk in WebhookDelivery.objects.values_list("pk", flat=True)
            ],
        },
        follow=True,
    )
    assert b"2 deliveries queued again" in response.content
    assert set(WebhookDelivery.objects.values_list("status", "attempts")) == {("pending", 0)}


def test_stored_text_is_escaped_in_the_delivery_log(client, admin_user, monitor_project):
    with_webhook(monitor_project, "http://127.0.0.1:9/x")
    factories.ingest(monitor_project, factories.item_payload(output="<script>alert(1)</script>"))
    client.force_login(admin_user)
    delivery = WebhookDelivery.objects.get()
    page = client.get(reverse("admin:reviews_webhookdelivery_change", args=[delivery.pk]))
    assert b"<script>alert(1)</script>" not in page.content
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in page.content
