"""Retries and jobs lost with Redis or with a worker: the sweeps re-create them.

The database is the source of truth. A Redis restart without persistence
wipes the scheduled judge and webhook retries; the sweeps (``manage.py cron``,
itself surviving the restart) find the items still in ``pending_judge`` with
no live job and the deliveries past due, and each is retried exactly once. A
worker killed with SIGKILL in the middle of a judge call leaves a started job
whose heartbeat lapses; the sweep enqueues its items again.
"""

import time
from collections import Counter

import pytest
from django.db.models import Count

from reviews.models import DeliveryStatus, ItemStatus, JudgeVerdict, ReviewItem, WebhookDelivery
from tests import factories
from tests.faults.conftest import cron, rqworker, wait_for, worker_env
from tests.judge.conftest import make_judge
from tests.monitoring.receiver import WebhookReceiver

pytestmark = pytest.mark.django_db(transaction=True)

SWEEPS = {
    "HITL_RECONCILE_INTERVAL": "5",
    "HITL_JUDGE_SWEEP_GRACE_SECONDS": "2",
    "HITL_WEBHOOK_SWEEP_INTERVAL": "5",
    "HITL_WEBHOOK_SWEEP_GRACE_SECONDS": "2",
}


def calls_per_token(fake_judge) -> Counter:
    calls = Counter()
    for request in fake_judge.requests:
        calls[request["messages"][-1]["content"].split("tok-")[1][:4]] += 1
    return calls


def test_retries_wiped_by_a_redis_restart_are_recreated_by_the_sweeps(
    private_redis, fake_judge, spawn
):
    judged = factories.make_project(name="Judged", slug="judged", mode="monitor")
    make_judge(judged, fake_judge, max_retries=2)
    receiver = WebhookReceiver(secret="s3cret").start()
    hooked = factories.make_project(
        name="Hooked",
        slug="hooked",
        mode="monitor",
        webhook_url=receiver.url,
        webhook_secret="s3cret",
    )
    receiver.statuses = [500] * 5  # every first attempt fails: a retry is scheduled
    items = factories.ingest(
        judged,
        *[factories.item_payload(output=f"tok-{n:04d}| [[judge:429once:k{n}]]") for n in range(10)],
    )
    factories.ingest(hooked, *[factories.item_payload() for _ in range(5)])
    env = worker_env(
        private_redis.url(),
        HITL_JUDGE_RETRY_BACKOFF="25",
        HITL_WEBHOOK_BACKOFF_SECONDS="25",
        HITL_WEBHOOK_MAX_ATTEMPTS="5",
        **SWEEPS,
    )
    worker = rqworker(spawn, env, "judge", "webhooks")
    sweeper = cron(spawn, env)
    connection = private_redis.client()
    wait_for(
        lambda: len(fake_judge.requests) == 10 and len(receiver.received) == 5,
        timeout=60,
        what="every first attempt",
    )
    wait_for(
        lambda: (
            connection.zcard("rq:scheduled:judge") == 1
            and connection.zcard("rq:scheduled:webhooks") == 5
        ),
        timeout=20,
        what="the retries scheduled",
    )
    # The worker read HITL_JUDGE_RETRY_BACKOFF (25 s; this process has 10 s).
    ((_job, due),) = connection.zrange("rq:scheduled:judge", 0, -1, withscores=True)
    assert due - time.time() > 15
    time.sleep(7)  # a sweep or more runs: a retry waiting in the scheduler is left alone
    assert len(fake_judge.requests) == 10
    assert len(receiver.received) == 5

    private_redis.restart(down_seconds=1)  # no persistence: every job and retry is gone
    restarted = time.monotonic()
    assert connection.dbsize() == 0
    pending = ReviewItem.objects.filter(
        pk__in=[i.pk for i in items], status=ItemStatus.PENDING_JUDGE
    )
    try:
        wait_for(lambda: not pending.exists(), timeout=60, what="the judge retries")
        judged_after = time.monotonic() - restarted
        wait_for(
            lambda: WebhookDelivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == 5,
            timeout=60,
            what="the webhook retries",
        )
        delivered_after = time.monotonic() - restarted
    except AssertionError:
        raise AssertionError(
            f"worker:\n{worker.log()[-4000:]}\ncron:\n{sweeper.log()[-3000:]}"
        ) from None
    assert calls_per_token(fake_judge) == Counter({f"{n:04d}": 2 for n in range(10)})
    assert JudgeVerdict.objects.filter(item__in=items).count() == 10
    assert {i.status for i in ReviewItem.objects.filter(pk__in=[i.pk for i in items])} == {
        ItemStatus.AUTO_APPROVED
    }
    attempts = WebhookDelivery.objects.annotate(n=Count("attempt_log")).values_list("n", flat=True)
    assert sorted(attempts) == [2] * 5
    assert (
        Counter(r.headers["X-HITL-Delivery"] for r in receiver.received).most_common(1)[0][1] == 2
    )
    assert sweeper.alive(), sweeper.log()[-3000:]
    receiver.stop()
    print(
        f"retries_after_redis_wipe: judge_items=10 judge_calls={len(fake_judge.requests)} "
        f"judged_after_s={judged_after:.1f} webhooks=5 attempts={sum(attempts)} "
        f"delivered_after_s={delivered_after:.1f} (retries were due 25 s after the first try)"
    )


def test_a_worker_killed_mid_judge_leaves_nothing_stuck(private_redis, fake_judge, spawn):
    project = factories.make_project(name="Killed", slug="killed", mode="monitor")
    make_judge(project, fake_judge, timeout_seconds=20.0)
    env = worker_env(private_redis.url(), **SWEEPS)
    first = rqworker(spawn, env, "judge")
    sweeper = cron(spawn, env)
    items = factories.ingest(
        project,
        *[factories.item_payload(output=f"tok-{n:04d}| [[judge:slow]]") for n in range(5)],
    )
    wait_for(lambda: fake_judge.in_flight == 5, timeout=60, what="the calls under way")
    first.kill_tree()  # worker, work horse and scheduler: SIGKILL
    killed = time.monotonic()
    second = rqworker(spawn, env, "judge")  # what a supervisor would start
    pending = ReviewItem.objects.filter(
        pk__in=[i.pk for i in items], status=ItemStatus.PENDING_JUDGE
    )
    try:
        wait_for(lambda: not pending.exists(), timeout=120, what="the killed job's items")
    except AssertionError:
        raise AssertionError(
            f"second:\n{second.log()[-4000:]}\ncron:\n{sweeper.log()[-3000:]}"
        ) from None
    took = time.monotonic() - killed
    assert JudgeVerdict.objects.filter(item__in=items).count() == 5
    assert calls_per_token(fake_judge) == Counter({f"{n:04d}": 2 for n in range(5)})
    print(
        f"worker_killed_mid_judge: items=5 judged_after_kill_s={took:.1f} "
        f"(heartbeat lease {3 * 10} s, sweep every {SWEEPS['HITL_RECONCILE_INTERVAL']} s, "
        f"judge call 8 s)"
    )
    assert took < 120
