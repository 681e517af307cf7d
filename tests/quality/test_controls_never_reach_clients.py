"""Controls never reach clients: no export format, webhook or API answer to an API key
names a control, and control reviews change no figure a client reads (the agreement
API's per-reviewer control accuracy aside, which names no item)."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from datasets import formats
from datasets.models import DatasetExport, DatasetExportItem
from reviews.models import Project, ReviewItem, WebhookDelivery
from reviews.quality.controls import KnownAnswer, control_create, controls_create_from_items
from reviews.services.projects import api_key_create
from reviews.workspace.services import ReviewInput, assignment_claim_next, review_submit
from tests import factories
from tests.datasets.factories import reviewed

pytestmark = pytest.mark.django_db

MARKER = "zebra-quokka-control-marker"


@pytest.fixture(autouse=True)
def inline(settings, tmp_path):
    settings.HITL_EXPORT_DIR = tmp_path / "exports"
    settings.RQ_INLINE = True


@pytest.fixture
def setup(django_user_model):
    project = factories.make_project(
        name="Drug safety", slug="drug-safety", reviews_required=2, control_rate=0.0
    )
    Project.objects.filter(pk=project.pk).update(
        webhook_url="https://hooks.example.com/hitl", webhook_secret="s3cret"
    )
    project.refresh_from_db()
    people = {}
    for name, role in (("rita", "reviewer"), ("sam", "reviewer"), ("lead", "admin")):
        user = django_user_model.objects.create_user(name, password=f"{name}-pass-1", is_staff=True)
        factories.add_member(project, user, role)
        people[name] = user
    _key, raw = api_key_create(project=project, name="client")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return project, people, client


def _decide(reviewer, project, data: ReviewInput) -> ReviewItem:
    assignment = assignment_claim_next(reviewer=reviewer, project=project)
    review_submit(assignment_id=assignment.pk, reviewer=reviewer, data=data)
    return assignment.item


def _client_view(client, project, end: str) -> dict:
    """Everything an API-key client can read: items, agreement, every export format."""
    items = client.get("/api/v1/items/?limit=100")
    assert items.status_code == 200
    agreement = client.get(f"/api/v1/projects/{project.slug}/agreement/", {"end": end})
    assert agreement.status_code == 200
    return {"items": items.json(), "agreement": agreement.json()}


def _exports(client, django_capture_on_commit_callbacks) -> dict[str, bytes]:
    files = {}
    for spec in formats.specs():
        with django_capture_on_commit_callbacks(execute=True):
            answer = client.post(
                "/api/v1/exports/",
                data=json.dumps({"format": spec.key}),
                content_type="application/json",
            )
        assert answer.status_code == 202, answer.content
        detail = client.get(f"/api/v1/exports/{answer.json()['id']}/").json()
        assert detail["status"] == "succeeded", detail
        body = b""
        for split in detail["downloads"]:
            download = client.get(f"/api/v1/exports/{detail['id']}/download/?split={split}")
            assert download.status_code == 200
            body += b"".join(download.streaming_content)
        manifest = client.get(f"/api/v1/exports/{detail['id']}/manifest/")
        assert manifest.status_code == 200
        body += b"".join(manifest.streaming_content)
        files[spec.key] = body + json.dumps(detail).encode()
    return files


def test_no_export_webhook_or_api_answer_names_a_control(setup, django_capture_on_commit_callbacks):
    project, people, client = setup
    rita, sam, lead = people["rita"], people["sam"], people["lead"]
    # Real work both reviewers agree and disagree on, and a corrected final item.
    factories.ingest(project, factories.item_payload(), factories.item_payload())
    for reviewer in (rita, sam):
        _decide(reviewer, project, ReviewInput("approve"))
    source = reviewed(
        project, verdict="correct", corrected_output="At most 4 g a day.", reviewer=rita
    )
    # One period for both readings (the default ends "now").
    end = (timezone.now().replace(microsecond=0) + timedelta(hours=1)).isoformat()
    before = _client_view(client, project, end)

    # Two controls: one copied from the corrected item, one uploaded with a marker.
    (copied,) = controls_create_from_items(items=[source], by=lead)
    uploaded = control_create(
        project=project,
        content={
            "prompt": f"Is 12 g a day safe? {MARKER}",
            "messages": [],
            "output": f"Yes, 12 g is safe. {MARKER}",
            "model_name": "acme-med",
            "model_version": "2026-11-01",
            "confidence": 0.9,
            "context": [],
            "metadata": {"note": MARKER},
            "tools": [],
            "is_transcript": False,
        },
        answer=KnownAnswer(verdict="reject"),
        by=lead,
    )
    controls = {copied.item, uploaded.item}
    # Both reviewers review both controls, in every verdict, while real work waits.
    Project.objects.filter(pk=project.pk).update(control_rate=1.0)
    project.refresh_from_db()
    factories.ingest(project, factories.item_payload())
    served = set()
    for reviewer, verdicts in (
        (rita, [ReviewInput("correct", "Fixed.", "factual_error", "", "major")] * 2),
        (sam, [ReviewInput("approve"), ReviewInput("reject", None, "unsafe", "", "critical")]),
    ):
        for data in verdicts:
            item = _decide(reviewer, project, data)
            served.add(item.pk)
    assert served == {c.pk for c in controls}
    for control in controls:
        control.refresh_from_db()
        assert control.reviews.count() == 2 and not control.is_final

    ids = {c.pk for c in controls}
    names = {c.external_id for c in controls} | {MARKER}

    # Webhooks: no delivery for a control, no body naming one.
    assert not WebhookDelivery.objects.filter(item__in=ids).exists()
    bodies = json.dumps(list(WebhookDelivery.objects.values_list("payload", flat=True)))
    assert not any(name in bodies for name in names)

    # The items API: not listed, not found by id or external id, in any status.
    after = _client_view(client, project, end)
    listed = {row["id"] for row in after["items"]["results"]}
    assert listed and not listed & ids
    for control in controls:
        assert client.get(f"/api/v1/items/{control.pk}/").status_code == 404
        found = client.get(f"/api/v1/items/?external_id={control.external_id}").json()
        assert found["results"] == []
    for status in ("pending_review", "in_review", "approved", "corrected", "rejected"):
        rows = client.get(f"/api/v1/items/?status={status}").json()["results"]
        assert not {row["id"] for row in rows} & ids
    text = json.dumps(after)
    assert not any(name in text for name in names)
    # Decisions and agreement figures are those of the real work only; the reviewers'
    # control accuracy is the one addition (counts, no items).
    decisions = {r["id"]: r["decision"] for r in after["items"]["results"]}
    assert {r["id"]: r["decision"] for r in before["items"]["results"]}.items() <= (
        decisions.items()
    )
    agreement_before = {k: v for k, v in before["agreement"].items() if k != "reviewers"}
    agreement_after = {k: v for k, v in after["agreement"].items() if k != "reviewers"}
    assert agreement_after == agreement_before
    controls_seen = {r["reviewer"]: r["controls"] for r in after["agreement"]["reviewers"]}
    assert controls_seen["rita"]["controls"] == 2 and controls_seen["sam"]["controls"] == 2
    for row_before, row_after in zip(
        before["agreement"]["reviewers"], after["agreement"]["reviewers"], strict=True
    ):
        assert {k: v for k, v in row_before.items() if k != "controls"} == {
            k: v for k, v in row_after.items() if k != "controls"
        }

    # Every export format: no control row, id, external id or content.
    files = _exports(client, django_capture_on_commit_callbacks)
    assert set(files) == {spec.key for spec in formats.specs()}
    assert not DatasetExportItem.objects.filter(item__in=ids).exists()
    assert DatasetExport.objects.count() == len(files)
    for key, body in files.items():
        assert not any(name.encode() in body for name in names), key
    # The copied control's content is its source's, which is released: it is there once.
    sft = files["sft_chat"].decode()
    assert sft.count(source.prompt) == 1
