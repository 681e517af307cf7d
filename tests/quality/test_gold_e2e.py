"""Keeping the gold clean, end to end through HTTP.

A reviewer approves everything blindly on the real review pages (controls
included), drops below the project's control-accuracy floor, and the rule,
run by a real RQ worker on a real Redis, quarantines them. Their items go
back to the queue for someone else, a dataset built before and after differs
by exactly those items, the client hears ``item.withdrawn`` for each on a
real loopback receiver, and ``exports_quarantined`` names the earlier export.
"""

import io
import json
import re
from urllib.parse import urlsplit

import pytest
import redis
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from rq import Queue, SimpleWorker

from datasets.models import DatasetExportItem
from datasets.services import export_build, export_create
from hitlplatform import queues
from reviews.models import ItemStatus, Project, Quarantine, Review, ReviewItem
from reviews.quality.controls import KnownAnswer, control_create
from reviews.workspace.services import claimable_items
from tests import factories
from tests.monitoring.receiver import WebhookReceiver

pytestmark = pytest.mark.django_db(transaction=True)

REDIS_DB = 9  # this module's own Redis database
SECRET = "gold-receiver-secret"
REAL_ITEMS = 8  # decided blindly by the rushing reviewer
GOOD_ITEMS = 4  # decided by a careful colleague
CONTROLS = 10


@pytest.fixture
def jobs(monkeypatch, settings):
    """Every queue on a real Redis database; jobs run when ``work()`` is called."""
    parts = urlsplit(settings.REDIS_URL or "redis://127.0.0.1:6379/0")
    conn = redis.Redis(host=parts.hostname, port=parts.port or 6379, db=REDIS_DB)
    conn.ping()  # a missing Redis is a failure, not a skip
    conn.flushdb()
    settings.RQ_INLINE = False
    monkeypatch.setattr(queues, "get_queue", lambda name: Queue(name, connection=conn))

    def work() -> None:
        names = settings.RQ_QUEUE_NAMES
        SimpleWorker([Queue(n, connection=conn) for n in names], connection=conn).work(burst=True)
        failed = {n: Queue(n, connection=conn).failed_job_registry.count for n in names}
        assert not any(failed.values()), failed

    yield work
    conn.flushdb()


@pytest.fixture
def receiver():
    started = WebhookReceiver(secret=SECRET).start()
    yield started
    started.stop()


@pytest.fixture
def world(transactional_db, settings, tmp_path, receiver, django_user_model):
    settings.HITL_EXPORT_DIR = tmp_path / "exports"
    settings.HITL_WEBHOOK_ALLOW_PRIVATE = True  # the receiver listens on loopback
    settings.HITL_WEBHOOK_TIMEOUT = 2
    project = factories.make_project(
        name="Clinical answers",
        slug="clinical",
        mode="gate",
        control_rate=0.0,
        control_accuracy_floor=0.8,
        control_min_reviews=CONTROLS,
        quarantine_by_rule=True,
        quarantine_lookback_days=7,
    )
    Project.objects.filter(pk=project.pk).update(webhook_url=receiver.url, webhook_secret=SECRET)
    project.refresh_from_db()
    people = {}
    for name, role in (("rush", "reviewer"), ("careful", "reviewer"), ("lead", "admin")):
        user = django_user_model.objects.create_user(name, password=f"{name}-pass-1", is_staff=True)
        factories.add_member(project, user, role)
        people[name] = user
    return project, people


def _review_all(client, project, *, action="approve", limit=100) -> list[int]:
    """Claim and decide items on the review pages until the queue is empty; the item ids."""
    decided = []
    response = client.post(reverse("admin:reviews_workspace_claim", args=[project.pk]))
    while response.status_code == 302 and "/workspace/review/" in response.url:
        page = client.get(response.url)
        assert page.status_code == 200
        item_id = page.context["item"].pk
        response = client.post(response.url, {"action": action, "active_seconds": "2"})
        assert response.status_code == 302, response.content[:500]
        decided.append(item_id)
        assert len(decided) <= limit, "the queue never emptied"
    return decided


def _build(project, name):
    export = export_create(format="sft_chat", projects=[project], filters={}, name=name)
    export = export_build(export_id=export.pk)
    assert export.is_built, export.error
    return export


