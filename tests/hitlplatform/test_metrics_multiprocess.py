"""/metrics under gunicorn's multiprocess mode, with a real ``rqworker`` on the same machine.

Items go in over HTTP to a gunicorn with two workers; a real worker judges
them against a loopback model, delivers their webhooks to a loopback receiver
and builds an export asked for over HTTP. Both share PROMETHEUS_MULTIPROC_DIR,
so every scrape, whichever gunicorn worker answers it, carries the events of
all of them.
"""

import json
import urllib.request

import pytest
import redis
from prometheus_client.mmap_dict import MmapedDict

from datasets.models import DatasetExport, ExportStatus
from reviews.models import DeliveryStatus, ItemStatus, ReviewItem, WebhookDelivery
from reviews.services.projects import api_key_create
from tests import factories
from tests.hitlplatform.servers import database_url_of_tests
from tests.hitlplatform.test_metrics import samples, value
from tests.judge.conftest import Worker, make_judge, queues_at, redis_host_port, wait_for
from tests.judge.fake_llm import FakeJudge
from tests.monitoring.receiver import WebhookReceiver

pytestmark = pytest.mark.django_db(transaction=True)

REDIS_DB = 10  # this module's own Redis database
TOKEN = "multiprocess-metrics-token-0123456789"
SECRET = "metrics-receiver-secret"
PROJECT = "metrics-e2e"


@pytest.fixture
def ops_redis(settings):
    host, port = redis_host_port()
    url = f"redis://{host}:{port}/{REDIS_DB}"
    connection = redis.Redis.from_url(url)
    connection.ping()  # a missing Redis is a failure, never a skip
    connection.flushdb()
    settings.RQ_INLINE = False
    settings.RQ_QUEUES = queues_at(url)
    yield url
    connection.flushdb()
    connection.close()


@pytest.fixture
def fake_judge():
    judge = FakeJudge().start()
    yield judge
    judge.stop()


@pytest.fixture
def receiver():
    started = WebhookReceiver(secret=SECRET).start()
    yield started
    started.stop()


@pytest.fixture
def worker(tmp_path):
    workers: list[Worker] = []

    def start(redis_url: str, env: dict) -> Worker:
        started = Worker(
            redis_url, tmp_path / "worker.log", "webhooks", "exports", "--with-scheduler", env=env
        )
        workers.append(started)
        return started

    yield start
    for started in workers:
        started.stop()
        print(started.log()[-4000:])


def post_json(url: str, body: dict, key: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Api-Key {key}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def test_events_of_web_and_worker_processes_reach_every_scrape(
    tmp_path, ops_redis, fake_judge, receiver, worker, start_gunicorn
):
    project = factories.make_project(
        name="Metrics end to end",
        slug=PROJECT,
        mode="monitor",
        confidence_threshold=0.5,
        webhook_url=receiver.url,
        webhook_secret=SECRET,
    )
    make_judge(project, fake_judge, max_retries=0)
    _key, api_key = api_key_create(project=project, name="metrics client")
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    env = {
        "DATABASE_URL": database_url_of_tests(),
        "REDIS_URL": ops_redis,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "HITL_METRICS_TOKEN": TOKEN,
        "HITL_WEBHOOK_ALLOW_PRIVATE": "1",
        "HITL_EXPORT_DIR": str(tmp_path / "exports"),
        "HITL_API_THROTTLE": "100000/min",
    }
    web = start_gunicorn(env=env, workers=2)
    rq_worker = worker(ops_redis, env)

    markers = ["pass", "pass", "pass", "flag", "garbage", "500"]
    payloads = [factories.item_payload(output=f"Take 1 g. [[judge:{m}]]") for m in markers]
    status, answer = post_json(f"{web.url}/api/v1/items/", {"items": payloads}, api_key)
    assert status in (200, 201), answer
    wait_for(
        lambda: not ReviewItem.objects.filter(status=ItemStatus.PENDING_JUDGE).exists(),
        timeout=120,
        message=f"items judged; worker log:\n{rq_worker.log()[-3000:]}",
    )
    finals = ReviewItem.objects.filter(status=ItemStatus.AUTO_APPROVED).count()
    assert finals == 3
    wait_for(
        lambda: WebhookDelivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == finals,
        timeout=60,
        message="the final items' webhooks delivered",
    )
    status, answer = post_json(
        f"{web.url}/api/v1/exports/", {"format": "sft_chat", "projects": [PROJECT]}, api_key
    )
    assert status == 202, answer
    wait_for(
        lambda: DatasetExport.objects.filter(status=ExportStatus.SUCCEEDED).exists(),
        timeout=120,
        message=f"the export built; worker log:\n{rq_worker.log()[-3000:]}",
    )

    scrapes = []
    for _ in range(8):
        status, headers, body = web.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert status == 200, body
        assert headers["Content-Type"].startswith("text/plain; version=")
        scrapes.append(samples(body.decode()))

    judge = {"project": PROJECT, "backend": "openai"}
    for found in scrapes:
        # Six calls by the worker, timed; two of them gave no verdict.
        assert value(found, "hitl_judge_call_duration_seconds_count", **judge) == 6
        assert value(found, "hitl_judge_call_duration_seconds_sum", **judge) > 0
        assert value(found, "hitl_judge_errors_total", **judge, kind="unparseable") == 1
        assert value(found, "hitl_judge_errors_total", **judge, kind="server_error") == 1
        assert (
            value(found, "hitl_webhook_attempts_total", project=PROJECT, outcome="delivered") == 3
        )
        built = {"format": "sft_chat", "outcome": "succeeded"}
        assert value(found, "hitl_export_builds_total", **built) == 1
        assert value(found, "hitl_export_build_duration_seconds_count", **built) == 1
        # The database gauges, read at scrape time.
        assert value(found, "hitl_items", project=PROJECT, status="auto_approved") == 3
        assert value(found, "hitl_items", project=PROJECT, status="pending_review") == 3
        assert value(found, "hitl_queue_depth", project=PROJECT) == 3
        assert value(found, "hitl_webhook_deliveries_pending", project=PROJECT) == 0
        assert value(found, "hitl_exports", status="succeeded") == 1

    # One set of files per gunicorn worker and one for the rqworker, however many
    # jobs (work horses) it ran: judge, three webhook deliveries, an export.
    # (django-rq adds a summary of its own to each process, named by pid.)
    identifiers = {
        path.stem.split("_", 1)[1]
        for path in metrics_dir.glob("*.db")
        if any('"hitl_' in key for key, *_ in MmapedDict.read_all_values_from_file(str(path)))
    }
    assert len(identifiers) == 1 and identifiers.pop().startswith("rq-"), identifiers
