"""The search index off the ingest path: pending rows, the indexer job on a real
``rqworker``, the cron sweep, and concurrent indexers sharing the queue."""

import os
import subprocess
import sys
import threading
from urllib.parse import urlsplit

import fakeredis
import pytest
import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Q
from rq.cron import CronScheduler

from reviews.models import ItemSearch, ReviewItem, SearchPending
from reviews.search.jobs import search_index_sweep_job
from reviews.services.search import SEARCH_QUEUED_KEY, search_index_pending
from reviews.workspace.services import ReviewInput, assignment_assign, review_submit
from tests import factories
from tests.judge.conftest import database_url

pytestmark = pytest.mark.django_db(transaction=True)
SEARCH_REDIS_DB = 5


@pytest.fixture
def search_redis(settings):
    """Every RQ queue on a Redis database of our own, emptied first."""
    parts = urlsplit(settings.REDIS_URL or "redis://127.0.0.1:6379/0")
    url = f"redis://{parts.hostname}:{parts.port or 6379}/{SEARCH_REDIS_DB}"
    connection = redis.Redis.from_url(url)
    connection.ping()  # a missing Redis is a failure, never a skip
    connection.flushdb()
    settings.RQ_INLINE = False
    settings.RQ_QUEUES = {
        name: {"URL": url, "DEFAULT_TIMEOUT": 600} for name in settings.RQ_QUEUE_NAMES
    }
    yield url
    connection.flushdb()
    connection.close()


def run_worker(redis_url: str) -> str:
    """``manage.py rqworker default --burst``: a real worker process, until the queue is empty."""
    done = subprocess.run(
        [sys.executable, "manage.py", "rqworker", "default", "--burst"],
        cwd=settings.BASE_DIR,
        env={
            **os.environ,
            "DATABASE_URL": database_url(),
            "REDIS_URL": redis_url,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def found(text: str) -> set[int]:
    return set(ReviewItem.objects.search(text).values_list("pk", flat=True))


def test_items_and_later_notes_become_searchable_once_the_worker_indexes_them(
    project, reviewer, search_redis
):
    queue = redis.Redis.from_url(search_redis)
    (item,) = factories.ingest(project, factories.item_payload(prompt="Warfarin and aspirin?"))
    assert found("warfarin") == set()  # stored, not yet indexed
    exact = ReviewItem.objects.search(item.external_id, or_exact=Q(external_id=item.external_id))
    assert set(exact.values_list("pk", flat=True)) == {item.pk}  # an exact id at once
    assert SearchPending.objects.filter(item_id=item.pk).exists()
    assert queue.llen("rq:queue:default") == 1

    run_worker(search_redis)
    assert found("warfarin") == {item.pk}
    assert not SearchPending.objects.exists()
    assert not queue.exists(SEARCH_QUEUED_KEY)  # the job cleared its flag

    senior, _ = get_user_model().objects.get_or_create(username="boss", is_superuser=True)
    assignment = assignment_assign(item_id=item.pk, reviewer=reviewer, by=senior)
    review_submit(
        assignment_id=assignment.pk,
        reviewer=reviewer,
        data=ReviewInput(
            verdict="reject",
            reason_code="unsafe",
            severity="major",
            note="Bleeding interaction missed",
        ),
    )
    assert found("bleeding") == set()
    assert queue.llen("rq:queue:default") == 1
    run_worker(search_redis)
    assert found("bleeding") == {item.pk}
    assert found("warfarin") == {item.pk}
    assert ItemSearch.objects.filter(item_id=item.pk).count() == 1


def test_the_sweep_indexes_pending_items_when_no_job_ran(project, search_redis):
    queue = redis.Redis.from_url(search_redis)
    items = factories.ingest(project, *[factories.item_payload() for _ in range(3)])
    queue.flushdb()  # the indexer job was lost (Redis restarted)
    assert found("paracetamol") == set()

    scheduler = CronScheduler(connection=fakeredis.FakeStrictRedis())
    scheduler.load_config_from_file("hitlplatform.schedule")
    (sweep,) = [job for job in scheduler.get_jobs() if job.func is search_index_sweep_job]
    assert sweep.queue_name == "default"
    assert sweep.func() == 3
    assert found("paracetamol") == {item.pk for item in items}
    assert search_index_sweep_job() == 0


def test_inline_queues_index_at_commit(project, settings):
    settings.RQ_INLINE = True
    (item,) = factories.ingest(project, factories.item_payload(output="Dabigatran is fine."))
    assert found("dabigatran") == {item.pk}
    assert not SearchPending.objects.exists()


def test_concurrent_indexers_share_the_queue_without_losing_or_repeating_a_row(project):
    total = 240
    items = factories.ingest(project, *[factories.item_payload() for _ in range(total)])
    assert SearchPending.objects.count() == total
    start = threading.Barrier(2)
    counts: list[int] = []
    errors: list[BaseException] = []

    def index() -> None:
        try:
            connection.ensure_connection()
            start.wait()
            counts.append(search_index_pending(limit=7))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=index) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sum(counts) == total  # a row built twice would count twice
    assert len(counts) == 2
    assert ItemSearch.objects.filter(item_id__in=[i.pk for i in items]).count() == total
    # A statement that waited on the other's locks would come back short and stop early.
    assert not SearchPending.objects.exists()


def test_a_deleted_items_pending_row_is_dropped(project):
    (kept, gone) = factories.ingest(project, factories.item_payload(), factories.item_payload())
    ReviewItem.objects.filter(pk=gone.pk).delete()
    assert search_index_pending() == 1
    assert not SearchPending.objects.exists()
    assert list(ItemSearch.objects.values_list("item_id", flat=True)) == [kept.pk]
