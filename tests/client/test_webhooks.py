"""Webhooks sent by the real delivery job to a receiver, verified with the client."""

import importlib.util
import io
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, make_server

import hitl
import httpx
import pytest
from rq import Queue

from reviews.models import Project, WebhookDelivery
from reviews.services.projects import api_key_create
from reviews.webhooks import services as webhook_services
from reviews.workspace.services import ReviewInput, assignment_claim_next, review_submit
from tests import factories
from tests.client.conftest import ROOT, work

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "receiver-shared-secret"


def _example():
    path = ROOT / "clients" / "python" / "examples" / "wsgi_receiver.py"
    spec = importlib.util.spec_from_file_location("wsgi_receiver", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def wsgi_receiver():
    """The README's plain WSGI receiver, served on loopback; ``events`` what it accepted."""
    events, raw = [], []
    app = _example().make_app(SECRET, events.append)

    def recording(environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        headers = {
            k[5:].replace("_", "-").title(): v for k, v in environ.items() if k[:5] == "HTTP_"
        }
        raw.append((headers, body))
        environ["wsgi.input"] = io.BytesIO(body)
        return app(environ, start_response)

    server = make_server("127.0.0.1", 0, recording, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_port}/hooks/hitl"
    server.events, server.raw = events, raw
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def hooked(settings, exports_queue, wsgi_receiver, django_user_model, proxy):
    settings.HITL_WEBHOOK_ALLOW_PRIVATE = True  # the receiver listens on loopback
    settings.HITL_WEBHOOK_TIMEOUT = 5
    project = factories.make_project(
        slug="support", mode="monitor", confidence_threshold=0.5, audit_sample_rate=1.0
    )
    Project.objects.filter(pk=project.pk).update(
        webhook_url=wsgi_receiver.url, webhook_secret=SECRET
    )
    _key, raw = api_key_create(project=project, name="support client")
    auditor = django_user_model.objects.create_user("audrey", password="x", is_staff=True)
    factories.add_member(project, auditor, "reviewer")
    webhooks = Queue("webhooks", connection=exports_queue.connection)
    with hitl.Client(base_url=proxy.url, api_key=raw) as client:
        yield client, project, auditor, webhooks


def test_final_and_audited_webhooks_verify_and_carry_the_outcome(hooked, wsgi_receiver):
    client, project, auditor, webhooks = hooked
    item = client.submit(factories.item_payload(external_id="w-1", output="4 g per day."))
    assert item.status == "auto_approved"
    work(webhooks)
    (final,) = wsgi_receiver.events
    assert final["event"] == "item.final"
    assert final["item"]["decision"]["verdict"] == "auto_approve"
    assert final["item"]["decision"]["reasons"] == ["no_trigger", "audit_sample"]
    assert final["item"]["audit"]["status"] == "pending"

    assignment = assignment_claim_next(reviewer=auditor, project=project)
    review_submit(
        assignment_id=assignment.pk,
        reviewer=auditor,
        data=ReviewInput(verdict="reject", reason_code="hallucination", severity="major"),
    )
    work(webhooks)
    assert [event["event"] for event in wsgi_receiver.events] == ["item.final", "item.audited"]
    audit = wsgi_receiver.events[1]["item"]["audit"]
    assert audit["status"] == "done" and audit["audited_by"] == "user audrey"
    assert audit["agreed"] is False and audit["reason_code"] == "hallucination"
    assert audit["audited_at"]
    deliveries = WebhookDelivery.objects.order_by("created_at")
    assert [d.status for d in deliveries] == ["delivered", "delivered"]


def test_tampered_wrong_secret_and_stale_webhooks_are_rejected(hooked, wsgi_receiver):
    client, _project, _auditor, webhooks = hooked
    client.submit(factories.item_payload(external_id="w-2", output="4 g per day."))
    work(webhooks)
    ((headers, body),) = wsgi_receiver.raw
    assert hitl.verify_webhook(body, headers, SECRET)["item"]["external_id"] == "w-2"

    tampered = body.replace(b'"auto_approved"', b'"approved"')
    assert tampered != body
    with pytest.raises(hitl.WebhookVerificationError, match="mismatch"):
        hitl.verify_webhook(tampered, headers, SECRET)
    later = {**headers, "X-Hitl-Timestamp": str(int(headers["X-Hitl-Timestamp"]) + 1)}
    with pytest.raises(hitl.WebhookVerificationError, match="mismatch"):
        hitl.verify_webhook(body, later, SECRET)
    with pytest.raises(hitl.WebhookVerificationError, match="mismatch"):
        hitl.verify_webhook(body, headers, "another-secret")
    unsigned = {k: v for k, v in headers.items() if k != "X-Hitl-Signature-V2"}
    with pytest.raises(hitl.WebhookVerificationError, match="Missing"):
        hitl.verify_webhook(body, unsigned, SECRET)
    sent_at = int(headers["X-Hitl-Timestamp"])
    tolerance = webhook_services.SIGNATURE_TOLERANCE_SECONDS
    assert hitl.verify_webhook(body, headers, SECRET, now=sent_at + tolerance)
    with pytest.raises(hitl.StaleWebhook):
        hitl.verify_webhook(body, headers, SECRET, now=sent_at + tolerance + 1)

    # The receiver app refuses a tampered or replayed delivery over HTTP.
    forward = {k: v for k, v in headers.items() if k.lower().startswith("x-hitl")}
    refused = httpx.post(wsgi_receiver.url, content=tampered, headers=forward)
    assert refused.status_code == 400 and b"mismatch" in refused.content
    old = int(time.time()) - tolerance - 60
    replay = {
        **forward,
        "X-Hitl-Timestamp": str(old),
        "X-Hitl-Signature-V2": hitl.webhooks.sign(body, SECRET, old),
    }
    stale = httpx.post(wsgi_receiver.url, content=body, headers=replay)
    assert stale.status_code == 400 and b"tolerance" in stale.content
    again = httpx.post(wsgi_receiver.url, content=body, headers=forward)
    assert again.status_code == 204
    assert len(wsgi_receiver.events) == 1  # the re-sent delivery was de-duplicated
