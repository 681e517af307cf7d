"""One item per POST: a handful of statements, and the same rows and answer as ever.

The single-item path inserts the item, its history row and its check results
in one statement and answers from what it inserted; these tests hold it to
its statement budget and to the answer a read-back would give.
"""

from urllib.parse import urlsplit

import pytest
import redis
from rest_framework.test import APIClient
from rq.job import Job

from reviews.models import (
    CheckResult,
    ItemStatus,
    JudgeConfig,
    ReviewItem,
    SearchPending,
    WebhookDelivery,
)
from reviews.services.projects import api_key_create
from reviews.services.search import SEARCH_INDEX_JOB
from tests import factories

# The API key with its project, judge configuration and check rules (one query),
# the transaction (BEGIN / COMMIT; SAVEPOINT / RELEASE under test) and one INSERT
# make four; the room left is for the webhook outbox row of an item final at once.
MAX_STATEMENTS = 8
QUEUE_REDIS_DB = 3


def client_for(project) -> APIClient:
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Api-Key {api_key_create(project=project, name='test')[1]}"
    )
    return client


@pytest.fixture
def queue_redis(settings):
    """Every RQ queue on a Redis database of our own, emptied first."""
    parts = urlsplit(settings.REDIS_URL or "redis://127.0.0.1:6379/0")
    url = f"redis://{parts.hostname}:{parts.port or 6379}/{QUEUE_REDIS_DB}"
    connection = redis.Redis.from_url(url)
    connection.ping()  # a missing Redis is a failure, never a skip
    connection.flushdb()
    settings.RQ_INLINE = False
    settings.RQ_QUEUES = {
        name: {"URL": url, "DEFAULT_TIMEOUT": 600} for name in settings.RQ_QUEUE_NAMES
    }
    yield connection
    connection.flushdb()
    connection.close()


@pytest.fixture
def checked_project(db):
    project = factories.make_project(slug="checked", mode="gate")
    factories.make_rule(project, kind="max_length", limit=4000)
    factories.make_rule(project, kind="min_length", limit=10)
    factories.make_rule(
        project,
        name="no-ssn",
        kind="must_not_match",
        pattern=r"\d{3}-\d{2}-\d{4}",
        severity="warning",
    )
    factories.make_rule(project, kind="banned_keywords", keywords=["risk-free"])
    return project


def test_a_checked_item_is_stored_in_at_most_eight_statements(
    checked_project, django_assert_max_num_queries
):
    client = client_for(checked_project)
    client.post("/api/v1/items/", factories.item_payload(), format="json")  # warm caches
    payload = factories.item_payload(output="Call 123-45-6789 for the dose; at most 4 g a day.")

    with django_assert_max_num_queries(MAX_STATEMENTS):
        response = client.post("/api/v1/items/", payload, format="json")

    assert response.status_code == 201
    item = ReviewItem.objects.get(pk=response.json()["id"])
    assert item.status == ItemStatus.PENDING_REVIEW
    assert item.review_reasons == ["gate", "check_warning:no-ssn"]
    results = list(CheckResult.objects.filter(item=item).values_list("name", "passed"))
    assert len(results) == 4
    assert ("no-ssn", False) in results
    history = list(item.history.all())
    assert [h.history_type for h in history] == ["+"]
    assert history[0].status == ItemStatus.PENDING_REVIEW
    assert history[0].history_change_reason.startswith("Ingested via API key ")


