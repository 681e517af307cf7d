"""Real ``rqworker`` processes on real Redis against a real HTTP judge on loopback."""

import socket
import subprocess
from datetime import timedelta

import pytest
import redis
from django.core.management import CommandError, call_command
from django.utils import timezone
from rq import Queue

from reviews.models import ItemStatus, JudgeVerdict, ReviewItem
from tests.factories import ingest, item_payload
from tests.judge.conftest import make_judge, queues_at, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def pending(ids) -> int:
    return ReviewItem.objects.filter(pk__in=ids, status=ItemStatus.PENDING_JUDGE).count()


def by_marker(items) -> dict[str, ReviewItem]:
    fresh = {item.pk: item for item in ReviewItem.objects.filter(pk__in=[i.pk for i in items])}
    return {item.output.split("[[judge:")[1].split("]]")[0]: fresh[item.pk] for item in items}


def test_worker_routes_every_kind_of_answer(
    judged_monitor_project, fake_judge, judge_redis, start_worker, settings
):
    settings.HITL_JUDGE_CHUNK_SIZE = 3
    make_judge(judged_monitor_project, fake_judge, max_retries=1, timeout_seconds=1.0)
    markers = ["pass", "flag", "lowpass", "garbage", "500", "429", "429once:w1", "slow"]
    items = ingest(
        judged_monitor_project,
        *[item_payload(output=f"Take 1 g. [[judge:{marker}]]") for marker in markers],
    )
    assert {item.status for item in items} == {ItemStatus.PENDING_JUDGE}
    assert len(Queue("judge", connection=redis.Redis.from_url(judge_redis))) == 3

    worker = start_worker(judge_redis, "--with-scheduler")
    ids = [item.pk for item in items]
    try:
        wait_for(lambda: pending(ids) == 0, timeout=180, message="all items judged")
    except AssertionError:
        still = ReviewItem.objects.filter(pk__in=ids, status=ItemStatus.PENDING_JUDGE)
        queued = len(Queue("judge", connection=redis.Redis.from_url(judge_redis)))
        raise AssertionError(
            f"Still pending: {[item.output for item in still]}; {queued} job(s) queued\n"
            f"Worker log:\n{worker.log()[-6000:]}"
        ) from None
    assert worker.process.poll() is None, worker.log()

    result = by_marker(items)
    approved = {ItemStatus.AUTO_APPROVED}
    assert result["pass"].status in approved
    assert result["pass"].final_output == result["pass"].output
    assert result["429once:w1"].status in approved  # 429 first, then pass on the RQ retry
    for marker in ["flag", "lowpass", "garbage", "500", "429", "slow"]:
        item = result[marker]
        assert item.status == ItemStatus.PENDING_REVIEW, marker
        assert item.in_queue and item.final_output is None, marker
    assert "judge_flag" in result["flag"].review_reasons
    assert "judge_flag" in result["lowpass"].review_reasons
    for marker in ["garbage", "500", "429", "slow"]:
        assert "judge_flag:error" in result[marker].review_reasons, marker

    verdicts = {v.item_id: v for v in JudgeVerdict.objects.filter(item_id__in=ids)}
    assert len(verdicts) == len(markers)
    assert verdicts[result["429once:w1"].pk].attempts == 2
    assert verdicts[result["500"].pk].attempts == 2  # retried once, then an error verdict
    assert verdicts[result["garbage"].pk].attempts == 1  # unparseable: not retried
    assert len(fake_judge.requests_for("[[judge:500]]")) == 2
    assert len(fake_judge.requests_for("[[judge:garbage]]")) == 1


def test_worker_with_the_anthropic_protocol(
    judged_monitor_project, fake_judge, judge_redis, start_worker
):
    make_judge(judged_monitor_project, fake_judge, backend="anthropic", api_key="ak-test")
    items = ingest(
        judged_monitor_project,
        item_payload(output="Fine. [[judge:pass]]"),
        item_payload(output="Hmm. [[judge:flag]]"),
        item_payload(output="Oops. [[judge:garbage]]"),
    )
    worker = start_worker(judge_redis, "--burst")
    assert worker.process.wait(timeout=180) == 0, worker.log()
    result = by_marker(items)
    assert result["pass"].status == ItemStatus.AUTO_APPROVED
    assert result["flag"].status == ItemStatus.PENDING_REVIEW
    assert result["garbage"].status == ItemStatus.PENDING_REVIEW
    assert result["flag"].judge_verdicts.get().backend == "anthropic"
    assert result["garbage"].judge_verdicts.get().label == "error"


