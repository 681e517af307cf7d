"""The scheduler with more than one worker, and across a Redis restart.

Two real ``rqworker`` processes (started without ``--with-scheduler``: the
worker class runs it) share a private Redis; one holds the scheduler lock. A
judge retry due in 2 s is scheduled and the holder is stopped (SIGTERM), killed
(SIGKILL: its scheduler child is orphaned), or lost with all its processes
(SIGKILL to the tree: the lock must lapse). The other worker takes the lock
over and the retry runs, within a bounded time.
"""

import os
import signal
import time
from pathlib import Path

import pytest

from reviews.models import ItemStatus, ReviewItem
from reviews.services.judge_queue import judge_retry_enqueue
from tests import factories
from tests.faults.conftest import parent_of, rqworker, wait_for, worker_env
from tests.judge.conftest import make_judge

pytestmark = pytest.mark.django_db(transaction=True)

LOCK = "rq:scheduler-lock:judge"


def pending_item(project, fake_judge, private_redis) -> ReviewItem:
    make_judge(project, fake_judge)
    (item,) = factories.ingest(project, factories.item_payload(output="Fine. [[judge:pass]]"))
    private_redis.client().flushdb()  # forget the ingest's job: only the retry is left
    return item


def lock_holder_pid(connection) -> int | None:
    """The pid of the worker whose scheduler holds the judge queue's lock."""
    name = connection.get(LOCK)
    if name is None:
        return None
    pid = connection.hget(f"rq:scheduler:{name.decode()}", "pid")
    if pid is None:
        return None
    try:
        return parent_of(int(pid))
    except FileNotFoundError:
        return None


def judged(item) -> bool:
    return ReviewItem.objects.get(pk=item.pk).status != ItemStatus.PENDING_JUDGE


@pytest.fixture
def judged_project(db):
    return factories.make_project(name="Sched", slug="sched", mode="monitor")


@pytest.mark.parametrize("how", ["sigterm", "sigkill", "sigkill_tree"])
def test_another_worker_takes_the_scheduler_over(
    how, judged_project, fake_judge, private_redis, spawn, settings
):
    item = pending_item(judged_project, fake_judge, private_redis)
    env = worker_env(private_redis.url())
    workers = {w.pid: w for w in (rqworker(spawn, env, "judge"), rqworker(spawn, env, "judge"))}
    connection = private_redis.client()
    holder_pid = wait_for(
        lambda: lock_holder_pid(connection), timeout=60, what="a worker to hold the lock"
    )
    holder = workers[holder_pid]
    (other,) = [w for pid, w in workers.items() if pid != holder_pid]
    wait_for(lambda: connection.scard("rq:workers") == 2, timeout=60, what="both workers up")

    settings.HITL_JUDGE_RETRY_BACKOFF = 1  # the retry is due in 2 s
    assert judge_retry_enqueue(item_ids=[item.pk], attempt=2) == 1
    killed_at = time.monotonic()
    if how == "sigterm":
        os.kill(holder.pid, signal.SIGTERM)
    elif how == "sigkill":
        os.kill(holder.pid, signal.SIGKILL)
    else:
        holder.kill_tree()
    try:
        wait_for(lambda: judged(item), timeout=60, what="the retry to run")
    except AssertionError:
        logs = f"holder:\n{holder.log()[-3000:]}\nother:\n{other.log()[-3000:]}"
        raise AssertionError(logs) from None
    took = time.monotonic() - killed_at
    assert lock_holder_pid(connection) == other.pid
    assert len(fake_judge.requests) == 1
    print(f"scheduler_takeover[{how}]: retry due 2 s after the kill ran after {took:.1f} s")
    # SIGTERM releases the lock, SIGKILL's orphan releases it: one check interval.
    # A machine lost leaves it to lapse (HITL_SCHEDULER_LOCK_SECONDS, 15 s).
    assert took < (15 if how != "sigkill_tree" else 35)


def test_the_scheduler_comes_back_after_a_redis_restart(
    judged_project, fake_judge, private_redis, spawn, settings
):
    item = pending_item(judged_project, fake_judge, private_redis)
    worker = rqworker(spawn, worker_env(private_redis.url()), "judge")
    connection = private_redis.client()
    wait_for(lambda: lock_holder_pid(connection), timeout=60, what="the scheduler")
    scheduler_pid = int(connection.hget(f"rq:scheduler:{connection.get(LOCK).decode()}", "pid"))

    private_redis.restart(down_seconds=3)  # every key gone, the scheduler child died
    restarted_at = time.monotonic()
    settings.HITL_JUDGE_RETRY_BACKOFF = 1
    assert judge_retry_enqueue(item_ids=[item.pk], attempt=2) == 1
    try:
        wait_for(lambda: judged(item), timeout=60, what="the retry scheduled after the restart")
    except AssertionError:
        raise AssertionError(worker.log()[-4000:]) from None
    took = time.monotonic() - restarted_at
    assert worker.alive()
    status = Path(f"/proc/{scheduler_pid}/status")
    assert not status.exists() or "zombie" in status.read_text()  # the old child died
    print(f"scheduler_after_redis_restart: retry due 2 s after the restart ran after {took:.1f} s")
    assert took < 30
