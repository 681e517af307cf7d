"""/metrics: the token, the database gauges and their query count, in one process."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from datasets.services import build, export_create
from datasets.services.build import export_build
from reviews.judge.services import judge_pending_items
from reviews.models import ReviewItem
from tests import factories
from tests.datasets.factories import reviewed
from tests.judge.conftest import make_judge
from tests.judge.fake_llm import FakeJudge

TOKEN = "metrics-token-for-tests-0123456789"


def scrape(client, token: str = TOKEN) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return samples(response.content.decode())


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a Prometheus text exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels) -> float:
    return found[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def metrics_token(settings):
    settings.HITL_METRICS_TOKEN = TOKEN
    return TOKEN


# --- the token, from the attacker's side ---------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Api-Key {TOKEN}"},
        {"Authorization": TOKEN},
        {"X-Metrics-Token": TOKEN},
    ],
)
def test_metrics_refuse_a_missing_or_wrong_token(client, db, metrics_token, headers):
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"hitl_" not in response.content


def test_the_token_in_the_query_string_is_refused(client, db, metrics_token):
    assert client.get(f"/metrics?token={TOKEN}").status_code == 401


def test_a_superuser_session_is_no_metrics_token(client, admin_user, metrics_token):
    client.force_login(admin_user)
    assert client.get("/metrics").status_code == 401


def test_metrics_are_off_without_a_token_setting(client, db, settings):
    settings.HITL_METRICS_TOKEN = ""
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer anything"}):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 404
        assert b"hitl_" not in response.content


def test_metrics_refuse_writes(client, db, metrics_token):
    response = client.post("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 405


# --- the database gauges ---------------------------------------------------------------


def test_database_gauges_after_real_ingest_and_reviews(client, db, metrics_token):
    gate = factories.make_project(slug="gate-metrics", mode="gate")
    monitor = factories.make_project(
        slug="monitor-metrics", mode="monitor", confidence_threshold=0.5
    )
    queued = factories.ingest(gate, *[factories.item_payload() for _ in range(3)])
    factories.ingest(monitor, *[factories.item_payload(confidence=0.95) for _ in range(2)])
    factories.ingest(monitor, factories.item_payload(confidence=0.1))
    reviewed(gate, verdict="approve")
    reviewed(gate, verdict="reject", reason_code="factual_error")
    # The oldest waiting item came in ten minutes ago.
    ReviewItem.objects.filter(pk=queued[0].pk).update(
        created_at=timezone.now() - timedelta(minutes=10)
    )

    found = scrape(client)

    assert value(found, "hitl_items", project="gate-metrics", status="pending_review") == 3
    assert value(found, "hitl_items", project="gate-metrics", status="approved") == 1
    assert value(found, "hitl_items", project="gate-metrics", status="rejected") == 1
    assert value(found, "hitl_items", project="monitor-metrics", status="auto_approved") == 2
    assert value(found, "hitl_items", project="monitor-metrics", status="pending_review") == 1
    assert value(found, "hitl_items", project="monitor-metrics", status="corrected") == 0
    assert value(found, "hitl_queue_depth", project="gate-metrics") == 3
    assert value(found, "hitl_queue_depth", project="monitor-metrics") == 1
    age = value(found, "hitl_queue_oldest_age_seconds", project="gate-metrics")
    assert 600 <= age < 660
    assert value(found, "hitl_queue_oldest_age_seconds", project="monitor-metrics") < 60
    assert (
        value(found, "hitl_decisions_last_minute", project="gate-metrics", verdict="approve") == 1
    )
    assert value(found, "hitl_decisions_last_minute", project="gate-metrics", verdict="reject") == 1
    assert (
        value(found, "hitl_decisions_last_minute", project="gate-metrics", verdict="correct") == 0
    )
    assert value(found, "hitl_judge_pending_oldest_age_seconds", project="gate-metrics") == 0
    assert value(found, "hitl_exports", status="succeeded") == 0
    assert ("hitl_metrics_database_seconds", ()) in found


def test_an_emptied_queue_reads_zero(client, db, metrics_token):
    project = factories.make_project(slug="emptied")
    (item,) = factories.ingest(project)
    assert value(scrape(client), "hitl_queue_depth", project="emptied") == 1
    ReviewItem.objects.filter(pk=item.pk).delete()
    found = scrape(client)
    assert value(found, "hitl_queue_depth", project="emptied") == 0
    assert value(found, "hitl_queue_oldest_age_seconds", project="emptied") == 0


def scrape_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        scrape(client)
    return len(queries)


def test_scrape_query_count_does_not_grow_with_projects_or_items(client, db, metrics_token):
    first = factories.make_project(slug="only-one")
    factories.ingest(first)
    small = scrape_queries(client)

    for n in range(8):
        project = factories.make_project(slug=f"many-{n}")
        factories.ingest(project, *[factories.item_payload() for _ in range(10)])
        reviewed(project, verdict="approve")
    large = scrape_queries(client)

    assert small == large == 6, (small, large)


# --- the event instruments in one process (no PROMETHEUS_MULTIPROC_DIR) -----------------


def delta(before: dict, after: dict, name: str, **labels) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


@pytest.fixture
def fake_judge():
    judge = FakeJudge().start()
    yield judge
    judge.stop()


def test_judge_calls_and_errors_are_counted_by_kind(client, db, metrics_token, fake_judge):
    project = factories.make_project(slug="judged-inline", mode="monitor")
    make_judge(project, fake_judge, max_retries=0)
    items = factories.ingest(
        project,
        *[factories.item_payload(output=f"[[judge:{m}]]") for m in ("pass", "429", "garbage")],
    )
    before = scrape(client)
    judge_pending_items(item_ids=[item.pk for item in items])
    after = scrape(client)
    labels = {"project": "judged-inline", "backend": "openai"}
    assert delta(before, after, "hitl_judge_call_duration_seconds_count", **labels) == 3
    assert delta(before, after, "hitl_judge_errors_total", **labels, kind="rate_limited") == 1
    assert delta(before, after, "hitl_judge_errors_total", **labels, kind="unparseable") == 1
    assert delta(before, after, "hitl_judge_errors_total", **labels, kind="server_error") == 0


def test_a_judge_without_its_key_counts_config_errors_and_no_latency(
    client, db, metrics_token, fake_judge
):
    project = factories.make_project(slug="keyless", mode="monitor")
    make_judge(project, fake_judge, api_key_env="HITL_TEST_KEY_NOBODY_SET")
    items = factories.ingest(project, factories.item_payload(), factories.item_payload())
    before = scrape(client)
    judge_pending_items(item_ids=[item.pk for item in items])
    after = scrape(client)
    labels = {"project": "keyless", "backend": "openai"}
    assert delta(before, after, "hitl_judge_errors_total", **labels, kind="config") == 2
    assert delta(before, after, "hitl_judge_call_duration_seconds_count", **labels) == 0
    assert fake_judge.requests == []


def test_export_builds_are_counted_and_timed_by_outcome(
    client, db, metrics_token, settings, tmp_path, monkeypatch
):
    settings.HITL_EXPORT_DIR = tmp_path / "exports"
    project = factories.make_project(slug="exported")
    reviewed(project, verdict="approve")
    built = {"format": "sft_chat", "outcome": "succeeded"}
    failed = {"format": "sft_chat", "outcome": "failed"}

    before = scrape(client)
    export = export_create(format="sft_chat", projects=[project], filters={}, enqueue=False)
    assert export_build(export_id=export.pk).is_built
    after = scrape(client)
    assert delta(before, after, "hitl_export_builds_total", **built) == 1
    assert delta(before, after, "hitl_export_build_duration_seconds_count", **built) == 1
    assert delta(before, after, "hitl_export_builds_total", **failed) == 0

    def broken_finish(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(build, "_export_finish", broken_finish)
    export = export_create(format="sft_chat", projects=[project], filters={}, enqueue=False)
    with pytest.raises(RuntimeError):
        export_build(export_id=export.pk)
    final = scrape(client)
    assert delta(after, final, "hitl_export_builds_total", **failed) == 1
    assert delta(after, final, "hitl_export_build_duration_seconds_count", **failed) == 1
    assert value(final, "hitl_exports", status="failed") == 1