def test_a_retried_job_for_judged_items_does_nothing(
    judged_monitor_project, fake_judge, judge_redis, start_worker
):
    make_judge(judged_monitor_project, fake_judge)
    items = ingest(judged_monitor_project, item_payload(output="[[judge:flag]]"))
    first = start_worker(judge_redis, "--burst")
    assert first.process.wait(timeout=180) == 0, first.log()
    item = ReviewItem.objects.get(pk=items[0].pk)
    assert item.status == ItemStatus.PENDING_REVIEW
    calls, history = len(fake_judge.requests), item.history.count()

    queue = Queue("judge", connection=redis.Redis.from_url(judge_redis))
    job = queue.enqueue("reviews.judge.jobs.judge_items_job", [item.pk])
    second = start_worker(judge_redis, "--burst")
    assert second.process.wait(timeout=180) == 0, second.log()
    assert f"Successfully completed reviews.judge.jobs.judge_items_job([{item.pk}])" in second.log()
    assert job.id in second.log()
    assert len(fake_judge.requests) == calls
    assert JudgeVerdict.objects.filter(item=item).count() == 1
    assert item.history.count() == history


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port)

    def up():
        try:
            return client.ping()
        except redis.ConnectionError:
            return False

    wait_for(up, timeout=10, message=f"redis-server on {port}")
    return process


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=10)


def test_redis_down_during_ingest_loses_nothing_and_reconcile_finishes(
    judged_monitor_project, fake_judge, start_worker, settings, caplog
):
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    settings.RQ_INLINE = False
    settings.RQ_QUEUES = queues_at(url)
    settings.HITL_JUDGE_CHUNK_SIZE = 7
    make_judge(judged_monitor_project, fake_judge)
    server = start_redis(port)
    try:
        stop(server)  # Redis goes down just before the ingest
        markers = ["pass", "flag"] * 10
        items = ingest(
            judged_monitor_project,
            *[item_payload(output=f"[[judge:{m}]] #{i}") for i, m in enumerate(markers)],
        )
        ids = [item.pk for item in items]
        assert pending(ids) == 20  # stored, waiting for the judge
        assert "Could not enqueue" in caplog.text
        with pytest.raises(CommandError, match="Redis is unavailable"):
            call_command("reconcile", "--older-than-minutes", "0")

        server = start_redis(port)  # Redis is back
        call_command("reconcile", "--older-than-minutes", "0")
        assert len(Queue("judge", connection=redis.Redis.from_url(url))) == 3
        worker = start_worker(url, "--burst")
        assert worker.process.wait(timeout=180) == 0, worker.log()
        assert pending(ids) == 0
        statuses = list(
            ReviewItem.objects.filter(pk__in=ids).order_by("pk").values_list("status", flat=True)
        )
        expected = {"pass": ItemStatus.AUTO_APPROVED, "flag": ItemStatus.PENDING_REVIEW}
        assert statuses == [expected[m] for m in markers]
        assert JudgeVerdict.objects.filter(item_id__in=ids).count() == 20
    finally:
        if server.poll() is None:
            stop(server)


def test_reconcile_only_touches_items_stuck_longer_than_the_timeout(
    judged_monitor_project, fake_judge, judge_redis
):
    make_judge(judged_monitor_project, fake_judge)
    old, fresh = ingest(judged_monitor_project, item_payload(), item_payload())
    connection = redis.Redis.from_url(judge_redis)
    connection.flushdb()  # forget the ingest's own jobs: pretend they were lost
    ReviewItem.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(minutes=30))
    call_command("reconcile", "--older-than-minutes", "15")
    jobs = Queue("judge", connection=connection).get_jobs()
    assert [job.args for job in jobs] == [([old.pk],)]
    assert jobs[0].func_name == "reviews.judge.jobs.judge_items_job"
    assert ReviewItem.objects.get(pk=fresh.pk).status == ItemStatus.PENDING_JUDGE