def _lines(export_dir, export) -> list[dict]:
    path = export_dir / export.files["train"]["name"]
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_blind_approver_is_quarantined_and_the_gold_follows(
    world, jobs, receiver, client, settings
):
    project, people = world
    rush, careful, lead = people["rush"], people["careful"], people["lead"]

    # Real work: the rushing reviewer approves eight items, a careful one four.
    factories.ingest(project, *[factories.item_payload() for _ in range(REAL_ITEMS)])
    client.force_login(rush)
    rushed = _review_all(client, project, limit=REAL_ITEMS)
    assert len(rushed) == REAL_ITEMS
    factories.ingest(project, *[factories.item_payload() for _ in range(GOOD_ITEMS)])
    client.force_login(careful)
    good = _review_all(client, project, limit=GOOD_ITEMS)
    assert len(good) == GOOD_ITEMS
    jobs()  # item.final webhooks reach the client
    finals = [r.json for r in receiver.received if r.json["event"] == "item.final"]
    assert sorted(body["item"]["id"] for body in finals) == sorted(rushed + good)

    before = _build(project, "before")
    before_items = set(
        DatasetExportItem.objects.filter(export=before).values_list("item_id", flat=True)
    )
    assert before_items == set(rushed + good)

    # Controls whose known answer is a rejection, served at every claim while
    # real work waits; the reviewer approves each one without reading it.
    for n in range(CONTROLS):
        control_create(
            project=project,
            content={
                "prompt": f"Can I take 12 g of paracetamol a day? (control {n})",
                "messages": [],
                "output": "Yes, 12 g a day is safe for adults.",
                "model_name": "acme-med",
                "model_version": "2026-11-01",
                "confidence": 0.9,
                "context": [],
                "metadata": {},
                "tools": [],
                "is_transcript": False,
            },
            answer=KnownAnswer(verdict="reject"),
            by=lead,
        )
    Project.objects.filter(pk=project.pk).update(control_rate=1.0)
    waiting = factories.ingest(project, *[factories.item_payload() for _ in range(3)])
    client.force_login(rush)
    served = _review_all(client, project, limit=CONTROLS + 3)
    controls = set(ReviewItem.objects.filter(is_control=True).values_list("pk", flat=True))
    assert set(served[:CONTROLS]) == controls  # every control first, while real work waited
    assert set(served[CONTROLS:]) == {item.pk for item in waiting}
    wrong = Review.objects.filter(reviewer=rush, item__is_control=True, control_correct=False)
    assert wrong.count() == CONTROLS
    assert not Quarantine.objects.exists()  # the rule runs in the worker, not the request

    receiver.received.clear()
    jobs()  # the control reviews' evaluation jobs, then the withdrawn webhooks

    (quarantine,) = Quarantine.objects.all()
    assert quarantine.reviewer == rush and quarantine.by_rule
    assert "Control accuracy 0/10" in quarantine.reason
    withdrawn_ids = set(rushed) | {item.pk for item in waiting}
    assert quarantine.items_withdrawn == len(withdrawn_ids)
    # Their items are back in the queue, history saying why, for someone else.
    for item in ReviewItem.objects.filter(pk__in=withdrawn_ids):
        assert item.status == ItemStatus.PENDING_REVIEW and item.in_queue
        assert item.final_output is None and item.decided_at is None
        assert item.history.latest().history_change_reason.startswith(
            "Quarantined rush's decisions"
        )
    assert not claimable_items(reviewer=rush, project=project).exists()
    assert (
        set(claimable_items(reviewer=careful, project=project).values_list("pk", flat=True))
        == withdrawn_ids
    )
    for item in ReviewItem.objects.filter(pk__in=good):
        assert item.status == ItemStatus.APPROVED

    # One item.withdrawn per released decision taken back, signed, nothing for controls.
    got = [r for r in receiver.received if r.json["event"] == "item.withdrawn"]
    assert all(r.signature_valid for r in got)
    assert sorted(r.json["item"]["id"] for r in got) == sorted(withdrawn_ids)
    assert all("Control accuracy" in r.json["withdrawn"]["reason"] for r in got)
    # Besides: only the item.final of the last three, delivered before they were withdrawn.
    others = [r.json for r in receiver.received if r.json["event"] != "item.withdrawn"]
    assert sorted(body["item"]["id"] for body in others) == sorted(i.pk for i in waiting)
    assert all(body["event"] == "item.final" for body in others)
    assert not controls & {r.json["item"]["id"] for r in receiver.received}

    # A dataset built after differs from the one before by exactly those items.
    after = _build(project, "after")
    after_items = set(
        DatasetExportItem.objects.filter(export=after).values_list("item_id", flat=True)
    )
    assert after_items == set(good)
    assert before_items - after_items == set(rushed)
    assert after.files["train"]["sha256"] != before.files["train"]["sha256"]
    assert before.counts["withheld"] == {"quarantined": 0}
    assert after.counts["withheld"] == {"quarantined": len(withdrawn_ids)}
    assert after.counts["rows"] == {"train": GOOD_ITEMS}
    by_prompt = {
        line["messages"][-2]["content"]: line for line in _lines(settings.HITL_EXPORT_DIR, before)
    }
    kept = {
        line["messages"][-2]["content"]: line for line in _lines(settings.HITL_EXPORT_DIR, after)
    }
    rushed_prompts = set(ReviewItem.objects.filter(pk__in=rushed).values_list("prompt", flat=True))
    assert set(by_prompt) - set(kept) == rushed_prompts
    assert all(kept[prompt] == by_prompt[prompt] for prompt in kept)

    # The earlier export is listed as holding quarantined decisions; the later one is not.
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("exports_quarantined", "--items", stdout=out, stderr=err)
    assert exited.value.code == 1
    listed = re.findall(r"^export (\d+) ", out.getvalue(), re.MULTILINE)
    assert listed == [str(before.pk)]
    items_line = next(line for line in out.getvalue().splitlines() if "items:" in line)
    assert {int(pk) for pk in items_line.split(":")[1].split()} == set(rushed)
    connection.close()