def test_an_item_routed_to_the_judge_is_stored_and_enqueued_in_at_most_eight_statements(
    db, queue_redis, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    project = factories.make_project(slug="judged", mode="monitor", confidence_threshold=0.5)
    JudgeConfig.objects.create(
        project=project, base_url="https://judge.example.com/v1", model="judge", rubric="Be right."
    )
    client = client_for(project)
    client.post("/api/v1/items/", factories.item_payload(), format="json")  # warm caches
    queue_redis.flushdb()

    with (
        django_assert_max_num_queries(MAX_STATEMENTS),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        response = client.post("/api/v1/items/", factories.item_payload(), format="json")

    assert response.status_code == 201
    assert response.json()["status"] == ItemStatus.PENDING_JUDGE
    assert len(callbacks) == 2  # the judge's job and the search indexer
    jobs = queue_redis.lrange("rq:queue:judge", 0, -1)
    assert len(jobs) == 1
    job = Job.fetch(jobs[0].decode(), connection=queue_redis)
    assert job.func_name == "reviews.judge.jobs.judge_items_job"
    assert job.args == ([response.json()["id"]],)
    (indexer,) = queue_redis.lrange("rq:queue:default", 0, -1)
    assert Job.fetch(indexer.decode(), connection=queue_redis).func_name == SEARCH_INDEX_JOB
    assert SearchPending.objects.filter(item_id=response.json()["id"]).exists()


def test_one_search_indexer_waits_however_many_items_are_posted(
    db, queue_redis, django_capture_on_commit_callbacks
):
    project = factories.make_project(slug="busy", mode="monitor")
    client = client_for(project)
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/api/v1/items/", factories.item_payload(), format="json")
        assert response.status_code == 201
    assert queue_redis.llen("rq:queue:default") == 1
    assert SearchPending.objects.count() == 3


def test_an_item_released_at_once_writes_its_webhook_row_in_the_same_statements(
    db, queue_redis, django_assert_max_num_queries
):
    project = factories.make_project(
        slug="released", mode="monitor", webhook_url="https://hooks.example.com/hitl"
    )
    client = client_for(project)
    client.post("/api/v1/items/", factories.item_payload(), format="json")  # warm caches

    with django_assert_max_num_queries(MAX_STATEMENTS):
        response = client.post("/api/v1/items/", factories.item_payload(), format="json")

    assert response.status_code == 201
    assert response.json()["status"] == ItemStatus.AUTO_APPROVED
    assert WebhookDelivery.objects.filter(item_id=response.json()["id"]).count() == 1


@pytest.mark.parametrize(
    ("mode", "overrides", "status"),
    [
        ("gate", {}, ItemStatus.PENDING_REVIEW),
        ("gate", {"output": "A risk-free cure, at most 4 g a day."}, ItemStatus.AUTO_REJECTED),
        ("monitor", {}, ItemStatus.AUTO_APPROVED),
        ("audit", {}, ItemStatus.AUTO_APPROVED),
    ],
)
def test_the_answer_built_from_the_insert_is_the_answer_read_back(
    checked_project, mode, overrides, status
):
    checked_project.mode = "gate" if mode == "gate" else "monitor"
    checked_project.audit_sample_rate = 1.0 if mode == "audit" else 0.0
    checked_project.save()
    client = client_for(checked_project)
    payload = factories.item_payload(**overrides)

    created = client.post("/api/v1/items/", payload, format="json")
    # An identical resubmit answers with the stored item, read from the database.
    resubmitted = client.post("/api/v1/items/", payload, format="json")

    assert (created.status_code, resubmitted.status_code) == (201, 200)
    assert created.json()["status"] == status
    assert created.json()["is_audit"] == (mode == "audit")
    assert created.json() == resubmitted.json()


def test_a_different_resubmit_of_one_item_is_a_conflict_and_stores_nothing(checked_project):
    client = client_for(checked_project)
    payload = factories.item_payload()
    client.post("/api/v1/items/", payload, format="json")

    response = client.post(
        "/api/v1/items/", {**payload, "output": "Something else entirely."}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["conflicting_external_ids"] == [payload["external_id"]]
    item = ReviewItem.objects.get(external_id=payload["external_id"])
    assert item.output == payload["output"]
    assert item.history.count() == 1
    assert CheckResult.objects.filter(item=item).count() == 4


def test_the_statement_budget_counts_the_insert(
    checked_project, django_assert_num_queries, settings
):
    """The budget would mean nothing if the writes escaped the count."""
    settings.HITL_API_KEY_CACHE_SECONDS = 0  # the key looked up on every request
    client = client_for(checked_project)
    client.post("/api/v1/items/", factories.item_payload(), format="json")
    with django_assert_num_queries(4) as captured:
        client.post("/api/v1/items/", factories.item_payload(), format="json")
    assert any("INSERT INTO" in q["sql"] for q in captured.captured_queries)


def test_a_key_seen_a_moment_ago_is_not_looked_up_again(checked_project, django_assert_num_queries):
    client = client_for(checked_project)
    client.post("/api/v1/items/", factories.item_payload(), format="json")
    with django_assert_num_queries(3) as captured:  # SAVEPOINT, INSERT, RELEASE
        response = client.post("/api/v1/items/", factories.item_payload(), format="json")
    assert response.status_code == 201
    assert not any("reviews_apikey" in q["sql"] for q in captured.captured_queries)
    # The rules came with the key: all four ran on the item.
    assert len(response.json()["checks"]) == 4


def _statements(captured) -> list[str]:
    return [q["sql"].split()[0].upper() for q in captured.captured_queries]


def test_outside_a_transaction_an_item_is_one_statement_without_begin_or_commit(
    transactional_db, queue_redis, django_assert_num_queries
):
    project = factories.make_project(slug="autocommit", mode="gate")
    factories.make_rule(project, kind="min_length", limit=10)
    client = client_for(project)
    client.post("/api/v1/items/", factories.item_payload(), format="json")  # key remembered

    with django_assert_num_queries(1) as captured:
        response = client.post("/api/v1/items/", factories.item_payload(), format="json")

    assert _statements(captured) == ["WITH"]
    assert response.status_code == 201
    item = ReviewItem.objects.get(pk=response.json()["id"])
    assert item.status == ItemStatus.PENDING_REVIEW
    assert item.history.count() == 1
    assert CheckResult.objects.filter(item=item).count() == 1
    assert SearchPending.objects.filter(item_id=item.pk).exists()


def test_outside_a_transaction_a_released_item_commits_with_its_webhook_row(
    transactional_db, queue_redis, django_assert_max_num_queries
):
    project = factories.make_project(
        slug="released-at-once", mode="monitor", webhook_url="https://hooks.example.com/hitl"
    )
    client = client_for(project)
    client.post("/api/v1/items/", factories.item_payload(), format="json")

    with django_assert_max_num_queries(MAX_STATEMENTS) as captured:
        response = client.post("/api/v1/items/", factories.item_payload(), format="json")

    assert response.json()["status"] == ItemStatus.AUTO_APPROVED
    statements = _statements(captured)
    assert statements[0] == "BEGIN" and statements[-1] == "COMMIT", statements
    assert WebhookDelivery.objects.filter(item_id=response.json()["id"]).count() == 1
