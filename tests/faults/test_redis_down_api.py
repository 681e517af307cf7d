"""Redis stopped during a stream of API ingests (through gunicorn, over HTTP).

Every request must answer 2xx (the throttle fails open to a per-process limit,
jobs that cannot be enqueued wait in the database), every item is stored and
routed to pending_judge or a final status, and once Redis is back a real
worker (its scheduler started by the worker class, no flag) and ``manage.py cron``
judge each waiting item exactly once and deliver each webhook, with no manual
step.
"""

import time
from collections import Counter

import pytest

from reviews.models import ItemStatus, JudgeVerdict, ReviewItem, WebhookDelivery
from reviews.services.projects import api_key_create
from tests import factories
from tests.faults.conftest import cron, gunicorn, post_json, rqworker, wait_for, worker_env
from tests.judge.conftest import make_judge
from tests.monitoring.receiver import WebhookReceiver

pytestmark = pytest.mark.django_db(transaction=True)

FINAL = {ItemStatus.AUTO_REJECTED, ItemStatus.AUTO_APPROVED}


def payload(n: int, marker: str) -> dict:
    # "tok-0007|" names the item in the judge's request log; "BLOCKED" fails a check.
    return factories.item_payload(
        external_id=f"redis-down-{n:04d}", output=f"tok-{n:04d}| 4 g per day. {marker}"
    )


def test_api_keeps_storing_while_redis_is_down_and_the_sweeps_finish(
    private_redis, fake_judge, spawn, tmp_path
):
    receiver = WebhookReceiver(secret="s3cret").start()
    project = factories.make_project(
        name="Judged",
        slug="judged",
        mode="monitor",
        confidence_threshold=0.5,
        webhook_url=receiver.url,
        webhook_secret="s3cret",
    )
    factories.make_rule(project, kind="must_not_match", pattern="BLOCKED", severity="blocking")
    make_judge(project, fake_judge)
    _key, key = api_key_create(project=project, name="faults")
    env = worker_env(private_redis.url(), HITL_API_THROTTLE="100000/min")
    web = gunicorn(spawn, env)
    url = web.url + "/api/v1/items/"

    statuses: Counter = Counter()
    sent: dict[str, str] = {}
    n = 0

    def send_round(batch_size: int) -> None:
        nonlocal n
        batch = []
        for _ in range(batch_size):
            marker = ["[[judge:pass]]", "[[judge:flag]]", "BLOCKED"][n % 3]
            batch.append(payload(n, marker))
            sent[batch[-1]["external_id"]] = marker
            n += 1
        single = batch.pop()
        status, _headers, body = post_json(url, {"items": batch}, key)
        statuses[status] += 1
        assert 200 <= status < 300, (status, body, web.process.log()[-3000:])
        status, _headers, body = post_json(url, single, key)
        statuses[status] += 1
        assert 200 <= status < 300, (status, body, web.process.log()[-3000:])

    for _ in range(5):  # Redis up
        send_round(10)
    private_redis.stop()
    down_at = time.monotonic()
    for _ in range(15):  # Redis down
        send_round(10)
    during = sum(statuses.values()) - 10

    assert ReviewItem.objects.filter(project=project).count() == len(sent)
    stored = dict(ReviewItem.objects.filter(project=project).values_list("external_id", "status"))
    assert set(stored) == set(sent)
    for external_id, marker in sent.items():
        wanted = {ItemStatus.AUTO_REJECTED} if marker == "BLOCKED" else {ItemStatus.PENDING_JUDGE}
        assert stored[external_id] in wanted, (external_id, stored[external_id])
    log = web.process.log()
    assert "Degraded (throttle" in log, log[-3000:]
    assert "Degraded (enqueue" in log, log[-3000:]

    private_redis.start()  # back, and empty: every job enqueued before is gone
    up_at = time.monotonic()
    sweeps = {
        "HITL_RECONCILE_INTERVAL": "3",
        "HITL_JUDGE_SWEEP_GRACE_SECONDS": "1",
        "HITL_WEBHOOK_SWEEP_INTERVAL": "3",
        "HITL_WEBHOOK_SWEEP_GRACE_SECONDS": "1",
    }
    worker = rqworker(spawn, worker_env(private_redis.url(), **sweeps), "judge", "webhooks")
    sweeper = cron(spawn, worker_env(private_redis.url(), **sweeps))
    pending = ReviewItem.objects.filter(project=project, status=ItemStatus.PENDING_JUDGE)
    try:
        wait_for(lambda: not pending.exists(), timeout=75, what="every waiting item judged")
        judged_at = time.monotonic()
        finals = ReviewItem.objects.filter(project=project, status__in=FINAL).count()
        wait_for(
            lambda: WebhookDelivery.objects.filter(status="delivered").count() == finals,
            timeout=45,
            what="a webhook per final item",
        )
    except AssertionError:
        raise AssertionError(
            f"worker:\n{worker.log()[-4000:]}\ncron:\n{sweeper.log()[-3000:]}"
        ) from None
    delivered_at = time.monotonic()

    to_judge = [e for e, m in sent.items() if m != "BLOCKED"]
    verdicts = Counter(
        JudgeVerdict.objects.filter(item__project=project).values_list(
            "item__external_id", flat=True
        )
    )
    assert verdicts == Counter(to_judge)  # one verdict each
    calls = Counter()
    for request in fake_judge.requests:
        text = request["messages"][-1]["content"]
        calls[text.split("tok-")[1][:4]] += 1
    assert sorted(calls.values()) == [1] * len(to_judge)  # one judge call each
    routed = dict(ReviewItem.objects.filter(project=project).values_list("external_id", "status"))
    for external_id in to_judge:
        expected = (
            ItemStatus.AUTO_APPROVED
            if sent[external_id] == "[[judge:pass]]"
            else ItemStatus.PENDING_REVIEW
        )
        assert routed[external_id] == expected
    deliveries = Counter(r.headers["X-HITL-Delivery"] for r in receiver.received)
    assert set(deliveries.values()) == {1}
    receiver.stop()
    print(
        f"redis_down_api: requests={sum(statuses.values())} during_outage={during} "
        f"statuses={dict(statuses)} items={len(sent)} judged={len(to_judge)} "
        f"final_at_ingest={list(sent.values()).count('BLOCKED')} "
        f"outage_s={up_at - down_at:.1f} judged_after_s={judged_at - up_at:.1f} "
        f"webhooks={len(deliveries)} delivered_after_s={delivered_at - up_at:.1f}"
    )
